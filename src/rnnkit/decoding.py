r"""Decoding: greedy, sampling (temperature, top-k, top-p), beam search and exhaustive search.

Written once over a *stepper*, so that every model that emits one token at a time shares it
(the language model, and the decoder of an encoder–decoder):

.. code-block:: python

    class Stepper(Protocol):
        def step(self, tokens, state): ...   # (B,) int64 -> ((B, V) log-probs, new state)
        def reorder(self, state, index): ... # keep / duplicate batch rows: row j <- row index[j]

The caller brings the first state and the log-probabilities of the first token to generate
(e.g. after consuming a prompt: :meth:`rnnkit.inference.StepEngine.prime`). ``step`` must
return normalised log-probabilities and leave its input state unchanged. Everything here is
NumPy: at batch 1 a model step costs a few hundred µs, and the decoding around it a few µs
(torch's per-op overhead would cost more than that).

Conventions shared by all functions, so that their results compare:

* A sequence ends after ``max_len`` new tokens or at the first token of ``stop_tokens``; that
  stop token *is part of the sequence* (its probability is part of the model's probability of
  the sequence, and beam search needs it to rank finished hypotheses); strip it for display.
* Beam and exhaustive search rank a finished sequence ``y`` of length ``L`` (stop token
  included) by ``log P(y) / lp(L)`` with the length penalty of :func:`length_normalizer`:
  GNMT's ``((5 + L) / 6) ** alpha`` (Wu et al. 2016) or the simple ``L ** alpha``; ``alpha =
  0`` ranks by ``log P(y)`` itself, which favours short sequences.

Streaming: :func:`sample` and :func:`greedy` check their arguments, then return a generator
that yields one (B,) array of token ids per step, as the model produces them, and keeps nothing
from past steps (memory is constant in the length). A row that has finished yields :data:`PAD`.
To stop on a string, decode as you go and ``break`` (batch 1), or pass ``stop_when(row, token)
-> bool``, which finishes that row when it returns True (the token is kept). :func:`collect`
turns the stream into one list of ids per row.
"""

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from rnnkit.errors import RnnkitError

PAD = -1
"""Token id yielded for a row that has already finished."""

PENALTY_FORMS = ("gnmt", "simple")


class Stepper(Protocol):
    """One step of a model that emits tokens (see the module docstring)."""

    def step(self, tokens: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        """(B,) int64 token ids -> ((B, V) log-probabilities of the next token, new state)."""
        ...

    def reorder(self, state: Any, index: np.ndarray) -> Any:
        """The state whose row j is row ``index[j]`` of ``state``; index is (B',) int64."""
        ...


@dataclass(order=True)
class Hypothesis:
    """A finished sequence of beam or exhaustive search, best first when sorted in reverse."""

    score: float  # log_prob / lp(len(tokens)): what the search ranks by
    log_prob: float = field(compare=False)  # log P(tokens | prompt), the raw sum
    tokens: list[int] = field(compare=False)


# ---------------------------------------------------------------------------------- checks


def _check_log_probs(log_probs: np.ndarray) -> np.ndarray:
    log_probs = np.asarray(log_probs)
    if log_probs.ndim != 2 or log_probs.shape[0] < 1 or log_probs.shape[1] < 1:
        raise RnnkitError(f"log_probs must have shape (B, V), got {log_probs.shape}")
    return log_probs


def _check_max_len(max_len: int) -> int:
    if int(max_len) != max_len or max_len < 1:
        raise RnnkitError(f"max_len must be an integer >= 1, got {max_len!r}")
    return int(max_len)


def _stop_array(stop_tokens: Iterable[int], vocab_size: int) -> np.ndarray:
    stop = np.unique(np.asarray(list(stop_tokens), dtype=np.int64))
    if stop.size and (stop[0] < 0 or stop[-1] >= vocab_size):
        raise RnnkitError(
            f"stop_tokens must be token ids in [0, {vocab_size}), got {stop.tolist()}"
        )
    return stop


def _check_sampling(temperature: float, top_k: int, top_p: float) -> None:
    if not temperature >= 0:  # also rejects NaN
        raise RnnkitError(f"temperature must be >= 0, got {temperature}")
    if int(top_k) != top_k or top_k < 0:
        raise RnnkitError(f"top_k must be an integer >= 0 (0 = off), got {top_k!r}")
    if not 0 < top_p <= 1:
        raise RnnkitError(f"top_p must be in (0, 1] (1 = off), got {top_p}")


def _check_penalty(length_penalty: float, penalty_form: str) -> None:
    if penalty_form not in PENALTY_FORMS:
        raise RnnkitError(f"penalty_form must be one of {PENALTY_FORMS}, got {penalty_form!r}")
    if not np.isfinite(length_penalty):
        raise RnnkitError(f"length_penalty must be a finite number, got {length_penalty}")


# ------------------------------------------------------------------------ token selection


def filter_log_probs(
    log_probs: np.ndarray, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0
) -> np.ndarray:
    """The sampling distribution: temperature, then top-k, then top-p; renormalised.

    Args:
        log_probs: (B, V) log-probabilities (or unnormalised logits).
        temperature: > 0; divides the logits (< 1 sharpens, > 1 flattens).
        top_k: keep the k most probable tokens (0 = all).
        top_p: keep the nucleus, the smallest set of most probable tokens whose probability
            reaches ``top_p`` (Holtzman et al. 2020; 1 = all).

    Returns:
        (B, V) float64 probabilities, zero outside the kept tokens, rows summing to 1.
    """
    _check_sampling(temperature, top_k, top_p)
    if temperature == 0:
        raise RnnkitError("temperature must be > 0 to define a distribution (0 means greedy)")
    weights = _weights(_check_log_probs(log_probs), temperature, top_k, top_p)
    return weights / weights.sum(axis=1, keepdims=True)


def _weights(log_probs: np.ndarray, temperature: float, top_k: int, top_p: float) -> np.ndarray:
    """:func:`filter_log_probs` without its checks and its last normalisation (float64)."""
    logits = log_probs.astype(np.float64)  # a copy: sums of many float32 probs lose digits
    if temperature != 1:
        logits *= 1.0 / temperature
    V = logits.shape[1]
    if 0 < top_k < V:
        # Keep exactly k per row (ties broken by index, as argpartition does).
        drop = np.argpartition(-logits, top_k - 1, axis=1)[:, top_k:]
        np.put_along_axis(logits, drop, -np.inf, axis=1)
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits, out=logits)
    if top_p < 1:
        weights /= weights.sum(axis=1, keepdims=True)
        order = np.argsort(-weights, axis=1, kind="stable")
        sorted_p = np.take_along_axis(weights, order, axis=1)
        # Token i (in order) is kept if the tokens before it do not yet reach top_p: this keeps
        # the smallest prefix whose mass is >= top_p, and always the most probable token.
        before = np.cumsum(sorted_p, axis=1) - sorted_p
        np.put_along_axis(weights, order, np.where(before < top_p, sorted_p, 0.0), axis=1)
    return weights


def _draw(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One token per row of (B, V) non-negative weights, by inverting the CDF."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(probs.shape[0]) * cdf[:, -1]
    tokens = np.minimum((cdf <= u[:, None]).sum(axis=1), probs.shape[1] - 1)
    # u can round up to the total; never return a token the filters removed.
    bad = probs[np.arange(len(tokens)), tokens] == 0
    if bad.any():
        tokens[bad] = probs.shape[1] - 1 - np.argmax(probs[bad, ::-1] > 0, axis=1)
    return tokens.astype(np.int64)


# ------------------------------------------------------------------- greedy and sampling


def sample(
    stepper: Stepper,
    state: Any,
    log_probs: np.ndarray,
    max_len: int,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    rng: np.random.Generator | None = None,
    num_samples: int = 1,
    stop_tokens: Iterable[int] = (),
    stop_when: Callable[[int, int], bool] | None = None,
) -> Iterator[np.ndarray]:
    """Draw tokens from the model, one step at a time, as a stream.

    Args:
        stepper: the model (see :class:`Stepper`).
        state: its state for B rows; log_probs: (B, V) for the first token to generate.
        max_len: at most this many new tokens per row.
        temperature: 0 means greedy (argmax); see :func:`filter_log_probs` for the others.
        top_k, top_p: see :func:`filter_log_probs`.
        rng: source of randomness; a fixed seed makes the stream reproducible.
        num_samples: independent samples per input row; output row ``i * num_samples + s``
            is sample s of input row i.
        stop_tokens: a row finishes after emitting one of these (it is yielded).
        stop_when: ``stop_when(row, token)`` is called for each new token of each row; True
            finishes that row (the token is kept). Use it for stop strings.

    Yields:
        (B·num_samples,) int64 token ids per step; :data:`PAD` for rows already finished.
        The stream ends when every row has finished or after ``max_len`` steps.
    """
    log_probs = _check_log_probs(log_probs)
    max_len = _check_max_len(max_len)
    _check_sampling(temperature, top_k, top_p)
    if int(num_samples) != num_samples or num_samples < 1:
        raise RnnkitError(f"num_samples must be an integer >= 1, got {num_samples!r}")
    B, V = log_probs.shape
    is_stop = np.zeros(V, dtype=bool)
    is_stop[_stop_array(stop_tokens, V)] = True
    if num_samples > 1:
        rows = np.repeat(np.arange(B, dtype=np.int64), num_samples)
        state, log_probs = stepper.reorder(state, rows), log_probs[rows]
    if rng is None:
        rng = np.random.default_rng()
    return _stream(
        stepper, state, log_probs, max_len, temperature, top_k, top_p, rng, is_stop, stop_when
    )


def _stream(stepper, state, log_probs, max_len, temperature, top_k, top_p, rng, is_stop, stop_when):
    """The generator behind :func:`sample`, whose arguments it has already checked."""
    total = log_probs.shape[0]
    active = np.arange(total, dtype=np.int64)  # output row of each row the stepper holds
    for t in range(max_len):
        if temperature == 0:
            tokens = log_probs.argmax(axis=1).astype(np.int64)
        else:
            tokens = _draw(_weights(log_probs, temperature, top_k, top_p), rng)
        out = np.full(total, PAD, dtype=np.int64)
        out[active] = tokens
        done = is_stop[tokens]
        if stop_when is not None:
            for j, (row, tok) in enumerate(zip(active.tolist(), tokens.tolist(), strict=True)):
                if not done[j] and stop_when(row, tok):
                    done[j] = True
        yield out
        if t == max_len - 1 or done.all():
            return
        if done.any():  # drop finished rows so the model stops computing them
            keep = np.flatnonzero(~done)
            state, tokens, active = stepper.reorder(state, keep), tokens[keep], active[keep]
        log_probs, state = stepper.step(tokens, state)


def greedy(
    stepper: Stepper,
    state: Any,
    log_probs: np.ndarray,
    max_len: int,
    *,
    stop_tokens: Iterable[int] = (),
    stop_when: Callable[[int, int], bool] | None = None,
) -> Iterator[np.ndarray]:
    """The most probable next token at each step, as a stream (:func:`sample` at temperature
    0); yields (B,) int64 arrays, :data:`PAD` for finished rows."""
    return sample(
        stepper,
        state,
        log_probs,
        max_len,
        temperature=0.0,
        stop_tokens=stop_tokens,
        stop_when=stop_when,
    )


def collect(stream: Iterable[np.ndarray]) -> list[list[int]]:
    """Gather a :func:`sample` / :func:`greedy` stream into one list of token ids per row."""
    rows: list[list[int]] | None = None
    for tokens in stream:
        if rows is None:
            rows = [[] for _ in range(len(tokens))]
        for row, tok in zip(rows, tokens.tolist(), strict=True):
            if tok != PAD:
                row.append(tok)
    return rows or []


# ------------------------------------------------------------------ beam and exhaustive


def length_normalizer(length: int | np.ndarray, alpha: float, form: str = "gnmt"):
    """lp(L): beam and exhaustive search rank a sequence of L tokens by log P / lp(L).

    ``form='gnmt'``: ((5 + L) / 6) ** alpha (Wu et al. 2016, also OpenNMT's 'wu');
    ``form='simple'``: L ** alpha (also Hugging Face's length_penalty). alpha = 0 gives 1.
    """
    _check_penalty(alpha, form)
    L = np.asarray(length, dtype=np.float64)
    return ((5.0 + L) / 6.0) ** alpha if form == "gnmt" else L**alpha


def _normalizers(max_len: int, alpha: float, form: str) -> np.ndarray:
    """lp(L) for L = 0..max_len (lp(0) = 1 is never used)."""
    return np.concatenate([[1.0], length_normalizer(np.arange(1, max_len + 1), alpha, form)])


class _Best:
    """The n best finished hypotheses of one input row (a min-heap on score)."""

    def __init__(self, n: int) -> None:
        self.n, self.heap = n, []  # (score, counter, Hypothesis)
        self.counter = 0

    def accepts(self, score: float) -> bool:
        return len(self.heap) < self.n or score > self.heap[0][0]

    def add(self, score: float, log_prob: float, tokens: list[int]) -> None:
        # On equal scores the hypothesis found first stays (the counter breaks the tie).
        item = (score, -self.counter, Hypothesis(score, log_prob, tokens))
        self.counter += 1
        if len(self.heap) < self.n:
            heapq.heappush(self.heap, item)
        elif item > self.heap[0]:
            heapq.heapreplace(self.heap, item)

    def worst(self) -> float:
        return self.heap[0][0] if len(self.heap) == self.n else -np.inf

    def sorted(self) -> list[Hypothesis]:
        return [h for _, _, h in sorted(self.heap, reverse=True)]


def beam_search(
    stepper: Stepper,
    state: Any,
    log_probs: np.ndarray,
    max_len: int,
    beam_width: int,
    *,
    n_best: int = 1,
    stop_tokens: Iterable[int] = (),
    length_penalty: float = 0.0,
    penalty_form: str = "gnmt",
) -> list[list[Hypothesis]]:
    """Beam search: keep the ``beam_width`` most probable unfinished prefixes at each step.

    Each step extends every live prefix by every token; the best candidates by log P that end
    in a stop token become finished hypotheses (scored by log P / lp(L), see
    :func:`length_normalizer`), the best ``beam_width`` others live on; at ``max_len`` all live
    prefixes finish. Search stops early once no live prefix can still beat the ``n_best``-th
    finished one (exact bound: log P only decreases as a prefix grows).

    Args:
        stepper, state, log_probs: the model, its state for B rows and the (B, V) log-probs of
            the first token; each input row is searched independently.
        max_len: most new tokens per sequence (stop token included).
        beam_width: K >= 1; 1 is greedy decoding.
        n_best: hypotheses returned per row, 1 <= n_best <= beam_width.
        stop_tokens: tokens that end a sequence (e.g. end-of-sequence).
        length_penalty, penalty_form: alpha and the form of lp(L).

    Returns:
        For each input row, up to ``n_best`` :class:`Hypothesis`, best score first.
    """
    log_probs = _check_log_probs(log_probs)
    max_len = _check_max_len(max_len)
    if int(beam_width) != beam_width or beam_width < 1:
        raise RnnkitError(f"beam_width must be an integer >= 1, got {beam_width!r}")
    if int(n_best) != n_best or not 1 <= n_best <= beam_width:
        raise RnnkitError(
            f"n_best must be an integer in [1, beam_width={beam_width}], got {n_best}"
        )
    _check_penalty(length_penalty, penalty_form)
    B, V = log_probs.shape
    stop = _stop_array(stop_tokens, V)
    is_stop = np.zeros(V, dtype=bool)
    is_stop[stop] = True
    # Enough candidates that K of them survive even if every live beam's best are stop tokens.
    n_cand = beam_width * (1 + stop.size)
    lp = _normalizers(max_len, length_penalty, penalty_form)
    best = [_Best(n_best) for _ in range(B)]

    # Live beams, grouped by input row in order: the row of each and its log P. Their tokens
    # are kept as back-pointers, one (tokens, parents) pair per step: O(K) work per step.
    row_of = np.arange(B, dtype=np.int64)
    beam_lp = np.zeros(B)
    trail: list[tuple[np.ndarray, np.ndarray]] = []

    def tokens_of(beam: int) -> list[int]:
        """The tokens of live beam ``beam`` (an index into the beams of the last step)."""
        seq = []
        for step_tokens, step_parents in reversed(trail):
            seq.append(int(step_tokens[beam]))
            beam = step_parents[beam]
        return seq[::-1]

    for t in range(1, max_len + 1):
        cand = beam_lp[:, None] + log_probs  # (A, V): log P of every one-token extension
        parents, tokens, new_lp = [], [], []
        for r in range(B):
            beams = np.flatnonzero(row_of == r)
            if beams.size == 0:
                continue
            flat = cand[beams].ravel()
            k = min(n_cand, flat.size)
            top = np.argpartition(-flat, k - 1)[:k] if k < flat.size else np.arange(flat.size)
            top = top[np.argsort(-flat[top], kind="stable")]
            kept = 0
            for i in top.tolist():
                parent, tok = int(beams[i // V]), i % V
                if is_stop[tok] or t == max_len:
                    score = float(flat[i] / lp[t])
                    if best[r].accepts(score):
                        best[r].add(score, float(flat[i]), [*tokens_of(parent), tok])
                elif kept < beam_width:
                    parents.append(parent)
                    tokens.append(tok)
                    new_lp.append(flat[i])
                    kept += 1
        if not parents:
            break
        parents, tokens, new_lp = np.asarray(parents), np.asarray(tokens), np.asarray(new_lp)
        # Drop the prefixes that can no longer enter the n best of their row: log P only
        # decreases as a prefix grows, so the best score it can reach is at one of the
        # extreme lengths still possible (lp is monotone in L).
        bound = np.maximum(new_lp / lp[t + 1], new_lp / lp[max_len])
        worst = np.array([b.worst() for b in best])
        alive = bound > worst[row_of[parents]]
        if not alive.any():
            break
        parents, tokens, beam_lp = parents[alive], tokens[alive], new_lp[alive]
        row_of = row_of[parents]
        trail.append((tokens, parents))
        log_probs, state = stepper.step(tokens, stepper.reorder(state, parents))
    return [b.sorted() for b in best]


def exhaustive_search(
    stepper: Stepper,
    state: Any,
    log_probs: np.ndarray,
    max_len: int,
    *,
    n_best: int = 1,
    stop_tokens: Iterable[int] = (),
    length_penalty: float = 0.0,
    penalty_form: str = "gnmt",
    max_sequences: int = 1_000_000,
) -> list[list[Hypothesis]]:
    """The exact ``n_best`` sequences, by scoring every possible one: the oracle for tests.

    Scores as :func:`beam_search` (same stop convention, same length penalty). Every prefix is
    expanded breadth-first, all of one length in one batch, so it costs about V**max_len
    model rows; raises :class:`RnnkitError` beyond ``max_sequences``.

    Returns:
        For each input row, up to ``n_best`` :class:`Hypothesis`, best score first.
    """
    log_probs = _check_log_probs(log_probs)
    max_len = _check_max_len(max_len)
    if int(n_best) != n_best or n_best < 1:
        raise RnnkitError(f"n_best must be an integer >= 1, got {n_best!r}")
    _check_penalty(length_penalty, penalty_form)
    B, V = log_probs.shape
    if float(V) ** max_len > max_sequences:
        raise RnnkitError(
            f"exhaustive search over V={V} tokens and max_len={max_len} would score "
            f"{V}**{max_len} sequences, more than max_sequences={max_sequences}"
        )
    stop = _stop_array(stop_tokens, V)
    is_stop = np.zeros(V, dtype=bool)
    is_stop[stop] = True
    lp = _normalizers(max_len, length_penalty, penalty_form)
    results = []
    for r in range(B):
        best = _Best(n_best)
        s = stepper.reorder(state, np.array([r], dtype=np.int64))
        lps, prefixes, prefix_lp = log_probs[r : r + 1], np.zeros((1, 0), np.int64), np.zeros(1)
        for t in range(1, max_len + 1):
            cand = prefix_lp[:, None] + lps  # (P, V)
            ends = np.ones(V, dtype=bool) if t == max_len else is_stop
            for p, tok in zip(*np.nonzero(np.broadcast_to(ends, cand.shape)), strict=True):
                seq = [*prefixes[p].tolist(), int(tok)]
                best.add(float(cand[p, tok] / lp[t]), float(cand[p, tok]), seq)
            if t == max_len or is_stop.all():
                break
            parents, tokens = np.nonzero(np.broadcast_to(~is_stop, cand.shape))
            prefix_lp = cand[parents, tokens]
            prefixes = np.concatenate([prefixes[parents], tokens[:, None]], axis=1)
            lps, s = stepper.step(tokens.astype(np.int64), stepper.reorder(s, parents))
        results.append(best.sorted())
    return results
