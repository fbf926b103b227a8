"""CTC decoding: greedy on hand-made matrices, prefix beam search against every path, fusion."""

import itertools
import math

import numpy as np
import pytest

from rnnkit.ctc_decoding import Context, collapse_path, greedy_decode, prefix_beam_search
from rnnkit.errors import RnnkitError


def log(p):
    return np.log(np.asarray(p, dtype=np.float64))


def brute_force(log_probs, blank=0):
    """log P(labels) of every label sequence, summed over every path (C^T of them)."""
    T, C = log_probs.shape
    totals: dict = {}
    for path in itertools.product(range(C), repeat=T):
        labels = tuple(collapse_path(path, blank))
        p = math.exp(sum(log_probs[t, c] for t, c in enumerate(path)))
        totals[labels] = totals.get(labels, 0.0) + p
    return {k: math.log(v) for k, v in totals.items()}


def test_collapse_and_greedy_on_a_hand_made_matrix():
    assert collapse_path([1, 1, 0, 1, 2, 2, 0, 0, 3]) == [1, 1, 2, 3]
    assert collapse_path([0, 0]) == []
    probs = [
        [0.1, 0.8, 0.1],  # a
        [0.2, 0.7, 0.1],  # a (merged)
        [0.9, 0.05, 0.05],  # blank
        [0.1, 0.6, 0.3],  # a again: a second a
        [0.1, 0.1, 0.8],  # b
    ]
    assert greedy_decode(log(probs)) == [1, 1, 2]


def test_beam_search_finds_the_sequence_greedy_misses():
    # Two frames of blank 0.6, "a" 0.4: the best path is blank-blank (0.36), but "a" has
    # three paths (a-, -a, aa): 0.64.
    lp = log([[0.6, 0.4], [0.6, 0.4]])
    assert greedy_decode(lp) == []
    (labels, score), *_ = prefix_beam_search(lp, beam_width=2)
    assert labels == (1,) and score == pytest.approx(math.log(0.64))


@pytest.mark.parametrize("seed", range(6))
def test_unbounded_beam_gives_every_sequence_its_exact_probability(seed):
    rng = np.random.default_rng(seed)
    T, C = 5, 3
    logits = rng.normal(0, 1.5, (T, C))
    lp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    exact = brute_force(lp)
    found = prefix_beam_search(lp, beam_width=10**6, prune=0.0, n_best=10**6)
    assert {k: v for k, v in found} == pytest.approx(exact)
    best = max(exact, key=exact.get)
    assert prefix_beam_search(lp, beam_width=4, prune=0.0)[0][0] == best


def test_blank_elsewhere_than_zero():
    lp = log([[0.1, 0.1, 0.8], [0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    assert prefix_beam_search(lp, 4, blank=2)[0][0] == (0,)
    assert greedy_decode(lp, blank=2) == [0]


class BigramLM:
    """A fake LM over labels 1..2 ("a", "b") whose next label depends on the last one."""

    def __init__(self, table, end=None):
        self.table = table  # last label (0 = start) -> [P(a), P(b)]
        self.end = end or {}
        self.calls = 0

    def _ctx(self, last):
        probs = np.array([1.0, *self.table[last]])
        return Context(last, np.log(probs), math.log(self.end.get(last, 1.0)))

    def initial(self):
        return self._ctx(0)

    def extend(self, contexts, labels):
        self.calls += 1
        return [self._ctx(label) for label in labels]


def test_lm_fusion_changes_the_ranking():
    # The acoustics say "a" a little more than "b"; the LM says "b" after the start.
    lp = log([[0.1, 0.5, 0.4], [0.9, 0.05, 0.05]])
    lm = BigramLM({0: [0.05, 0.95], 1: [0.5, 0.5], 2: [0.5, 0.5]})
    assert prefix_beam_search(lp, 4)[0][0] == (1,)
    assert prefix_beam_search(lp, 4, scorer=lm, lm_weight=0.0)[0][0] == (1,)
    fused = prefix_beam_search(lp, 4, scorer=lm, lm_weight=1.0, n_best=3)
    assert [labels for labels, _ in fused] == [(2,), (), (1,)]
    assert lm.calls >= 1
    # The score is the acoustic log-probability plus the weighted LM log-probability.
    acoustic = brute_force(lp)
    assert fused[0][1] == pytest.approx(acoustic[(2,)] + math.log(0.95), abs=1e-9)


def test_end_of_text_and_insertion_bonus():
    lp = log([[0.3, 0.7, 1e-12], [0.6, 0.4, 1e-12]])
    plain = prefix_beam_search(lp, 4, prune=0.0)[0][0]
    assert plain == (1,)
    # An LM for which text never ends after "a" prefers the empty transcript.
    lm = BigramLM({0: [0.5, 0.5], 1: [0.5, 0.5], 2: [0.5, 0.5]}, end={1: 1e-9})
    assert prefix_beam_search(lp, 4, scorer=lm, lm_weight=1.0, prune=0.0)[0][0] == ()
    # A bonus per label turns "a" into "a a" (a, blank, a: one path of 0.7·0.6·0.7).
    lp = log([[0.3, 0.7], [0.6, 0.4], [0.3, 0.7]])
    assert prefix_beam_search(lp, 4, prune=0.0)[0][0] == (1,)
    assert prefix_beam_search(lp, 4, insertion_bonus=2.0, prune=0.0)[0][0] == (1, 1)


def test_bad_arguments():
    with pytest.raises(RnnkitError, match="shape"):
        prefix_beam_search(np.zeros(3))
    with pytest.raises(RnnkitError, match="beam_width"):
        prefix_beam_search(np.zeros((2, 3)), 0)
