"""``rnnkit.summary(model)``: a Keras-style table of a model's layers and parameter counts.

Every recurrent layer is broken down into its sub-layers (layer k, direction) with the
lecture's formula evaluated next to the count actually held, e.g.::

    LSTM layer 0 fwd  d=64 N=512  4·(N·d + N² + N) = 4·(512·64 + 512² + 512) = 1,181,696  ✓

so the table doubles as an exercise checker: ✓ when the parameters held equal the formula.
"""

from collections.abc import Callable

import torch
from torch import nn

from rnnkit.nn.cells import Cell
from rnnkit.nn.layers import RecurrentLayer

_DIRECTIONS = ("fwd", "bwd")


def _count(params) -> int:
    return sum(p.numel() for p in params)


def _cell_line(title: str, cell: Cell) -> tuple[str, str]:
    """(what, formula) for one cell: "LSTM layer 0 fwd  d=64 N=512", "4·(N·d + …) = … ✓"."""
    N, d, G = cell.hidden_size, cell.input_size, cell.gates
    held = _count(cell.parameters())
    expected = cell.expected_num_parameters()
    if G == 1:
        formula = f"N·d + N² + N = {N}·{d} + {N}² + {N} = {expected:,}"
    else:
        formula = f"{G}·(N·d + N² + N) = {G}·({N}·{d} + {N}² + {N}) = {expected:,}"
    check = "✓" if held == expected else f"✗ (holds {held:,})"
    return f"{title}  d={d} N={N}", f"{formula}  {check}"


def _guess_output(module: nn.Module) -> str:
    """Output shape from the module's attributes, when no example input was given."""
    if isinstance(module, RecurrentLayer):
        F = module.num_directions * module.hidden_size
        if not module.return_sequences:
            return f"(B, {F})"
        return f"(B, T, {F})" if module.batch_first else f"(T, B, {F})"
    if isinstance(module, nn.RNNBase):
        F = (2 if module.bidirectional else 1) * (module.proj_size or module.hidden_size)
        return f"(B, T, {F})" if module.batch_first else f"(T, B, {F})"
    if isinstance(module, Cell):
        return f"(B, {module.hidden_size})"
    if isinstance(module, nn.Linear):
        return f"(…, {module.out_features})"
    if isinstance(module, nn.Embedding):
        return f"(…, {module.embedding_dim})"
    if isinstance(module, nn.Dropout | nn.LayerNorm | nn.Identity):
        return "(same)"
    return "?"


def _rows(model: nn.Module) -> list[tuple[str, nn.Module, int, list[tuple[str, str]]]]:
    """(name, module, parameters, sub-lines) for each module worth a row, in order."""
    rows = []

    def visit(name: str, module: nn.Module) -> None:
        label = f"{name or 'model'} ({type(module).__name__})"
        if isinstance(module, RecurrentLayer):
            kind = type(module).__name__
            subs = [
                _cell_line(f"{kind} layer {k} {_DIRECTIONS[d]}", module.cell(k, d))
                for k in range(module.num_layers)
                for d in range(module.num_directions)
            ]
            rows.append((label, module, _count(module.parameters()), subs))
            return
        if isinstance(module, Cell):
            rows.append(
                (
                    label,
                    module,
                    _count(module.parameters()),
                    [_cell_line(type(module).__name__, module)],
                )
            )
            return
        own = list(module.parameters(recurse=False))
        children = list(module.named_children())
        if own or not children:
            rows.append((label, module, _count(own), []))
        for child_name, child in children:
            visit(f"{name}.{child_name}" if name else child_name, child)

    visit("", model)
    return rows


def _record_outputs(model: nn.Module, modules: list[nn.Module], example_input) -> dict[int, str]:
    """Run ``model`` once (eval mode, no grad) and record each module's output shape."""
    shapes: dict[int, str] = {}

    def hook(module, _inputs, output):
        if isinstance(output, tuple | list) and output:
            output = output[0]
        if isinstance(output, torch.Tensor):
            shapes[id(module)] = str(tuple(output.shape))

    handles = [m.register_forward_hook(hook) for m in modules]
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        args = example_input if isinstance(example_input, tuple) else (example_input,)
        with torch.no_grad():
            model(*args)
    finally:
        for handle in handles:
            handle.remove()
        for m, training in modes.items():
            m.training = training
    return shapes


class Summary(str):
    """The table as a string whose repr is the table itself, so a REPL shows it once, laid
    out (``print(summary)`` in a script)."""

    def __repr__(self) -> str:
        return str(self)


def summary(
    model: nn.Module,
    example_input=None,
    *,
    print_fn: Callable[[str], None] | None = None,
) -> Summary:
    """A table of ``model``'s layers, their output shapes and parameter counts.

    Args:
        model: any ``nn.Module``; rnnkit recurrent layers and cells get one extra line per
            sub-layer (layer k, direction) with the parameter formula and a check mark.
        example_input: optional input (a tensor, or a tuple of positional arguments): the model
            is run on it once (eval mode, no grad) to show real output shapes. Without it,
            shapes are read from the layers' sizes where possible.
        print_fn: also print the table with this (e.g. ``print``); default: print nothing,
            since the returned :class:`Summary` shows itself in a REPL.

    Returns:
        The table, a :class:`Summary` (a ``str``). Totals count each parameter once (tied
        weights are shared).
    """
    rows = _rows(model)
    shapes = {}
    if example_input is not None:
        shapes = _record_outputs(model, [m for _, m, _, _ in rows], example_input)
    table = [
        (label, shapes.get(id(module), _guess_output(module)), f"{count:,}")
        for label, module, count, _ in rows
    ]
    header = ("Layer (type)", "Output shape", "Param #")
    w0, w1, w2 = (max(len(r[i]) for r in [header, *table]) for i in range(3))
    what_width = max((len(what) for *_, subs in rows for what, _ in subs), default=0)
    sub_lines = [
        [f"    {what:<{what_width}}  {formula}" for what, formula in subs] for *_, subs in rows
    ]
    subs_width = max((len(s) for subs in sub_lines for s in subs), default=0)
    width = max(w0 + w1 + w2 + 6, subs_width)

    unique = {id(p): p for p in model.parameters()}.values()  # tied weights once
    total = _count(unique)
    trainable = _count(p for p in unique if p.requires_grad)
    size_mb = sum(p.numel() * p.element_size() for p in unique) / 2**20

    lines = [f"Model: {type(model).__name__}", "=" * width]
    lines.append(f"{header[0]:<{w0}}   {header[1]:<{w1}}   {header[2]:>{w2}}")
    lines.append("=" * width)
    for (label, shape, count), subs in zip(table, sub_lines, strict=True):
        lines.append(f"{label:<{w0}}   {shape:<{w1}}   {count:>{w2}}")
        lines.extend(subs)
    lines.append("=" * width)
    lines.append(f"Total params: {total:,} ({size_mb:.2f} MB)")
    lines.append(f"Trainable params: {trainable:,}")
    lines.append(f"Non-trainable params: {total - trainable:,}")
    shared = _count(p for _, p in model.named_parameters(remove_duplicate=False)) - total
    if shared:
        lines.append(f"(shared parameters counted once: {shared:,} in tied weights)")
    lines.append("=" * width)
    text = Summary("\n".join(lines))
    if print_fn is not None:
        print_fn(text)
    return text
