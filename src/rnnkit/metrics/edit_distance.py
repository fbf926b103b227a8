"""Character and word error rates of transcripts, as sums that add up across batches.

CER = (S + D + I) / N over characters (spaces included), WER the same over words, where S, D,
I are the substitutions, deletions and insertions of the Levenshtein alignment of each
hypothesis to its reference and N the reference's length; a corpus's rate is its summed
errors over its summed length (not a mean of per-sentence rates). Counted by ``jiwer`` (the
speech extra).

    totals = error_counts(["the cat"], ["the cap"])   # {"char_errors": 1, "chars": 7, ...}
    error_rates(totals)                               # {"cer": 0.1429, "wer": 0.5}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rnnkit.errors import RnnkitError


def _jiwer():
    try:
        import jiwer
    except ImportError:
        raise RnnkitError(
            "error rates need the jiwer package: pip install 'rnnkit[speech]'"
        ) from None
    return jiwer


def error_counts(references: Sequence[str], hypotheses: Sequence[str]) -> dict[str, int]:
    """Summable counts: char_errors, chars, word_errors, words of the hypotheses against
    their references (the same number of each)."""
    if len(references) != len(hypotheses):
        raise RnnkitError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if not references:
        return {"char_errors": 0, "chars": 0, "word_errors": 0, "words": 0}
    jiwer = _jiwer()
    refs, hyps = list(references), list(hypotheses)
    ch = jiwer.process_characters(refs, hyps)
    wd = jiwer.process_words(refs, hyps)
    return {
        "char_errors": ch.substitutions + ch.deletions + ch.insertions,
        "chars": ch.substitutions + ch.deletions + ch.hits,
        "word_errors": wd.substitutions + wd.deletions + wd.insertions,
        "words": wd.substitutions + wd.deletions + wd.hits,
    }


def error_rates(totals: Mapping[str, Any]) -> dict[str, float]:
    """{"cer", "wer"} of summed :func:`error_counts` (a rate over no reference is 0 when no
    error was made, else 1)."""

    def rate(errors: float, n: float) -> float:
        return float(errors) / float(n) if n else float(errors > 0)

    return {
        "cer": rate(totals["char_errors"], totals["chars"]),
        "wer": rate(totals["word_errors"], totals["words"]),
    }
