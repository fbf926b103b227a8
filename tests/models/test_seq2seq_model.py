"""The encoder–decoder: shapes, masks, the parallel and step-by-step decoders agreeing, teacher
forcing and its schedule, tied weights, and searches through rnnkit.decoding."""

import itertools

import pytest
import torch

from rnnkit.checkpoint import load_model, save_checkpoint
from rnnkit.decoding import beam_search, exhaustive_search
from rnnkit.errors import RnnkitError
from rnnkit.models.seq2seq import (
    Seq2Seq,
    Seq2SeqConfig,
    reorder_state,
    reverse_padded,
    teacher_forcing_ratio,
)
from rnnkit.tasks.translator import DecoderStepper

VS, VT = 11, 9  # ids 0-3 are <pad> <unk> <bos> <eos>


def make(**options) -> Seq2Seq:
    config = dict(
        hidden_size=8,
        embedding_size=6,
        num_layers=2,
        source_vocab_size=VS,
        target_vocab_size=VT,
        dropout=0.0,
    )
    return Seq2Seq(Seq2SeqConfig(**{**config, **options})).eval()


def batch():
    """Three sources of lengths 5, 3, 1 (padded with 0) and targets ending in <eos> (3)."""
    g = torch.Generator().manual_seed(1)
    src = torch.randint(4, VS, (3, 5), generator=g)
    lengths = torch.tensor([5, 3, 1])
    src[1, 3:] = 0
    src[2, 1:] = 0
    tgt = torch.randint(4, VT, (3, 4), generator=g)
    tgt[:, -1] = 3
    tgt[2, 2] = 3
    tgt[2, 3] = -1
    return src, lengths, tgt


CONFIGS = list(
    itertools.product(
        ["lstm", "gru"], ["none", "additive", "dot", "general"], [True, False], [True, False]
    )
)


@pytest.mark.parametrize("cell,attention,bidirectional,feeding", CONFIGS)
def test_shapes_masks_and_steps_agree(cell, attention, bidirectional, feeding):
    m = make(cell=cell, attention=attention, bidirectional=bidirectional, input_feeding=feeding)
    src, lengths, tgt = batch()
    prev = m.shift_right(tgt)
    assert prev[:, 0].eq(2).all() and prev[2, 1:].tolist() == tgt[2, :3].tolist()  # <bos> y…
    logits, alpha = m(src, lengths, prev)
    assert logits.shape == (3, 4, VT)
    if attention == "none":
        assert alpha is None
    else:
        assert alpha.shape == (3, 4, 5)
        torch.testing.assert_close(alpha.sum(-1), torch.ones(3, 4))
        assert alpha[1, :, 3:].eq(0).all() and alpha[2, :, 1:].eq(0).all()  # padding: 0
    # One token at a time (what translation runs) gives the same numbers as training's pass.
    state, steps = m.encode(src, lengths), []
    for t in range(4):
        log_probs, state, _ = m.decode_step(prev[:, t], state)
        steps.append(log_probs)
    torch.testing.assert_close(torch.stack(steps, 1), torch.log_softmax(logits, -1))


@pytest.mark.parametrize("attention", ["none", "additive", "general"])
@pytest.mark.parametrize("reverse", [False, True])
def test_padding_changes_nothing(attention, reverse):
    """A row's output is the same alone as in a batch with longer (padded) rows."""
    m = make(attention=attention, reverse_source=reverse)
    src, lengths, tgt = batch()
    logits, alpha = m(src, lengths, m.shift_right(tgt))
    alone, alpha1 = m(src[1:2, :3], lengths[1:2], m.shift_right(tgt)[1:2])
    torch.testing.assert_close(logits[1:2], alone)
    if alpha is not None:
        torch.testing.assert_close(alpha[1:2, :, :3], alpha1)


def test_reverse_source_reads_backwards_but_attends_in_source_order():
    x = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
    lengths = torch.tensor([3, 2])
    assert reverse_padded(x, lengths).tolist() == [[3, 2, 1, 0], [5, 4, 0, 0]]
    assert torch.equal(reverse_padded(reverse_padded(x, lengths), lengths), x)
    m = make(attention="additive", reverse_source=True, bidirectional=False)
    src, lengths, tgt = batch()
    state = m.encode(src, lengths)
    # Unidirectional over the reversed source: the first real token is read last, so its
    # output (at source position 0) equals the final state.
    torch.testing.assert_close(state.memory.values[0, 0], state.memory.context[0])


def test_teacher_forcing_zero_is_free_running():
    """At ratio 0 every input after <bos> is the model's own previous argmax: greedy decoding."""
    m = make(attention="additive")
    src, lengths, tgt = batch()
    torch.manual_seed(0)
    logits, _ = m(src, lengths, m.shift_right(tgt), teacher_forcing=0.0)
    free = logits.argmax(-1)
    greedy = m.greedy_decode(src, lengths, torch.full((3,), 4))
    for row, ids in enumerate(greedy):
        assert free[row, : len(ids)].tolist() == ids
    # At ratio 1 the same call is plain teacher forcing.
    forced, _ = m(src, lengths, m.shift_right(tgt), teacher_forcing=1.0)
    torch.testing.assert_close(forced, m(src, lengths, m.shift_right(tgt))[0])


def test_scheduled_sampling_ratios():
    c = Seq2SeqConfig(
        teacher_forcing=1.0, teacher_forcing_min=0.2, sampling_steps=100, sampling_schedule="linear"
    )
    assert [teacher_forcing_ratio(c, s) for s in (0, 50, 100, 500)] == pytest.approx(
        [1.0, 0.6, 0.2, 0.2]
    )
    c.sampling_schedule = "exponential"
    assert teacher_forcing_ratio(c, 100) == pytest.approx(0.6)  # half-life: halfway to the floor
    c.sampling_schedule = "inverse_sigmoid"
    values = [teacher_forcing_ratio(c, s) for s in range(0, 1000, 50)]
    assert all(a >= b for a, b in itertools.pairwise(values))
    assert teacher_forcing_ratio(c, 100) == pytest.approx(0.6, abs=1e-6)  # midpoint at s
    assert values[0] < 1.0 and values[-1] == pytest.approx(0.2, abs=1e-3)
    c.sampling_schedule = "none"
    assert teacher_forcing_ratio(c, 10**6) == 1.0


def test_compute_loss_label_smoothing_and_metrics():
    m = make(attention="dot", label_smoothing=0.1)
    src, lengths, tgt = batch()
    b = {"inputs": src, "lengths": lengths, "targets": tgt, "step": torch.tensor(3)}
    m.train()
    smoothed = m.compute_loss(b)
    m.eval()
    plain = m.compute_loss(b)
    assert plain.num_tokens == 11  # 4 + 4 + 3 real targets
    logits, _ = m(src, lengths, m.shift_right(tgt))
    nll = torch.nn.functional.cross_entropy(
        logits.reshape(-1, VT), tgt.reshape(-1), ignore_index=-1
    )
    torch.testing.assert_close(plain.loss, nll)  # validation loss: no smoothing
    assert not torch.isclose(smoothed.loss, plain.loss)
    refs = ["x y", "x", "y"]
    b.update(references=refs, detokenize=lambda ids: refs[0])
    out = m.compute_loss(b)
    assert out.metrics["bleu_counts"].shape == (10,)
    summary = m.summarize_metrics(dict(out.metrics), out.num_tokens)
    assert 0 <= summary["accuracy"] <= 1 and 0 <= summary["bleu"] <= 100


def test_shared_and_tied_embeddings_survive_a_checkpoint(tmp_path):
    m = make(source_vocab_size=VT, share_embeddings=True, tie_embeddings=True, hidden_size=6)
    assert m.src_embed is m.tgt_embed
    assert sum(p.numel() for p in m.parameters()) < sum(
        p.numel() for p in make(source_vocab_size=VT, hidden_size=6).parameters()
    )
    save_checkpoint(tmp_path / "ckpt", m)
    loaded = load_model(tmp_path / "ckpt")
    src, lengths, tgt = batch()
    src = src.clamp(max=VT - 1)
    torch.testing.assert_close(
        loaded(src, lengths, m.shift_right(tgt))[0], m(src, lengths, m.shift_right(tgt))[0]
    )
    with pytest.raises(RnnkitError, match="share_embeddings needs one vocabulary"):
        make(share_embeddings=True)


def test_config_checks():
    with pytest.raises(RnnkitError, match="attention must be one of"):
        Seq2SeqConfig(attention="cosine")
    with pytest.raises(RnnkitError, match="teacher_forcing_min"):
        Seq2SeqConfig(teacher_forcing=0.5, teacher_forcing_min=0.8)
    with pytest.raises(RnnkitError, match="source must be an int64 tensor"):
        make().encode(torch.zeros(2, 3))


def test_beam_search_through_decoding_finds_the_exhaustive_best():
    """Beam search over the stepper (encoder memory cached, rows reordered) with a beam as wide
    as every prefix is exact: it equals exhaustive search, which scores every sequence."""
    m = make(attention="general", target_vocab_size=5)
    src, lengths, _ = batch()
    stepper = DecoderStepper(m)
    with torch.inference_mode():
        log_probs, state = stepper.start(src.numpy(), lengths.numpy())
        kw = dict(n_best=3, stop_tokens=[3], length_penalty=0.6)
        exact = exhaustive_search(stepper, state, log_probs, 4, **kw)
        beam = beam_search(stepper, state, log_probs, 4, beam_width=5**4, **kw)
        narrow = beam_search(stepper, state, log_probs, 4, beam_width=2, **{**kw, "n_best": 1})
    for e, b in zip(exact, beam, strict=True):
        assert [h.tokens for h in e] == [h.tokens for h in b]
        assert [h.score for h in e] == pytest.approx([h.score for h in b], abs=1e-5)
    assert all(n[0].score <= e[0].score + 1e-6 for n, e in zip(narrow, exact, strict=True))
    # The reported log P is the model's: teacher-force the best hypothesis of row 0.
    best = exact[0][0].tokens
    prev = torch.tensor([[2, *best[:-1]]])
    with torch.no_grad():
        logits, _ = m(src[:1], lengths[:1], prev)
    lp = torch.log_softmax(logits, -1)[0, torch.arange(len(best)), best].sum()
    assert float(lp) == pytest.approx(exact[0][0].log_prob, abs=1e-5)


def test_reorder_state_picks_rows():
    m = make(attention="additive", cell="lstm")
    src, lengths, _ = batch()
    state = m.encode(src, lengths)
    r = reorder_state(state, torch.tensor([2, 2, 0]))
    assert torch.equal(r.h[:, 0], state.h[:, 2]) and torch.equal(r.c[:, 2], state.c[:, 0])
    assert torch.equal(r.memory.mask[1], state.memory.mask[2])
    assert torch.equal(r.memory.keys.projected[2], state.memory.keys.projected[0])
    assert torch.equal(r.memory.values[0], state.memory.values[2])
    assert torch.equal(r.feed, state.feed[[2, 2, 0]])


@pytest.mark.parametrize("attention,feeding", [("additive", True), ("general", False)])
def test_mixed_precision_forward_and_backward(attention, feeding):
    """Under bf16 autocast (TrainConfig.precision) the step loop and the one-call decoder run."""
    m = make(attention=attention, input_feeding=feeding).train()
    src, lengths, tgt = batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m.compute_loss({"inputs": src, "lengths": lengths, "targets": tgt})
    out.loss.backward()
    assert torch.isfinite(out.loss) and m.bridge_h.weight.grad is not None
