r"""Decoding CTC outputs: from per-frame label probabilities to a label sequence.

A CTC model emits, at each of T frames, log-probabilities over C labels, label 0 the *blank*.
A path (one label per frame) reads as the sequence left after merging repeated labels and then
dropping blanks ("aa-ab" → "aab"); a sequence's probability is the sum over its paths.

* :func:`greedy_decode`: the best path, collapsed. Fast, and not always the best sequence.
* :func:`prefix_beam_search` (Hannun et al. 2014): keeps ``beam_width`` prefixes, each with
  the probability of its paths ending in a blank (p_b) and in a label (p_nb), so that paths
  reading the same prefix are summed. With an unbounded beam and no pruning it gives each
  sequence's exact probability (the tests check it against enumerating every path).
  With a :class:`LabelScorer` (a language model over the same labels) it does *shallow
  fusion*: each new label l after prefix y is weighted by P_LM(l | y)^lm_weight · e^bonus,
  and a finished prefix by P_LM(end | y)^lm_weight.

Shapes: ``log_probs`` (T, C) float, rows log-softmax normalised; sequences are tuples of labels
in 1..C-1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from rnnkit.errors import RnnkitError

NEG_INF = float("-inf")


def collapse_path(path: Sequence[int] | np.ndarray, blank: int = 0) -> list[int]:
    """The labels a path (T,) reads as: repeats merged, then blanks dropped."""
    out, previous = [], blank
    for label in np.asarray(path).tolist():
        if label != previous and label != blank:
            out.append(label)
        previous = label
    return out


def greedy_decode(log_probs: np.ndarray, blank: int = 0) -> list[int]:
    """The best path of (T, C) ``log_probs``, collapsed."""
    return collapse_path(np.asarray(log_probs).argmax(axis=-1), blank)


@dataclass
class Context:
    """What a language model says after a prefix: its state, log P(label | prefix) for every
    label (C,) (the blank's entry is unused) and log P(end of text | prefix)."""

    state: Any
    log_probs: np.ndarray
    end: float = 0.0


class LabelScorer(Protocol):
    """A language model over the decoder's labels, for shallow fusion."""

    def initial(self) -> Context:
        """The context of the empty prefix."""
        ...

    def extend(self, contexts: Sequence[Context], labels: Sequence[int]) -> list[Context]:
        """The context after each of ``contexts`` followed by its label (one batch)."""
        ...


def _logadd(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    hi, lo = (a, b) if a > b else (b, a)
    return hi + math.log1p(math.exp(lo - hi))


def prefix_beam_search(
    log_probs: np.ndarray,
    beam_width: int = 8,
    *,
    blank: int = 0,
    scorer: LabelScorer | None = None,
    lm_weight: float = 0.0,
    insertion_bonus: float = 0.0,
    prune: float = 1e-3,
    n_best: int = 1,
) -> list[tuple[tuple[int, ...], float]]:
    """The ``n_best`` most probable label sequences of (T, C) ``log_probs`` and their scores.

    Args:
        beam_width: prefixes kept after each frame.
        scorer: a language model for shallow fusion, weighted by ``lm_weight``.
        insertion_bonus: added to the score per label emitted (it offsets the LM's pull towards
            short outputs).
        prune: at each frame only labels with probability ≥ ``prune`` extend a prefix (the
            frame's most probable label always does); 0 considers every label.

    Returns:
        [(labels, score)] best first; the score is log(p_b + p_nb) plus the fusion terms.
    """
    log_probs = np.asarray(log_probs, dtype=np.float64)
    if log_probs.ndim != 2 or log_probs.shape[1] < 2:
        raise RnnkitError(f"log_probs must have shape (T, C) with C >= 2, got {log_probs.shape}")
    if beam_width < 1 or n_best < 1:
        raise RnnkitError(f"beam_width and n_best must be >= 1, got {beam_width}, {n_best}")
    fused = scorer is not None and lm_weight != 0.0
    labels = np.array([c for c in range(log_probs.shape[1]) if c != blank])
    floor = math.log(prune) if prune > 0 else NEG_INF
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, NEG_INF)}
    contexts = {(): scorer.initial()} if fused else {}
    for frame in log_probs:
        keep = labels[frame[labels] >= floor]
        best = int(labels[np.argmax(frame[labels])])
        candidates = keep.tolist() if best in keep else [*keep.tolist(), best]
        grown: dict[tuple[int, ...], list[float]] = {}
        for prefix, (p_b, p_nb) in beams.items():
            total = _logadd(p_b, p_nb)
            here = grown.setdefault(prefix, [NEG_INF, NEG_INF])
            here[0] = _logadd(here[0], total + frame[blank])
            last = prefix[-1] if prefix else None
            for c in candidates:
                p = float(frame[c])
                bonus = insertion_bonus
                if fused:
                    bonus += lm_weight * float(contexts[prefix].log_probs[c])
                longer = grown.setdefault((*prefix, c), [NEG_INF, NEG_INF])
                if c == last:  # "a" then "a": the same prefix; "a", blank, "a": a new label
                    here[1] = _logadd(here[1], p_nb + p)
                    longer[1] = _logadd(longer[1], p_b + p + bonus)
                else:
                    longer[1] = _logadd(longer[1], total + p + bonus)
        # A repeat right after a label ("a" "a" with no blank between) creates a prefix of
        # probability 0 when the parent has no blank ending: never keep those.
        alive = [(k, v) for k, v in grown.items() if _logadd(*v) > NEG_INF]
        ranked = sorted(alive, key=lambda kv: -_logadd(*kv[1]))[:beam_width]
        beams = {prefix: (p[0], p[1]) for prefix, p in ranked}
        if fused:
            new = [p for p in beams if p not in contexts]
            if new:
                made = scorer.extend([contexts[p[:-1]] for p in new], [p[-1] for p in new])
                contexts.update(zip(new, made, strict=True))
            contexts = {p: contexts[p] for p in beams}
    scored = []
    for prefix, (p_b, p_nb) in beams.items():
        score = _logadd(p_b, p_nb)
        if fused:
            score += lm_weight * contexts[prefix].end
        scored.append((prefix, score))
    scored.sort(key=lambda item: -item[1])
    return scored[:n_best]
