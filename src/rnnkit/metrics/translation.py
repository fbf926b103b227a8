"""Translation quality: corpus BLEU and chrF with sacreBLEU, and BLEU from summed counts.

Corpus BLEU is not a mean of sentence scores: it is computed once from n-gram match counts
summed over the whole corpus. Those counts (hypothesis and reference lengths, matches and
totals for n = 1..4) are **sufficient statistics**: :func:`bleu_statistics` gives them for a
batch as one (10,) array, arrays of several batches add up, and :func:`bleu_from_statistics`
turns the sum into the score sacreBLEU's ``corpus_score`` gives for the same sentences. That
is how a model reports ``val_bleu`` through the Trainer's summable metrics.

Scores follow sacreBLEU's defaults (13a tokenisation of detokenised, cased text; exponential
smoothing; chrF with β = 2, character 6-grams), so they compare with published figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rnnkit.errors import RnnkitError

NUM_STATISTICS = 10  # hypothesis length, reference length, 4 match counts, 4 totals
MAX_ORDER = 4


def _sacrebleu() -> Any:
    try:
        from sacrebleu.metrics import BLEU, CHRF
    except ImportError:
        raise RnnkitError(
            "BLEU and chrF need the sacrebleu package: pip install 'rnnkit[seq2seq]'"
        ) from None
    return BLEU, CHRF


def require_sacrebleu() -> None:
    """Raise the install hint now (before a run starts) when sacreBLEU is missing."""
    _sacrebleu()


def _check(hypotheses: Sequence[str], references: Sequence[str]) -> None:
    if len(hypotheses) != len(references):
        raise RnnkitError(
            f"{len(hypotheses)} hypotheses but {len(references)} references: one each"
        )


def bleu_statistics(hypotheses: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """Summed BLEU counts of detokenised sentence pairs, int64 (10,):
    [hyp length, ref length, matches n=1..4, hypothesis n-grams n=1..4]."""
    _check(hypotheses, references)
    BLEU, _ = _sacrebleu()
    bleu = BLEU(effective_order=True)  # changes sentence scores only, not the counts
    out = np.zeros(NUM_STATISTICS, dtype=np.int64)
    for hyp, ref in zip(hypotheses, references, strict=True):
        s = bleu.sentence_score(hyp, [ref])
        out += [s.sys_len, s.ref_len, *s.counts, *s.totals]
    return out


def bleu_from_statistics(stats: Any) -> float:
    """Corpus BLEU (0–100) from summed :func:`bleu_statistics`, as sacreBLEU computes it."""
    stats = np.asarray(getattr(stats, "cpu", lambda: stats)(), dtype=np.int64).reshape(-1)
    if stats.shape != (NUM_STATISTICS,):
        raise RnnkitError(f"BLEU statistics must have {NUM_STATISTICS} counts, got {stats.shape}")
    BLEU, _ = _sacrebleu()
    sys_len, ref_len = int(stats[0]), int(stats[1])
    correct, total = stats[2 : 2 + MAX_ORDER].tolist(), stats[2 + MAX_ORDER :].tolist()
    if sys_len == 0:
        return 0.0
    return float(BLEU.compute_bleu(correct, total, sys_len, ref_len, smooth_method="exp").score)


def corpus_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, Any]:
    """``{"bleu", "chrf", "bleu_signature", "chrf_signature", "bleu_details"}`` of a corpus."""
    _check(hypotheses, references)
    if not hypotheses:
        raise RnnkitError("no sentences to score")
    BLEU, CHRF = _sacrebleu()
    bleu, chrf = BLEU(), CHRF()
    b = bleu.corpus_score(list(hypotheses), [list(references)])
    c = chrf.corpus_score(list(hypotheses), [list(references)])
    return {
        "bleu": float(b.score),
        "chrf": float(c.score),
        "bleu_details": {
            "precisions": [float(p) for p in b.precisions],
            "brevity_penalty": float(b.bp),
            "hyp_len": int(b.sys_len),
            "ref_len": int(b.ref_len),
        },
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }
