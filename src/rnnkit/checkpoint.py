"""A checkpoint is a directory of JSON and safetensors files, so loading one never runs code.

::

    <dir>/config.json                 format, rnnkit version, model_type, model config, train config
    <dir>/<name>.json                 extra files a task adds, e.g. vocab.json
    <dir>/model.safetensors           the model's state_dict; a tied weight is stored once
    <dir>/trainer_state.json          the training loop's scalars (step, epoch, RNG, ...)
    <dir>/trainer_state.safetensors   and its tensors (optimizer moments, RNG states, carried state)

A directory is written atomically: into a temporary sibling, every file fsync'd, then swapped in
by renames (target → target.old, tmp → target, remove target.old). A crash leaves either the old
checkpoint or the new one; a loader that finds no target falls back to ``target.old``.

Models are rebuilt from ``config.json`` through a registry: a model class sets ``model_type`` and
``config_class`` (a dataclass) and is decorated with :func:`register_model`; ``cls(config)``
builds it. The trainer's state is any tree of dicts, lists, tuples, scalars and tensors; it is
split into JSON (the structure, with ``{"$tensor": key}`` leaves) and one safetensors file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from rnnkit.errors import RnnkitError
from rnnkit.jsonfile import read_json
from rnnkit.registry import (  # noqa: F401  (re-exported: models register through here)
    MODEL_REGISTRY,
    dataclass_from_dict,
    model_class,
    register_model,
)

FORMAT = "rnnkit-checkpoint"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
STATE_JSON = "trainer_state.json"
STATE_TENSORS = "trainer_state.safetensors"
_RESERVED = {CONFIG_FILE, MODEL_FILE, STATE_JSON, STATE_TENSORS}
_ALIASES_KEY = "rnnkit.aliases"  # safetensors metadata: tied names → the name stored


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    # Some filesystems cannot fsync a directory; the renames are atomic all the same.
    with contextlib.suppress(OSError):
        _fsync_file(path)


def _write_json(path: Path, obj: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def _write_tensors(path: Path, tensors: dict[str, Tensor], metadata: dict[str, str]) -> None:
    save_file(tensors, str(path), metadata=metadata)
    _fsync_file(path)


def _old(target: Path) -> Path:
    return target.with_name(target.name + ".old")


@contextmanager
def _atomic_directory(target: Path) -> Iterator[Path]:
    """Yield an empty temporary directory; on success it replaces ``target`` by renames."""
    if target.exists() and not target.is_dir():
        raise RnnkitError(f"checkpoint path {target} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not (target / CONFIG_FILE).exists():
        raise RnnkitError(f"refusing to overwrite {target}: it is not an rnnkit checkpoint")
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{target.name}.tmp-"
    for stale in target.parent.glob(prefix + "*"):  # left by a process that was killed mid-write
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    old = _old(target)
    try:
        yield tmp
        _fsync_dir(tmp)
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
        # If target was missing, a leftover .old is the only good copy until this rename lands.
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint directory for ``path``: itself, its ``.old`` fallback, or ``best``/``last``.

    A training output directory (holding ``best/`` and ``last/``) resolves to ``best`` when it
    exists, else ``last``.
    """
    p = Path(path).expanduser()
    for cand in (p, _old(p)):
        if cand.is_dir() and (cand / CONFIG_FILE).exists():
            return cand
    if p.is_dir():
        for sub in ("best", "last"):
            for cand in (p / sub, _old(p / sub)):
                if (cand / CONFIG_FILE).exists():
                    return cand
        raise RnnkitError(
            f"{p} is not a checkpoint: expected {CONFIG_FILE} in it, or a best/ or last/ "
            "checkpoint inside it"
        )
    if p.exists():
        raise RnnkitError(f"{p} is a file: give a run directory (the --out of train)")
    raise RnnkitError(f"checkpoint directory {p} does not exist")


# ----------------------------------------------------------------------------- tensors in trees


def encode_tree(obj: Any, key: str, tensors: dict[str, Tensor]) -> Any:
    """A JSON-able copy of ``obj`` whose tensors move into ``tensors`` (on CPU, as copies).

    Tensors become ``{"$tensor": key}``, tuples ``{"$tuple": [...]}`` (a namedtuple also records
    its class), dicts with non-str keys ``{"$dict": [[k, v], ...]}``.
    """
    if isinstance(obj, Tensor):
        name, i = key, 1
        while name in tensors:
            name, i = f"{key}#{i}", i + 1
        # A copy: tensors in one safetensors file may not share memory, and the live ones move on.
        tensors[name] = obj.detach().to("cpu", copy=True).contiguous()
        return {"$tensor": name}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, tuple):
        out: dict[str, Any] = {
            "$tuple": [encode_tree(v, f"{key}.{i}", tensors) for i, v in enumerate(obj)]
        }
        if hasattr(type(obj), "_fields"):
            out["$namedtuple"] = f"{type(obj).__module__}:{type(obj).__qualname__}"
        return out
    if isinstance(obj, list):
        return [encode_tree(v, f"{key}.{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, Mapping):
        if all(isinstance(k, str) and not k.startswith("$") for k in obj):
            return {k: encode_tree(v, f"{key}.{k}", tensors) for k, v in obj.items()}
        items = []
        for k, v in obj.items():
            if isinstance(k, bool) or not isinstance(k, int | str):
                raise TypeError(f"cannot store dict key {k!r} at {key} in a checkpoint")
            items.append([k, encode_tree(v, f"{key}.{k}", tensors)])
        return {"$dict": items}
    raise TypeError(f"cannot store a {type(obj).__name__} at {key} in a checkpoint")


def decode_tree(obj: Any, tensors: Mapping[str, Tensor]) -> Any:
    """Inverse of :func:`encode_tree`."""
    if isinstance(obj, list):
        return [decode_tree(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "$tensor" in obj:
        return tensors[obj["$tensor"]]
    if "$tuple" in obj:
        items = tuple(decode_tree(v, tensors) for v in obj["$tuple"])
        cls = _namedtuple_class(obj.get("$namedtuple"))
        return cls._make(items) if cls is not None else items
    if "$dict" in obj:
        return {k: decode_tree(v, tensors) for k, v in obj["$dict"]}
    return {k: decode_tree(v, tensors) for k, v in obj.items()}


def _namedtuple_class(name: str | None) -> Any:
    # Only rnnkit's own classes are imported back: a checkpoint must not choose code to import.
    if not name or not name.startswith("rnnkit."):
        return None
    module, _, qualname = name.partition(":")
    try:
        cls = getattr(importlib.import_module(module), qualname)
    except (ImportError, AttributeError):
        return None
    return (
        cls if isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_make") else None
    )


# ----------------------------------------------------------------------------- model weights


def _model_tensors(model: nn.Module) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The state_dict with each tied tensor once, and the map alias → stored name."""
    tensors: dict[str, Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    for name, t in model.state_dict().items():
        ident = (t.device, t.data_ptr(), t.dtype, tuple(t.shape), tuple(t.stride()))
        if t.numel() > 0 and ident in seen:  # the same view of the same memory: a tied weight
            aliases[name] = seen[ident]
            continue
        seen[ident] = name
        tensors[name] = t.detach().cpu()
    # Distinct tensors that still share storage (views into one buffer) are stored as copies.
    owners: dict[int, int] = {}
    for t in tensors.values():
        if t.numel() > 0:
            ptr = t.untyped_storage().data_ptr()
            owners[ptr] = owners.get(ptr, 0) + 1
    for name, t in tensors.items():
        shared = t.numel() > 0 and owners[t.untyped_storage().data_ptr()] > 1
        tensors[name] = t.clone() if shared else t.contiguous()
    return tensors, aliases


def _read_tensors(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    if not path.is_file():
        raise RnnkitError(f"checkpoint {path.parent} is missing {path.name}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        return load_file(str(path)), metadata
    except (SafetensorError, OSError, ValueError) as e:
        raise RnnkitError(f"{path} is not a readable safetensors file: {e}") from None


def load_weights(
    path: str | os.PathLike, model: nn.Module, *, expected_type: str | None = None
) -> nn.Module:
    """Copy a checkpoint's weights into ``model`` in place (e.g. ``init_from`` for fine-tuning).

    Keys and shapes must match exactly; a mismatch raises :class:`RnnkitError` naming them.
    ``expected_type`` (default ``model.model_type`` when it has one) is checked against the
    checkpoint's ``model_type``.
    """
    ckpt = resolve_checkpoint(path)
    config = read_config(ckpt)
    expected_type = expected_type or getattr(model, "model_type", None)
    _check_type(ckpt, config, expected_type)
    _load_state_into(ckpt, model)
    return model


def _check_type(ckpt: Path, config: Mapping[str, Any], expected: str | None) -> None:
    if expected is not None and config["model_type"] != expected:
        raise RnnkitError(
            f"checkpoint {ckpt} holds a {config['model_type']!r} model, expected {expected!r}"
        )


def _load_state_into(ckpt: Path, model: nn.Module) -> None:
    stored, metadata = _read_tensors(ckpt / MODEL_FILE)
    try:
        aliases = json.loads(metadata.get(_ALIASES_KEY, "{}"))
    except json.JSONDecodeError:
        aliases = {}
    state = dict(stored)
    for alias, name in aliases.items():
        if name in stored:
            state[alias] = stored[name]
    own = model.state_dict()
    problems = []
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing:
        problems.append(f"missing keys {_some(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_some(unexpected)}")
    for k, t in own.items():
        if k in state and tuple(state[k].shape) != tuple(t.shape):
            problems.append(
                f"{k} has shape {tuple(state[k].shape)} in the file, {tuple(t.shape)} in the model"
            )
    if problems:
        raise RnnkitError(
            f"{ckpt / MODEL_FILE} does not match the {type(model).__name__} it is loaded into: "
            + "; ".join(problems)
        )
    model.load_state_dict(state, strict=True)


def _some(keys: list[str], n: int = 5) -> str:
    shown = ", ".join(keys[:n])
    return f"[{shown}{', ...' if len(keys) > n else ''}] ({len(keys)})"


# ----------------------------------------------------------------------------- save / load


def _config_dict(config: Any, what: str) -> dict[str, Any]:
    if config is None:
        return {}
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    if isinstance(config, Mapping):
        return dict(config)
    raise TypeError(f"{what} must be a dataclass or a dict, got {type(config).__name__}")


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    train_config: Any = None,
    extra_files: Mapping[str, Any] | None = None,
    trainer_state: Mapping[str, Any] | None = None,
    info: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model`` (and optionally the trainer's state) as a checkpoint directory at ``path``.

    Args:
        model: has ``model_type: str`` and ``config`` (a dataclass) so that it can be rebuilt.
        train_config: a dataclass or dict, stored in config.json for the record.
        extra_files: ``{"vocab.json": obj}``: each obj is written as its own JSON file.
        trainer_state: a tree of dicts/lists/tuples/scalars/tensors (see :func:`encode_tree`).
        info: more JSON-able fields for config.json (e.g. step, val_loss).

    Returns the checkpoint directory. Atomic: a failure leaves the previous checkpoint intact.
    """
    target = Path(path).expanduser()
    model_type = getattr(model, "model_type", None)
    if not isinstance(model_type, str) or not model_type:
        raise TypeError(f"{type(model).__name__} needs a model_type: str to be checkpointed")
    extra = dict(extra_files or {})
    for name in extra:
        if name in _RESERVED or not name.endswith(".json") or Path(name).name != name:
            raise RnnkitError(
                f"extra file name {name!r} must be a plain '<name>.json' other than "
                f"{sorted(_RESERVED)}"
            )
    from rnnkit import __version__  # late: rnnkit/__init__ may one day import this module

    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "rnnkit_version": __version__,
        "model_type": model_type,
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "model_config": _config_dict(getattr(model, "config", None), "model.config"),
        "train_config": _config_dict(train_config, "train_config") or None,
        "extra_files": sorted(extra),
        "has_trainer_state": trainer_state is not None,
    }
    for key, value in (info or {}).items():
        if key in config:
            raise TypeError(f"info key {key!r} would overwrite a field of {CONFIG_FILE}")
        config[key] = value
    weights, aliases = _model_tensors(model)
    state_tensors: dict[str, Tensor] = {}
    state_json = None
    if trainer_state is not None:
        state_json = encode_tree(dict(trainer_state), "state", state_tensors)
    try:
        with _atomic_directory(target) as tmp:
            _write_json(tmp / CONFIG_FILE, config)
            for name, obj in extra.items():
                _write_json(tmp / name, obj)
            _write_tensors(tmp / MODEL_FILE, weights, {_ALIASES_KEY: json.dumps(aliases)})
            if state_json is not None:
                _write_json(tmp / STATE_JSON, state_json)
                _write_tensors(tmp / STATE_TENSORS, state_tensors, {})
    except (OSError, SafetensorError) as e:  # a full disk, a read-only directory, ...
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        kept = "the previous checkpoint there is intact" if target.exists() else "none was kept"
        raise RnnkitError(f"could not write checkpoint {target}: {reason}; {kept}") from None
    return target


def _read_json(path: Path) -> Any:
    return read_json(path, missing=f"checkpoint {path.parent} is missing {path.name}")


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint's config.json, checked to be an rnnkit checkpoint."""
    ckpt = resolve_checkpoint(path)
    config = _read_json(ckpt / CONFIG_FILE)
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise RnnkitError(f"{ckpt / CONFIG_FILE} is not an rnnkit checkpoint config")
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise RnnkitError(
            f"{ckpt} has checkpoint format {config['format_version']}, this rnnkit reads up to "
            f"{FORMAT_VERSION}: upgrade rnnkit"
        )
    for key in ("model_type", "model_config"):
        if key not in config:
            raise RnnkitError(f"{ckpt / CONFIG_FILE} has no {key!r}")
    return config


def load_extra_file(path: str | os.PathLike, name: str) -> Any:
    """The object stored as extra file ``name`` (e.g. ``"vocab.json"``)."""
    return _read_json(resolve_checkpoint(path) / name)


def load_model(
    path: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    *,
    expected_type: str | None = None,
) -> nn.Module:
    """Rebuild the model saved at ``path`` from its config and weights, in eval mode.

    Needs no training data and works from any directory; the global RNG is left untouched.
    ``path`` may also be a training output directory (its ``best/``, else ``last/``).
    """
    ckpt = resolve_checkpoint(path)
    config = read_config(ckpt)
    _check_type(ckpt, config, expected_type)
    cls = model_class(config["model_type"])
    model_config = dataclass_from_dict(
        cls.config_class, config["model_config"], where=f"{ckpt / CONFIG_FILE}: model_config"
    )
    with torch.random.fork_rng(devices=[]):  # building initialises weights: keep the caller's RNG
        model = cls(model_config)
    _load_state_into(ckpt, model)
    return model.to(map_location).eval()


def load_trainer_state(path: str | os.PathLike) -> dict[str, Any]:
    """The trainer-state tree saved by :func:`save_checkpoint`, its tensors on the CPU."""
    ckpt = resolve_checkpoint(path)
    if not (ckpt / STATE_JSON).is_file() or not (ckpt / STATE_TENSORS).is_file():
        missing = [n for n in (STATE_JSON, STATE_TENSORS) if not (ckpt / n).is_file()]
        raise RnnkitError(
            f"checkpoint {ckpt} has no trainer state (missing {', '.join(missing)}): it can "
            "initialise weights but not resume training"
        )
    tree = _read_json(ckpt / STATE_JSON)
    tensors, _ = _read_tensors(ckpt / STATE_TENSORS)
    # Own copies: the optimizer updates its state in place, never into the file's mapping.
    tensors = {k: t.clone() for k, t in tensors.items()}
    try:
        return decode_tree(tree, tensors)
    except (KeyError, TypeError, ValueError) as e:
        raise RnnkitError(f"{ckpt / STATE_JSON} does not match {STATE_TENSORS}: {e}") from None
