"""BLEU from summed counts is sacreBLEU's corpus BLEU; chrF and the signature come along."""

import numpy as np
import pytest

from rnnkit.errors import RnnkitError
from rnnkit.metrics.translation import bleu_from_statistics, bleu_statistics, corpus_scores

HYPS = ["The cat sat on the mat.", "A dog runs in the park", "hello", "It's 3.5 km away!"]
REFS = [
    "The cat sat on a mat.",
    "A dog is running in the park.",
    "hello there",
    "It is 3.5 km away!",
]


def test_counts_of_batches_add_up_to_corpus_bleu():
    parts = [bleu_statistics(HYPS[:1], REFS[:1]), bleu_statistics(HYPS[1:], REFS[1:])]
    total = np.sum(parts, axis=0)
    assert total.shape == (10,) and total.dtype == np.int64
    scores = corpus_scores(HYPS, REFS)
    assert bleu_from_statistics(total) == pytest.approx(scores["bleu"], abs=1e-9)
    assert 0 < scores["bleu"] < 100 and 0 < scores["chrf"] < 100
    assert "tok:13a" in scores["bleu_signature"]  # sacreBLEU's default, detokenised input


def test_perfect_and_empty_output():
    assert bleu_from_statistics(bleu_statistics(REFS, REFS)) == pytest.approx(100.0)
    assert bleu_from_statistics(bleu_statistics(["", ""], REFS[:2])) == 0.0
    assert bleu_from_statistics(np.zeros(10, np.int64)) == 0.0


def test_bad_arguments():
    with pytest.raises(RnnkitError, match="2 hypotheses but 1 references"):
        bleu_statistics(HYPS[:2], REFS[:1])
    with pytest.raises(RnnkitError, match="10 counts"):
        bleu_from_statistics([1, 2, 3])
    with pytest.raises(RnnkitError, match="no sentences"):
        corpus_scores([], [])
