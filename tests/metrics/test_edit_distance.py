"""CER/WER counts: Levenshtein errors over reference lengths, summed across batches."""

import pytest

from rnnkit.errors import RnnkitError
from rnnkit.metrics.edit_distance import error_counts, error_rates

pytest.importorskip("jiwer")


def test_counts_and_rates_of_hand_checked_pairs():
    counts = error_counts(["the cat sat", "a dog"], ["the cap sat", "a dog barked"])
    # chars: 1 substitution (t→p) + 7 insertions (" barked") over 11 + 5 characters
    assert counts == {"char_errors": 8, "chars": 16, "word_errors": 2, "words": 5}
    assert error_rates(counts) == {"cer": 0.5, "wer": 0.4}


def test_batches_add_up_to_the_corpus_rate():
    refs, hyps = ["abc", "de", "fgh i"], ["abd", "", "fgh i"]
    whole = error_counts(refs, hyps)
    parts = [error_counts(refs[:1], hyps[:1]), error_counts(refs[1:], hyps[1:])]
    summed = {k: sum(p[k] for p in parts) for k in whole}
    assert summed == whole and error_rates(whole)["cer"] == pytest.approx(3 / 10)


def test_empty_references_and_mismatched_lengths():
    assert error_rates(error_counts([""], [""])) == {"cer": 0.0, "wer": 0.0}
    assert error_rates(error_counts([""], ["x"]))["cer"] == 1.0
    assert error_counts([], []) == {"char_errors": 0, "chars": 0, "word_errors": 0, "words": 0}
    with pytest.raises(RnnkitError, match="2 references but 1 hypotheses"):
        error_counts(["a", "b"], ["a"])
