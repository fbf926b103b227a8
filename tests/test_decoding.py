"""Decoding over a tiny NumPy recurrent model: greedy, sampling, beam and exhaustive search."""

import itertools

import numpy as np
import pytest

from rnnkit import RnnkitError
from rnnkit.decoding import (
    PAD,
    beam_search,
    collect,
    exhaustive_search,
    filter_log_probs,
    greedy,
    length_normalizer,
    sample,
)


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


class TinyRNN:
    """h' = tanh(E[tok] + h W), log P(next) = log_softmax(h' U): the next token depends on the
    whole history, so greedy, beam and exhaustive search disagree."""

    def __init__(self, V: int = 4, H: int = 3, seed: int = 0, scale: float = 2.0) -> None:
        rng = np.random.default_rng(seed)
        self.E = rng.normal(size=(V, H))
        self.W = rng.normal(size=(H, H))
        self.U = rng.normal(size=(H, V)) * scale
        self.steps = 0  # calls of step(), to check the stream is lazy
        self.recorded: list[np.ndarray] = []  # log-probs returned, when recording

    def start(self, B: int = 1, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
        h = np.random.default_rng(seed).normal(size=(B, self.W.shape[0]))
        return h, log_softmax(h @ self.U)

    def step(self, tokens: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert tokens.dtype == np.int64 and tokens.shape == (state.shape[0],)
        self.steps += 1
        h = np.tanh(self.E[tokens] + state @ self.W)
        lp = log_softmax(h @ self.U)
        self.recorded.append(lp)
        return lp, h

    def reorder(self, state: np.ndarray, index: np.ndarray) -> np.ndarray:
        return state[index]

    def log_prob(self, state: np.ndarray, lp: np.ndarray, tokens: list[int]) -> float:
        """log P(tokens) for one row, by direct evaluation."""
        total = 0.0
        for i, tok in enumerate(tokens):
            total += lp[0, tok]
            if i < len(tokens) - 1:
                lp, state = self.step(np.array([tok]), state)
        return total


def argmax_chain(model: TinyRNN, state, lp, n: int) -> np.ndarray:
    out = []
    for _ in range(n):
        tok = lp.argmax(axis=1)
        out.append(tok)
        lp, state = model.step(tok, state)
    return np.stack(out, axis=1)


# ---------------------------------------------------------------------------- greedy


def test_greedy_is_the_argmax_chain_for_every_row():
    model = TinyRNN(V=6, H=5)
    state, lp = model.start(B=3)
    got = collect(greedy(model, state, lp, 12))
    assert np.array_equal(np.array(got), argmax_chain(model, state, lp, 12))


def test_greedy_stops_each_row_at_its_stop_token_and_keeps_it():
    model = TinyRNN(V=6, H=5, seed=3)
    state, lp = model.start(B=4, seed=2)
    full = argmax_chain(model, state, lp, 15)
    stop = int(full[0, 3])  # a token row 0 emits at step 3
    stream = list(greedy(model, state, lp, 15, stop_tokens=[stop]))
    got = collect(stream)
    for row, seq in zip(full.tolist(), got, strict=True):
        end = row.index(stop) + 1 if stop in row else len(row)
        assert seq == row[:end]
    assert np.all(np.stack(stream)[4:, 0] == PAD)  # row 0 ended at step 3


def test_stop_when_finishes_a_row_on_a_callback():
    model = TinyRNN(V=6, H=5)
    state, lp = model.start(B=2)
    full = argmax_chain(model, state, lp, 10).tolist()
    seen = {0: 0, 1: 0}

    def three_tokens_for_row_1(row: int, token: int) -> bool:
        seen[row] += 1
        return row == 1 and seen[row] == 3

    got = collect(greedy(model, state, lp, 10, stop_when=three_tokens_for_row_1))
    assert got == [full[0], full[1][:3]]


def test_stream_is_lazy_and_can_be_abandoned():
    model = TinyRNN()
    state, lp = model.start()
    stream = greedy(model, state, lp, 1000)
    first = [int(next(stream)[0]) for _ in range(3)]
    assert model.steps == 2  # the first token comes from the given log-probs
    stream.close()
    assert first == argmax_chain(TinyRNN(), state, lp, 3)[0].tolist()


def test_max_len_is_respected_and_needs_no_extra_step():
    model = TinyRNN()
    state, lp = model.start(B=2)
    got = collect(sample(model, state, lp, 5, rng=np.random.default_rng(0)))
    assert [len(s) for s in got] == [5, 5]
    assert model.steps == 4


# -------------------------------------------------------------------------- sampling


def test_sampling_with_a_fixed_rng_is_reproducible():
    model = TinyRNN(V=8, H=4, scale=0.5)
    state, lp = model.start(B=2)

    def draw(seed: int) -> list[list[int]]:
        rng = np.random.default_rng(seed)
        return collect(sample(model, state, lp, 30, temperature=1.3, top_k=6, rng=rng))

    assert draw(7) == draw(7)
    assert draw(7) != draw(8)


def test_first_token_frequencies_follow_the_distribution():
    model = TinyRNN(V=5, H=3, scale=1.0)
    state, lp = model.start()
    n = 20000
    tokens = next(sample(model, state, lp, 1, num_samples=n, rng=np.random.default_rng(0)))
    freq = np.bincount(tokens, minlength=5) / n
    p = np.exp(lp[0])
    assert np.all(np.abs(freq - p) < 4 * np.sqrt(p * (1 - p) / n) + 1e-3)


def test_num_samples_duplicates_each_input_row_in_order():
    model = TinyRNN(V=6, H=5)
    state, lp = model.start(B=2)
    got = collect(sample(model, state, lp, 8, temperature=0, num_samples=3))
    chain = argmax_chain(model, state, lp, 8).tolist()
    assert got == [chain[0]] * 3 + [chain[1]] * 3


def test_temperature_zero_and_near_zero_equal_greedy():
    model = TinyRNN(V=6, H=5)
    state, lp = model.start(B=3)
    want = collect(greedy(model, state, lp, 20))
    assert collect(sample(model, state, lp, 20, temperature=0.0)) == want
    rng = np.random.default_rng(0)
    assert collect(sample(model, state, lp, 20, temperature=1e-4, rng=rng)) == want


def sampled_with_their_distributions(**options):
    """Sample from a recording model; pair each drawn token with the log-probs it came from."""
    model = TinyRNN(V=10, H=6, scale=1.0)
    state, lp = model.start(B=4)
    stream = list(sample(model, state, lp, 25, rng=np.random.default_rng(1), **options))
    sources = [lp, *model.recorded]
    return [(tokens, sources[t]) for t, tokens in enumerate(stream)]


def test_top_k_never_draws_outside_the_k_best():
    pairs = sampled_with_their_distributions(top_k=3, temperature=2.0)
    for tokens, lp in pairs:
        rank = (lp > lp[np.arange(len(tokens)), tokens][:, None]).sum(axis=1)
        assert np.all(rank < 3)


def test_top_p_draws_only_from_the_nucleus():
    pairs = sampled_with_their_distributions(top_p=0.6)
    for tokens, lp in pairs:
        p = np.exp(lp)
        chosen = p[np.arange(len(tokens)), tokens]
        mass_above = np.where(p > chosen[:, None], p, 0).sum(axis=1)
        assert np.all(mass_above < 0.6)  # the tokens before it had not reached top_p yet


def test_top_p_keeps_the_smallest_nucleus():
    p = np.array([[0.05, 0.5, 0.15, 0.3]])
    lp = np.log(p)
    kept = lambda top_p: set(np.flatnonzero(filter_log_probs(lp, top_p=top_p)[0]).tolist())
    assert kept(0.3) == {1}
    assert kept(0.5) == {1}
    assert kept(0.75) == {1, 3}
    assert kept(0.9) == {1, 2, 3}
    assert kept(1.0) == {0, 1, 2, 3}
    q = filter_log_probs(lp, top_p=0.75)[0]
    assert np.allclose(q, [0, 0.5 / 0.8, 0, 0.3 / 0.8])
    # On random distributions: the kept mass reaches top_p, and not without its least token.
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(12), size=50)
    for top_p in (0.2, 0.5, 0.9):
        q = filter_log_probs(np.log(probs), top_p=top_p)
        keep = q > 0
        mass = np.where(keep, probs, 0).sum(axis=1)
        smallest = np.where(keep, probs, np.inf).min(axis=1)
        assert np.all(mass >= top_p) and np.all(mass - smallest < top_p)


def test_temperature_and_top_k_shape_the_distribution():
    lp = np.log(np.array([[0.1, 0.2, 0.3, 0.4]]))
    q = filter_log_probs(lp, temperature=0.5)
    assert np.allclose(q, np.array([[1, 4, 9, 16]]) / 30)
    q = filter_log_probs(lp, top_k=2)
    assert np.allclose(q, [[0, 0, 3 / 7, 4 / 7]])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"temperature": -0.1}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": -1}, "top_k"),
        ({"num_samples": 0}, "num_samples"),
        ({"stop_tokens": [4]}, "stop_tokens"),
    ],
)
def test_sampling_rejects_bad_options(options, message):
    model = TinyRNN()
    state, lp = model.start()
    with pytest.raises(RnnkitError, match=message):
        sample(model, state, lp, 5, **options)  # checked at the call, before any step


def test_bad_shapes_and_lengths_are_rejected():
    model = TinyRNN()
    state, lp = model.start()
    with pytest.raises(RnnkitError, match="log_probs"):
        greedy(model, state, lp[0], 5)
    with pytest.raises(RnnkitError, match="max_len"):
        greedy(model, state, lp, 0)


# ----------------------------------------------------------------- beam and exhaustive


def test_length_normalizer_forms():
    assert length_normalizer(1, 1.0, "gnmt") == pytest.approx(1.0)
    assert length_normalizer(7, 1.0, "gnmt") == pytest.approx(2.0)
    assert length_normalizer(4, 0.5, "simple") == pytest.approx(2.0)
    assert length_normalizer(9, 0.0, "simple") == pytest.approx(1.0)
    with pytest.raises(RnnkitError, match="penalty_form"):
        length_normalizer(3, 1.0, "wu")


def test_exhaustive_search_scores_every_sequence_correctly():
    model = TinyRNN(V=3, H=3, seed=5)
    state, lp = model.start()
    best = exhaustive_search(model, state, lp, 3, n_best=100, stop_tokens=[2])[0]
    # Every sequence of 1..3 tokens that ends at its first stop token or at max_len.
    want = [[2]] + [[a, 2] for a in (0, 1)]
    want += [[a, b, c] for a, b, c in itertools.product((0, 1), (0, 1), (0, 1, 2))]
    assert sorted(h.tokens for h in best) == sorted(want)
    for h in best:
        assert h.log_prob == pytest.approx(model.log_prob(state, lp, h.tokens), abs=1e-12)
        assert h.score == h.log_prob


@pytest.mark.parametrize("stop_tokens", [(), (3,)])
@pytest.mark.parametrize(("alpha", "form"), [(0.0, "gnmt"), (0.8, "gnmt"), (1.5, "simple")])
def test_wide_beam_finds_the_exhaustive_optimum(stop_tokens, alpha, form):
    model = TinyRNN(V=4, H=4, seed=11, scale=1.5)
    state, lp = model.start(B=2, seed=4)
    options = dict(n_best=5, stop_tokens=stop_tokens, length_penalty=alpha, penalty_form=form)
    exact = exhaustive_search(model, state, lp, 4, **options)
    beam = beam_search(model, state, lp, 4, beam_width=4**3, **options)
    for want, got in zip(exact, beam, strict=True):
        assert [h.tokens for h in got] == [h.tokens for h in want]
        assert np.allclose([h.score for h in got], [h.score for h in want], atol=1e-12)
        assert np.allclose([h.log_prob for h in got], [h.log_prob for h in want], atol=1e-12)
        for h in got:
            lp_len = length_normalizer(len(h.tokens), alpha, form)
            assert h.score == pytest.approx(h.log_prob / lp_len, abs=1e-12)


def test_length_penalty_changes_what_wins():
    # With a stop token, alpha = 0 prefers short sequences; a strong penalty longer ones.
    model = TinyRNN(V=4, H=4, seed=11, scale=1.5)
    state, lp = model.start(B=2, seed=4)
    lengths = {}
    for alpha in (0.0, 2.0):
        best = exhaustive_search(
            model, state, lp, 4, stop_tokens=[3], length_penalty=alpha, penalty_form="simple"
        )
        lengths[alpha] = [len(b[0].tokens) for b in best]
    assert lengths[0.0] == [4, 1] and lengths[2.0] == [4, 4]


@pytest.mark.parametrize("stop_tokens", [(), (2,)])
def test_beam_width_one_is_greedy(stop_tokens):
    model = TinyRNN(V=5, H=4, seed=2)
    state, lp = model.start(B=3, seed=6)
    want = collect(greedy(model, state, lp, 12, stop_tokens=stop_tokens))
    got = beam_search(model, state, lp, 12, beam_width=1, stop_tokens=stop_tokens)
    assert [b[0].tokens for b in got] == want


def test_n_best_is_sorted_distinct_and_beats_a_narrower_beam():
    model = TinyRNN(V=5, H=4, seed=2, scale=1.0)
    state, lp = model.start(B=1, seed=6)
    wide = beam_search(model, state, lp, 8, beam_width=6, n_best=6, stop_tokens=[4])[0]
    scores = [h.score for h in wide]
    assert len(wide) == 6 and scores == sorted(scores, reverse=True)
    assert len({tuple(h.tokens) for h in wide}) == 6
    narrow = beam_search(model, state, lp, 8, beam_width=2, stop_tokens=[4])[0][0]
    exact = exhaustive_search(model, state, lp, 8, stop_tokens=[4])[0][0]
    assert narrow.score <= wide[0].score <= exact.score + 1e-12


def test_batched_beam_search_equals_one_row_at_a_time():
    model = TinyRNN(V=5, H=4, seed=3)
    state, lp = model.start(B=3, seed=1)
    options = dict(beam_width=3, n_best=2, stop_tokens=[0], length_penalty=0.6)
    together = beam_search(model, state, lp, 7, **options)
    for r in range(3):
        alone = beam_search(model, state[r : r + 1], lp[r : r + 1], 7, **options)[0]
        assert [h.tokens for h in alone] == [h.tokens for h in together[r]]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"beam_width": 0}, "beam_width"),
        ({"beam_width": 2, "n_best": 3}, "n_best"),
        ({"beam_width": 2, "penalty_form": "x"}, "penalty_form"),
        ({"beam_width": 2, "stop_tokens": [-1]}, "stop_tokens"),
    ],
)
def test_beam_search_rejects_bad_options(options, message):
    model = TinyRNN()
    state, lp = model.start()
    with pytest.raises(RnnkitError, match=message):
        beam_search(model, state, lp, 5, **options)


def test_exhaustive_search_refuses_huge_spaces():
    model = TinyRNN(V=4)
    state, lp = model.start()
    with pytest.raises(RnnkitError, match="max_sequences"):
        exhaustive_search(model, state, lp, 20)
