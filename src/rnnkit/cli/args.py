"""Flags from config dataclasses: every CLI flag is a field the Python API also takes.

A field ``hidden_size: int = 256`` becomes ``--hidden-size`` (type int, default 256); a bool
field becomes ``--name/--no-name``; a field whose metadata has ``choices`` gets them; the help
text is the field's ``metadata["help"]``; ``metadata={"cli": False}`` keeps a field off the
command line. Other field types (lists, tuples) have no flag form: exclude them. Nothing here
knows about any task.
"""

import argparse
import dataclasses
import types
import typing
from typing import Any


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _scalar_type(tp: Any) -> Any:
    """int | None → int; plain types pass through."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else str
    return tp


def add_dataclass_args(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    exclude: tuple[str, ...] = (),
    title: str | None = None,
    defaults: Any = None,
) -> None:
    """Add one flag per field of dataclass ``cls``; the help shows the dataclass defaults, or
    those of ``defaults`` (an instance: a task's own training defaults)."""
    group = parser.add_argument_group(title or cls.__name__)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in exclude or not f.init or f.metadata.get("cli") is False:
            continue
        if defaults is not None:
            default = getattr(defaults, f.name)
        elif f.default is not dataclasses.MISSING:
            default = f.default
        else:
            default = f.default_factory()  # type: ignore[misc]
        tp = _scalar_type(hints[f.name])
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS}
        # argparse formats help with %: a literal % in the text must be doubled.
        help_text = f.metadata.get("help", "").replace("%", "%%")
        shown = repr(default) if default == "" else default
        kwargs["help"] = f"{help_text} (default: {shown})" if help_text else f"default: {shown}"
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif tp in (int, float, str):
            kwargs["type"] = tp
            if "choices" in f.metadata:  # argparse shows them: {lstm,gru,rnn}
                kwargs["choices"] = f.metadata["choices"]
            else:
                kwargs["metavar"] = f.metadata.get("metavar", f.name.upper())
        else:
            raise TypeError(
                f"{cls.__name__}.{f.name} ({tp}) has no flag form: exclude it or give it "
                "metadata={'cli': False}"
            )
        group.add_argument(_flag(f.name), **kwargs)


def dataclass_from_args(cls: type, ns: argparse.Namespace, base: Any = None) -> Any:
    """Build ``cls`` from the flags given on the command line, on top of ``base`` (or defaults)."""
    given = {f.name: getattr(ns, f.name) for f in dataclasses.fields(cls) if hasattr(ns, f.name)}
    if base is not None:
        return dataclasses.replace(base, **given)
    return cls(**given)


def given_fields(cls: type, ns: argparse.Namespace) -> dict[str, Any]:
    """The fields of ``cls`` set explicitly on the command line."""
    return {f.name: getattr(ns, f.name) for f in dataclasses.fields(cls) if hasattr(ns, f.name)}


def add_threads_flag(parser: argparse.ArgumentParser) -> None:
    """``--threads N``: torch's CPU threads, the same flag as training's."""
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        metavar="N",
        help="CPU threads for torch, 0 = torch's default (one per core)",
    )


def apply_threads(args: argparse.Namespace) -> None:
    """Set torch's threads from ``--threads`` (checked: a negative count is an error)."""
    threads = getattr(args, "threads", 0)
    if threads < 0:
        from rnnkit.errors import RnnkitError

        raise RnnkitError(f"--threads must be >= 0 (0 = torch's default), got {threads}")
    if threads:
        import torch

        torch.set_num_threads(threads)
