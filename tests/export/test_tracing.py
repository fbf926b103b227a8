"""ONNX export of every model type that has one, run in onnxruntime against the torch model:
the same numbers (max |difference| reported) and the same greedy outputs."""

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rnnkit.checkpoint import register_model, save_checkpoint
from rnnkit.errors import RnnkitError
from rnnkit.export import EXPORTERS, OPSET, OnnxGraph, export_onnx, exportable, register_exporter
from rnnkit.models.classifier import ClassifierConfig, SequenceClassifier
from rnnkit.models.language_model import LanguageModel, LMConfig
from rnnkit.nn import LSTM

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
TOLERANCE = 1e-5  # float32 through two implementations of the same kernels


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def metadata(path):
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def save(tmp_path, model, name="ckpt", **extra):
    return save_checkpoint(tmp_path / name, model, extra_files=extra or None)


def lm(cell="lstm", reset_after=False, layers=2, embedding=8):
    torch.manual_seed(0)
    config = LMConfig(
        vocab_size=13,
        embedding_size=embedding,
        hidden_size=16,
        num_layers=layers,
        cell=cell,
        reset_after=reset_after,
    )
    return LanguageModel(config).eval()


@pytest.mark.parametrize(
    "cell, reset_after",
    [("lstm", False), ("gru", False), ("gru", True), ("rnn", False)],
    ids=["lstm", "gru-textbook", "gru-cudnn", "rnn"],
)
def test_language_model_step_matches_torch_and_greedy_text_is_identical(
    tmp_path, cell, reset_after
):
    model = lm(cell, reset_after)
    vocab = {"itos": [chr(97 + i) for i in range(13)]}
    ckpt = save(tmp_path, model, **{"vocab.json": vocab})
    (done,) = export_onnx(ckpt, tmp_path / "lm.onnx")
    print(f"{cell} reset_after={reset_after}: max |difference| {done.max_abs_diff}")
    assert done.opset == OPSET and done.same_argmax
    assert max(done.max_abs_diff.values()) < TOLERANCE
    meta = metadata(done.path)
    assert meta["rnnkit.model_type"] == "language_model" and meta["rnnkit.opset"] == str(OPSET)
    assert json.loads(meta["vocab.json"]) == vocab
    assert onnx.load(str(done.path)).opset_import[0].version == OPSET
    # Greedy generation one token at a time, the state carried: onnxruntime and torch agree.
    run = session(done.path)
    names = [i.name for i in run.get_inputs()]
    tokens = torch.tensor([[1], [7], [12]])  # three prompts, batch 3
    state = [np.zeros((2, 3, 16), np.float32) for _ in names[1:]]
    ours, torch_state, theirs = tokens.numpy(), None, tokens
    for _ in range(20):
        logits, *state = run.run(None, dict(zip(names, [ours, *state], strict=True)))
        ours = logits[:, -1].argmax(-1)[:, None]
        log_probs, torch_state = model.next_log_probs(theirs, torch_state)
        theirs = log_probs.argmax(-1, keepdim=True)
        assert np.array_equal(ours, theirs.numpy())
    # The whole prompt in one call (steps > 1) is the same graph.
    prompt = torch.randint(13, (2, 9))
    logits, *_ = run.run(None, {"tokens": prompt.numpy(), **_zeros(names[1:], 2)})
    np.testing.assert_allclose(logits, model(prompt)[0].detach().numpy(), atol=TOLERANCE)


def _zeros(names, batch):
    return {n: np.zeros((2, batch, 16), np.float32) for n in names}


def test_one_hot_language_model_exports(tmp_path):
    (done,) = export_onnx(save(tmp_path, lm("lstm", layers=1, embedding=0)), tmp_path / "m.onnx")
    assert done.same_argmax and max(done.max_abs_diff.values()) < TOLERANCE


def classifier(pooling="max", cell="lstm", series=False, bidirectional=True):
    torch.manual_seed(0)
    kind = {"input_kind": "series", "input_channels": 3} if series else {"vocab_size": 20}
    config = ClassifierConfig(
        num_classes=4,
        embedding_size=0 if series else 8,
        hidden_size=8,
        num_layers=2,
        pooling=pooling,
        cell=cell,
        bidirectional=bidirectional,
        **kind,
    )
    return SequenceClassifier(config).eval()


@pytest.mark.parametrize(
    "pooling, cell, series",
    [
        ("final", "lstm", False),
        ("mean", "gru", False),
        ("max", "rnn", True),
        ("attention", "gru", True),
    ],
)
def test_classifier_matches_torch_on_padded_batches(tmp_path, pooling, cell, series):
    model = classifier(pooling, cell, series)
    (done,) = export_onnx(save(tmp_path, model), tmp_path / "cls.onnx", check=False)
    assert done.max_abs_diff is None  # check=False: not run
    # Another batch size and length than the trace's, lengths in no particular order.
    lengths = torch.tensor([4, 11, 1, 7, 11])
    x = torch.randn(5, 11, 3) if series else torch.randint(1, 20, (5, 11))
    (logits,) = session(done.path).run(None, {"inputs": x.numpy(), "lengths": lengths.numpy()})
    with torch.no_grad():
        want = model(x, lengths).numpy()
    print(f"{pooling}/{cell}: max |difference| {np.abs(logits - want).max():.2e}")
    np.testing.assert_allclose(logits, want, atol=TOLERANCE)
    assert np.array_equal(logits.argmax(-1), want.argmax(-1))  # the predicted classes


def test_a_one_direction_classifier_checks_itself(tmp_path):
    ckpt = save(tmp_path, classifier("final", bidirectional=False))
    (done,) = export_onnx(ckpt, tmp_path / "c.onnx")
    assert done.same_argmax and done.max_abs_diff["logits"] < TOLERANCE


def test_cells_onnx_cannot_compute_are_refused():
    model = lm()
    model.rnn = LSTM(8, 16, activation="linear")  # no ONNX LSTM computes it
    with pytest.raises(RnnkitError, match="cannot export layer 'rnn' to ONNX"):
        exportable(model)


def test_bad_requests_are_one_clear_error(tmp_path, monkeypatch):
    ckpt = save(tmp_path, lm(layers=1))
    with pytest.raises(RnnkitError, match="must end in .onnx"):
        export_onnx(ckpt, tmp_path / "model.bin")
    with pytest.raises(RnnkitError, match="--opset must be in 14..20, got 9"):
        export_onnx(ckpt, tmp_path / "m.onnx", opset=9)
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if it were not installed
    with pytest.raises(RnnkitError, match=r"pip install 'rnnkit\[export\]'"):
        export_onnx(ckpt, tmp_path / "m.onnx")


@dataclass
class PairConfig:
    size: int = 4


@register_model
class Pair(nn.Module):
    """A model with two graphs, like an encoder and its decoder step."""

    model_type = "pair_export_test"
    config_class = PairConfig

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.encoder, self.decoder = nn.Linear(config.size, 2), nn.Linear(2, 3)


def test_a_model_type_plugs_in_with_several_graphs(tmp_path):
    ckpt = save(tmp_path, Pair(PairConfig()))
    with pytest.raises(RnnkitError, match="has no ONNX export yet"):
        export_onnx(ckpt, tmp_path / "pair.onnx")

    @register_exporter("pair_export_test")
    def graphs(model):
        axes = {"x": {0: "batch"}, "logits": {0: "batch"}}
        return [
            OnnxGraph(model.encoder, lambda b, t: (torch.randn(b, 4),), {"x": "(b, 4)"},
                      {"logits": "(b, 2)"}, axes, part="encoder"),
            OnnxGraph(model.decoder, lambda b, t: (torch.randn(b, 2),), {"x": "(b, 2)"},
                      {"logits": "(b, 3)"}, axes, part="decoder"),
        ]  # fmt: skip

    try:
        enc, dec = export_onnx(ckpt, tmp_path / "pair.onnx")
    finally:
        del EXPORTERS["pair_export_test"]
    assert [enc.path.name, dec.path.name] == ["pair.encoder.onnx", "pair.decoder.onnx"]
    assert enc.same_argmax and dec.max_abs_diff["logits"] < TOLERANCE


def test_the_readme_runs_an_exported_model_without_rnnkit(tmp_path, monkeypatch, capsys):
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "lm.onnx" in b]
    assert "rnnkit" not in block  # onnxruntime, NumPy and JSON only
    itos = list("ROMEO: abcdef")
    model = LanguageModel(LMConfig(vocab_size=len(itos), embedding_size=8, hidden_size=16))
    ckpt = save(tmp_path, model.eval(), **{"vocab.json": {"itos": itos}})
    export_onnx(ckpt, tmp_path / "lm.onnx", check=False)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {})
    text = capsys.readouterr().out.removesuffix("\n")
    assert len(text) == len("ROMEO:") + 100 and set(text) <= set(itos)
