r"""Tracing a model's graphs into ONNX files, and checking them in onnxruntime.

Each model type registers a function (:func:`register_exporter`, keyed by ``model_type``;
the models' own are in :mod:`rnnkit.export.graphs`) that describes its graph(s) as
:class:`OnnxGraph` s: a module whose ``forward`` takes the named inputs in order, a way to make
sample inputs, and the dynamic axes. A model with several graphs (an encoder and a decoder
step) gives each a ``part``: ``model.onnx`` then becomes ``model.encoder.onnx`` and
``model.decoder.onnx``.

**How the recurrent layers get into ONNX.** rnnkit's layers run through torch's fused kernel
or the scan engine's custom autograd functions, and neither traces into ONNX. Before tracing,
:func:`exportable` replaces each layer by its exact ``torch.nn`` twin
(:func:`rnnkit.nn.to_torch`), run on packed sequences when there are lengths, which torch's
TorchScript exporter (``dynamo=False``) writes as ONNX's own ``LSTM`` / ``GRU`` / ``RNN``
operators, one per layer, with ``sequence_lens``. The textbook GRU (``reset_after=False``) has
no ``torch.nn`` twin but has an ONNX one: it goes out as the cuDNN-form twin with the same
weights (whose b_hn is 0) and its ``GRU`` nodes get ``linear_before_reset=0``, which is the
textbook candidate tanh(W x + U (r ⊙ h) + b). Cells no ONNX operator computes (other
activations) are refused with the reason. A graph that steps a layer's cells by hand (the
encoder–decoder's decoder step) still finds them: the twin keeps the layer's ``cells``, whose
equations trace as plain operators.

**What the file holds besides the graph**: metadata properties ``rnnkit.model_type``,
``rnnkit.opset``, ``rnnkit.version``, ``rnnkit.inputs`` / ``rnnkit.outputs`` (JSON: name →
shape and meaning), ``rnnkit.model_config`` and every JSON file of the checkpoint under its
name (``vocab.json``: ``itos`` maps ids to tokens; ``labels.json``: ``labels`` maps class ids).
The opset is :data:`OPSET` unless asked otherwise: everything the graphs use exists since
opset 14 and 17 runs on every maintained runtime (onnxruntime 1.11 and later).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit import __version__
from rnnkit.checkpoint import load_extra_file, load_model, read_config, resolve_checkpoint
from rnnkit.errors import RnnkitError
from rnnkit.nn.convert import to_torch
from rnnkit.nn.layers import RecurrentLayer

OPSET = 17
OPSETS = range(14, 21)  # what the LSTM/GRU layouts need, up to the TorchScript exporter's last


@dataclass
class OnnxGraph:
    """One graph to export.

    module: ``forward(*inputs)`` returns the outputs, a tensor or a tuple, in the order of
        ``outputs``.
    sample: ``sample(batch, steps)`` → input tensors of that size (traced with (2, 3), checked
        with others, so the dynamic axes are exercised).
    inputs, outputs: name → shape and meaning, in order (stored in the file's metadata).
    dynamic_axes: name → {axis: symbolic name}.
    part: "" for the file asked for, else the name inserted before ``.onnx``.
    scores: the outputs whose argmax over the last axis is the model's greedy choice (none
        for a graph that makes no choice: an encoder, a forecast).
    """

    module: nn.Module
    sample: Callable[[int, int], tuple[Tensor, ...]]
    inputs: dict[str, str]
    outputs: dict[str, str]
    dynamic_axes: dict[str, dict[int, str]]
    part: str = ""
    scores: tuple[str, ...] = ("logits",)


Exporter = Callable[[nn.Module], list[OnnxGraph]]
EXPORTERS: dict[str, Exporter] = {}


def register_exporter(model_type: str) -> Callable[[Exporter], Exporter]:
    """Register ``fn(model) -> [OnnxGraph, ...]`` for models of ``model_type``.

    ``fn`` is called twice: on the model whose recurrent layers :func:`exportable` has swapped
    for their torch twins (what is traced) and on the model itself (the reference the export
    is checked against), so it must only call the model's own methods.
    """

    def add(fn: Exporter) -> Exporter:
        EXPORTERS[model_type] = fn
        return fn

    return add


@dataclass
class ExportedFile:
    """A file written by :func:`export_onnx`; ``max_abs_diff``: per output, onnxruntime
    against the torch model on inputs of another batch size and length (None: not checked)."""

    path: Path
    opset: int
    inputs: dict[str, str]
    outputs: dict[str, str]
    max_abs_diff: dict[str, float] | None = None
    same_argmax: bool | None = None
    extras: list[str] = field(default_factory=list)


def export_onnx(
    run: str | os.PathLike, onnx_path: str | os.PathLike, *, opset: int = OPSET, check: bool = True
) -> list[ExportedFile]:
    """Export the model saved at ``run`` (a run directory or a checkpoint) to ``onnx_path``.

    With ``check`` and onnxruntime installed, each file is run on new inputs and compared with
    the torch model. Raises :class:`RnnkitError` for a model type without an exporter, a cell
    ONNX cannot express, or a missing ``onnx`` package.
    """
    onnx = _require("onnx")
    if opset not in OPSETS:
        raise RnnkitError(f"--opset must be in {OPSETS.start}..{OPSETS.stop - 1}, got {opset}")
    ckpt = resolve_checkpoint(run)
    config = read_config(ckpt)
    exporter = EXPORTERS.get(config["model_type"])
    if exporter is None:
        raise RnnkitError(
            f"{ckpt} holds a {config['model_type']!r} model, which has no ONNX export yet "
            f"(exported: {', '.join(sorted(EXPORTERS))})"
        )
    model = load_model(ckpt).eval()
    extras = {n: load_extra_file(ckpt, n) for n in config.get("extra_files", [])}
    twin, grus = exportable(model)
    target = Path(onnx_path)
    if target.suffix != ".onnx":
        raise RnnkitError(f"--onnx {target}: the file name must end in .onnx")
    written = []
    for graph, reference in zip(exporter(twin), exporter(model), strict=True):
        path = target.with_suffix(f".{graph.part}.onnx") if graph.part else target
        proto = _trace(onnx, graph, opset)
        taken = {i.name for i in proto.graph.input}  # the exporter drops inputs never read
        inputs = {name: what for name, what in graph.inputs.items() if name in taken}
        _flip_textbook_grus(proto, grus)
        meta = {
            "rnnkit.model_type": config["model_type"],
            "rnnkit.opset": str(opset),
            "rnnkit.version": __version__,
            "rnnkit.inputs": json.dumps(inputs),
            "rnnkit.outputs": json.dumps(graph.outputs),
            "rnnkit.model_config": json.dumps(asdict(model.config)),
            **{name: json.dumps(value) for name, value in extras.items()},
        }
        for key, value in meta.items():
            proto.metadata_props.add(key=key, value=value)
        proto.doc_string = f"rnnkit {config['model_type']} exported from {ckpt}"
        onnx.checker.check_model(proto)
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(proto, str(path))
        done = ExportedFile(path, opset, inputs, graph.outputs, extras=sorted(extras))
        if check and _has("onnxruntime"):
            done.max_abs_diff, done.same_argmax = compare(path, graph, reference)
        written.append(done)
    return written


def exportable(model: nn.Module) -> tuple[nn.Module, dict[str, bool]]:
    """A copy of ``model`` whose recurrent layers are their ``torch.nn`` twins, and for each GRU
    layer (by module path) whether it is a textbook one (its ONNX nodes then need
    ``linear_before_reset=0``)."""
    twin = copy.deepcopy(model).eval()
    grus = {}
    for name, module in list(twin.named_modules()):
        if isinstance(module, RecurrentLayer):
            layer = TorchRecurrent(module, name)
            if module.kind == "gru":
                grus[name] = layer.textbook_gru
            parent, _, attr = name.rpartition(".")
            setattr(twin.get_submodule(parent) if parent else twin, attr, layer)
    return twin, grus


class TorchRecurrent(nn.Module):
    """A rnnkit layer's ``torch.nn`` twin with the rnnkit call: ``(x, state, lengths)`` →
    ``(outputs, state)``, lengths through a packed sequence (ONNX ``sequence_lens``)."""

    def __init__(self, layer: RecurrentLayer, name: str = "rnn") -> None:
        super().__init__()
        cells = list(layer.cells)
        self.cells = layer.cells  # for graphs that step the cells by hand (a decoder step)
        self.textbook_gru = layer.kind == "gru" and not cells[0].reset_after
        if self.textbook_gru:  # the same weights in the cuDNN form; ONNX's GRU node is flipped
            layer = copy.deepcopy(layer)
            for cell in layer.cells:
                cell.reset_after = True
        try:
            self.rnn = to_torch(layer).eval()
        except RnnkitError as err:
            raise RnnkitError(f"cannot export layer {name!r} to ONNX: {err}") from None
        self.return_sequences = layer.return_sequences
        self.batch_first = layer.batch_first
        self.directions = layer.num_directions

    def forward(self, x: Tensor, state: Any = None, lengths: Tensor | None = None):
        if lengths is None:
            outputs, state = self.rnn(x, state)
        else:
            T = x.shape[1 if self.batch_first else 0]
            packed = pack_padded_sequence(
                x, lengths.cpu(), batch_first=self.batch_first, enforce_sorted=False
            )
            outputs, state = self.rnn(packed, state)
            outputs, _ = pad_packed_sequence(outputs, self.batch_first, total_length=T)
        if not self.return_sequences:
            h = state[0] if isinstance(state, tuple) else state
            outputs = torch.cat(h[-self.directions :].unbind(0), dim=-1)
        return outputs, state


def compare(
    path: Path, graph: OnnxGraph, reference: OnnxGraph
) -> tuple[dict[str, float], bool | None]:
    """Run ``path`` in onnxruntime on fresh inputs (batch 3, 7 steps) and the reference torch
    module on the same: max |difference| per output, and whether the argmax of every score
    output agrees (the greedy choice; None for a graph without scores)."""
    ort = _require("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        inputs = graph.sample(3, 7)
    taken = {i.name for i in session.get_inputs()}
    feeds = {n: t.numpy() for n, t in zip(graph.inputs, inputs, strict=True) if n in taken}
    got = session.run(list(graph.outputs), feeds)
    with torch.no_grad():
        want = reference.module(*inputs)
    want = want if isinstance(want, tuple) else (want,)
    diffs, same = {}, (True if graph.scores else None)
    for name, g, w in zip(graph.outputs, got, want, strict=True):
        w = w.float().numpy()
        diffs[name] = float(abs(g - w).max()) if w.size else 0.0
        if name in graph.scores:
            same = same and bool((g.argmax(-1) == w.argmax(-1)).all())
    return diffs, same


def _trace(onnx: Any, graph: OnnxGraph, opset: int) -> Any:
    """The ONNX ModelProto of ``graph`` from torch's TorchScript exporter."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        example = graph.sample(2, 3)
    with tempfile.TemporaryDirectory() as tmp, _quiet_exporter():
        path = Path(tmp) / "graph.onnx"
        torch.onnx.export(
            graph.module,
            example,
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=list(graph.inputs),
            output_names=list(graph.outputs),
            dynamic_axes=graph.dynamic_axes,
            do_constant_folding=True,
        )
        proto = onnx.load(str(path))
    # An output the exporter folded into a constant is named after the constant: renamed back.
    for out, name in zip(proto.graph.output, graph.outputs, strict=True):
        if out.name != name:
            proto.graph.node.append(onnx.helper.make_node("Identity", [out.name], [name]))
            out.name = name
    return proto


def _flip_textbook_grus(proto: Any, grus: dict[str, bool]) -> None:
    """``linear_before_reset=0`` on the GRU nodes of textbook GRU layers. The exporter names a
    node by module path (``/model/rnn/rnn/GRU_1``: layer ``rnn``, its twin's ``rnn``, layer 2);
    the longest GRU layer path in the name is the node's layer."""
    if not any(grus.values()):
        return
    marks = {f"/{path.replace('.', '/')}/rnn/GRU": textbook for path, textbook in grus.items()}
    for node in proto.graph.node:
        found = [m for m in marks if m in node.name] if node.op_type == "GRU" else []
        if found and marks[max(found, key=len)]:
            for attr in node.attribute:
                if attr.name == "linear_before_reset":
                    attr.i = 0


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The TorchScript exporter's Python and C++ warnings (deprecation, shape inference of
    packed sequences) say nothing a user can act on: kept off the terminal."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fd = os.dup(2)
        except OSError:  # no real stderr (a notebook): nothing to silence
            yield
            return
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(fd, 2)
                os.close(fd)


def _has(package: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(package) is not None


def _require(package: str) -> Any:
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError:
        raise RnnkitError(
            f"ONNX export needs the {package} package: pip install 'rnnkit[export]'"
        ) from None
