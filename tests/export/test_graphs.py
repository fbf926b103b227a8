"""The tagger, encoder–decoder, forecaster and speech recogniser exported to ONNX and run in
onnxruntime on inputs of another size than the trace's: the same numbers as the torch model and
the same decisions (tags, translations, transcripts)."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from test_tracing import TOLERANCE, save, session

from rnnkit.export import export_onnx
from rnnkit.models.forecaster import Forecaster, ForecasterConfig
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from rnnkit.models.speech import SpeechConfig, SpeechRecognizer
from rnnkit.models.tagger import Tagger, TaggerConfig

pytest.importorskip("onnxruntime")


def exported(tmp_path, model, name="m"):
    """Export ``model`` (eval mode) and return the files, each checked by export_onnx."""
    files = export_onnx(save(tmp_path, model.eval()), tmp_path / f"{name}.onnx")
    for done in files:
        print(done.path.name, {k: f"{v:.1e}" for k, v in done.max_abs_diff.items()})
        assert done.same_argmax is not False and max(done.max_abs_diff.values()) < TOLERANCE
    return files


# ---- tagger -------------------------------------------------------------------------------------

TAGS = ("B-LOC", "B-PER", "I-LOC", "I-PER", "O")


def viterbi(emissions, start, transitions, end):
    """The best tag path of one sentence (T, K), in NumPy: what a user of the file writes."""
    score, back = start + emissions[0], []
    for e in emissions[1:]:
        total = score[:, None] + transitions  # (from, to)
        back.append(total.argmax(0))
        score = total.max(0) + e
    path = [int((score + end).argmax())]
    for b in reversed(back):
        path.append(int(b[path[-1]]))
    return path[::-1]


@pytest.mark.parametrize(
    "char_encoder, output, casing",
    [("lstm", "crf", 3), ("cnn", "softmax", 0), ("none", "crf", 0)],
)
def test_tagger_emissions_and_transitions_give_the_models_tags(
    tmp_path, char_encoder, output, casing
):
    torch.manual_seed(0)
    config = TaggerConfig(
        vocab_size=20,
        char_vocab_size=12,
        embedding_size=8,
        char_embedding_size=6,
        char_hidden_size=5,
        hidden_size=12,
        tags=TAGS,
        tag_scheme="BIO",
        char_encoder=char_encoder,
        output=output,
        casing_size=casing,
    )
    model = Tagger(config)
    (done,) = exported(tmp_path, model)
    # Sentences of 6, 2 and 4 words, words of up to 7 characters (the trace had 5).
    lengths = torch.tensor([6, 2, 4])
    real = torch.arange(6)[None, :] < lengths[:, None]
    words = torch.randint(2, 20, (3, 6)) * real
    chars = torch.randint(2, 12, (3, 6, 7)) * (torch.arange(7) < 3)[None, None] * real[..., None]
    chars[0, 0] = torch.randint(2, 12, (7,))  # one word fills the width
    casing = torch.randint(1, 8, (3, 6)) * real
    chars = chars if char_encoder != "none" else None
    casing = casing if config.casing_size else None
    feeds = {"words": words, "lengths": lengths, "chars": chars, "casing": casing}
    run = session(done.path)
    names = [i.name for i in run.get_inputs()]
    assert names == [n for n, x in feeds.items() if x is not None]
    got = run.run(None, {n: feeds[n].numpy() for n in names})
    with torch.no_grad():
        emissions = model(words, chars, lengths, casing)
        tags = model.decode(emissions, lengths)
    np.testing.assert_allclose(got[0][real], emissions[real].numpy(), atol=TOLERANCE)
    if output == "crf":
        start, A, end = (t.detach().numpy() for t in model.crf.transition_scores())
        for have, want in zip(got[1:], (start, A, end), strict=True):
            np.testing.assert_array_equal(have, want)
        for b, n in enumerate(lengths.tolist()):
            assert viterbi(got[0][b, :n], *got[1:]) == tags[b, :n].tolist()
    else:
        assert len(got) == 1
        assert np.array_equal(got[0].argmax(-1)[real], tags[real].numpy())


# ---- encoder–decoder ----------------------------------------------------------------------------


def greedy(encoder, decoder, source, lengths, bos, eos, steps):
    """Greedy translation with the two files, in NumPy: what a user of the files writes."""
    names = [o.name for o in encoder.get_outputs()]
    enc = dict(zip(names, encoder.run(None, {"source": source, "lengths": lengths}), strict=True))
    wanted = {i.name for i in decoder.get_inputs()}
    state = {n: v for n, v in enc.items() if n in wanted}
    tokens, out = np.full(len(source), bos), []
    for _ in range(steps):
        results = decoder.run(None, {"tokens": tokens, **state})
        named = dict(zip([o.name for o in decoder.get_outputs()], results, strict=True))
        state.update({n.removesuffix("_out"): v for n, v in named.items() if n.endswith("_out")})
        tokens = named["log_probs"].argmax(-1)
        out.append(tokens)
    rows = np.stack(out, 1).tolist()
    return [row[: row.index(eos)] if eos in row else row for row in rows]


@pytest.mark.parametrize(
    "attention, cell, feeding, bidirectional",
    [
        ("additive", "gru", False, True),
        ("dot", "lstm", True, True),
        ("general", "lstm", False, False),
        ("none", "gru", False, True),
    ],
)
def test_seq2seq_encoder_and_decoder_step_translate_as_the_model(
    tmp_path, attention, cell, feeding, bidirectional
):
    torch.manual_seed(0)
    config = Seq2SeqConfig(
        source_vocab_size=11,
        target_vocab_size=9,
        hidden_size=8,
        embedding_size=6,
        num_layers=2,
        attention=attention,
        cell=cell,
        input_feeding=feeding,
        bidirectional=bidirectional,
        context_every_step=attention == "none",
    )
    model = Seq2Seq(config)
    enc, dec = exported(tmp_path, model, "s2s")
    assert (enc.path.name, dec.path.name) == ("s2s.encoder.onnx", "s2s.decoder.onnx")
    assert ("attention" in dec.outputs) == (attention != "none")
    lengths = torch.tensor([5, 9, 1, 7])
    source = torch.randint(4, 11, (4, 9)) * (torch.arange(9)[None, :] < lengths[:, None])
    ours = greedy(session(enc.path), session(dec.path), source.numpy(), lengths.numpy(),
                  config.bos_id, config.eos_id, 12)  # fmt: skip
    theirs = model.greedy_decode(source, lengths, torch.full((4,), 12))
    assert ours == theirs


def test_the_readme_translates_with_the_two_files_without_rnnkit(tmp_path, monkeypatch, capsys):
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "m30k" in b]
    assert "rnnkit" not in block
    specials = ["<pad>", "<unk>", "<bos>", "<eos>"]
    source = specials + ["Ein", "Hund", "rennt", "durch", "den", "Schnee", "."]
    target = specials + ["A", "dog", "runs", "through", "the", "snow", "."]
    torch.manual_seed(3)
    config = Seq2SeqConfig(source_vocab_size=len(source), target_vocab_size=len(target),
                           hidden_size=8, embedding_size=6, attention="additive")  # fmt: skip
    model = Seq2Seq(config).eval()
    vocab = {"shared": False, "source": {"itos": source}, "target": {"itos": target}}
    ckpt = save(tmp_path, model, **{"vocab.json": vocab})
    export_onnx(ckpt, tmp_path / "m30k.onnx", check=False)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {})
    ids = torch.arange(4, 11)[None]
    (want,) = model.greedy_decode(ids, torch.tensor([7]), torch.tensor([50]))
    assert capsys.readouterr().out == " ".join(target[i] for i in want) + "\n"


# ---- forecaster ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "strategy, loss, n_past, n_future",
    [
        ("recursive", "gaussian", 0, 1),
        ("direct", "quantile", 1, 0),
        ("seq2seq", "mse", 1, 2),
    ],
)
def test_forecaster_forecasts_as_the_model(tmp_path, strategy, loss, n_past, n_future):
    torch.manual_seed(0)
    config = ForecasterConfig(
        hidden_size=8,
        ensemble=2,
        strategy=strategy,
        loss=loss,
        lookback=6,
        horizon=4,
        n_targets=2,
        n_past=n_past,
        n_future=n_future,
    )
    model = Forecaster(config)
    (done,) = exported(tmp_path, model)
    history = torch.randn(5, 6, 2 + n_past + n_future)
    future = torch.randn(5, 4, n_future) if n_future else None
    feeds = {"history": history.numpy()}
    if n_future:
        feeds["future"] = future.numpy()
    got = session(done.path).run(None, feeds)
    want = model.forecast(history, future)
    np.testing.assert_allclose(got[0], want.point.numpy(), atol=TOLERANCE)
    if config.has_interval:
        np.testing.assert_allclose(got[1], want.lower.numpy(), atol=TOLERANCE)
        np.testing.assert_allclose(got[2], want.upper.numpy(), atol=TOLERANCE)
    else:
        assert len(got) == 1


# ---- speech -------------------------------------------------------------------------------------


@pytest.mark.parametrize("subsample", ["conv", "stack"])
def test_speech_scores_give_the_models_transcripts(tmp_path, subsample):
    torch.manual_seed(0)
    config = SpeechConfig(
        num_features=6,
        alphabet="ab ",
        hidden_size=8,
        num_layers=2,
        subsample=subsample,
        subsample_factor=3,
    )
    model = SpeechRecognizer(config)
    (done,) = exported(tmp_path, model)
    lengths = torch.tensor([20, 31, 8])  # 31 frames: not a multiple of 3
    features = torch.randn(3, 31, 6)
    logits, steps = session(done.path).run(
        None, {"features": features.numpy(), "lengths": lengths.numpy()}
    )
    with torch.no_grad():
        want, want_steps = model(features, lengths)
    assert steps.tolist() == want_steps.tolist() == [7, 11, 3] and logits.shape[1] == 11
    for b, n in enumerate(steps.tolist()):
        np.testing.assert_allclose(logits[b, :n], want[b, :n].numpy(), atol=TOLERANCE)
    texts = model.greedy_transcripts(torch.from_numpy(logits).log_softmax(-1), torch.tensor(steps))
    assert texts == model.greedy_transcripts(want.log_softmax(-1), want_steps)
