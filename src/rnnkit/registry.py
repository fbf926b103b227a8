"""The model registry: ``model_type`` → class, and configs rebuilt from JSON.

A model class sets ``model_type`` (a str) and ``config_class`` (a dataclass) and is decorated
with :func:`register_model`; a checkpoint's ``config.json`` names the type and holds the config,
and :func:`model_class` plus :func:`dataclass_from_dict` rebuild the model from it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import pkgutil
import typing
from collections.abc import Mapping
from typing import Any

from torch import nn

from rnnkit.errors import RnnkitError

MODEL_REGISTRY: dict[str, type[nn.Module]] = {}


def register_model(cls: type[nn.Module]) -> type[nn.Module]:
    """Class decorator: make ``cls`` loadable from checkpoints under ``cls.model_type``.

    ``cls`` must define ``model_type`` (a non-empty str) and ``config_class`` (a dataclass type),
    and ``cls(config_class(...))`` must build the model.
    """
    model_type = getattr(cls, "model_type", None)
    if not isinstance(model_type, str) or not model_type:
        raise TypeError(f"{cls.__name__} needs a class attribute model_type: str to be registered")
    config_class = getattr(cls, "config_class", None)
    if not (isinstance(config_class, type) and dataclasses.is_dataclass(config_class)):
        raise TypeError(f"{cls.__name__}.config_class must be a dataclass type")
    old = MODEL_REGISTRY.get(model_type)
    # Re-registering the same class (a module reloaded) is fine; two classes under one name is not.
    if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
        raise TypeError(f"model_type {model_type!r} is already registered by {old.__qualname__}")
    MODEL_REGISTRY[model_type] = cls
    return cls


def model_class(model_type: str) -> type[nn.Module]:
    """The registered class for ``model_type``, importing ``rnnkit.models`` to fill the registry."""
    if model_type not in MODEL_REGISTRY:
        _import_builtin_models()
    if model_type not in MODEL_REGISTRY:
        known = ", ".join(sorted(MODEL_REGISTRY)) or "none"
        raise RnnkitError(
            f"unknown model_type {model_type!r} (registered: {known}); import the module that "
            "defines it before loading"
        )
    return MODEL_REGISTRY[model_type]


def _import_builtin_models() -> None:
    """Import every module of ``rnnkit.models``: the built-in models register on import."""
    with contextlib.suppress(ImportError):
        package = importlib.import_module("rnnkit.models")
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            importlib.import_module(info.name)


_UnionType = type(int | None)


def dataclass_from_dict(cls: type, data: Mapping[str, Any], where: str = "config") -> Any:
    """Build dataclass ``cls`` from a JSON dict: nested dataclasses and tuples are rebuilt."""
    if not isinstance(data, Mapping):
        raise RnnkitError(f"{where} must be a JSON object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise RnnkitError(f"{where} has unknown fields {unknown} for {cls.__name__}")
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError):  # unresolvable annotations: take the JSON values as they are
        hints = {}
    kwargs = {}
    for name, value in data.items():
        hint = hints.get(name)
        kwargs[name] = _coerce(hint, value, f"{where}.{name}")
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise RnnkitError(f"{where} does not fit {cls.__name__}: {e}") from None


def _coerce(hint: Any, value: Any, where: str) -> Any:
    """JSON loses two things a config may use: nested dataclasses and tuples."""
    candidates = (
        typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, _UnionType) else (hint,)
    )
    for h in candidates:
        if isinstance(h, type) and dataclasses.is_dataclass(h) and isinstance(value, Mapping):
            return dataclass_from_dict(h, value, where)
        if (h is tuple or typing.get_origin(h) is tuple) and isinstance(value, list):
            return tuple(value)
    return value


# ----------------------------------------------------------------------------- atomic directories
