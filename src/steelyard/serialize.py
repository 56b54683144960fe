"""Dataclass <-> JSON-friendly dict, typed both ways.

Reports are nested dataclasses whose numbers carry unit types (:mod:`steelyard.units`).
``to_dict`` flattens them to plain JSON values; ``from_dict`` rebuilds the same objects,
units included, from the type hints, so a report survives a JSON round trip unchanged.
``flatten`` turns such JSON into dotted keys (CSV rows, MLflow params, config tables, diffs).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")


def to_dict(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, float):
        return float(obj)
    return obj


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_dict(cls: type[T], data: Any) -> T:
    """Rebuild ``cls`` from :func:`to_dict` output, converting nested values by their hints."""
    return _convert(cls, data)


def _convert(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        for option in options:
            try:
                return _convert(option, value)
            except (TypeError, ValueError, KeyError):
                continue
        return value
    if origin is typing.Literal:
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise TypeError(f"expected a mapping for {tp.__name__}")
        hints = _hints(tp)
        kwargs = {f.name: _convert(hints[f.name], value[f.name])
                  for f in dataclasses.fields(tp) if f.name in value}
        return tp(**kwargs)
    if origin in (list, tuple):
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            return tuple(_convert(a, v) for a, v in zip(args, value, strict=False))
        inner = args[0] if args else Any
        items = [_convert(inner, v) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        _, vt = typing.get_args(tp) or (Any, Any)
        return {k: _convert(vt, v) for k, v in value.items()}
    if tp is Any:
        return value
    if isinstance(tp, type) and issubclass(tp, float):
        return tp(value)
    if tp is int and isinstance(value, (int, float)):
        return int(value)
    return value


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts/lists → dotted keys; list items of dicts keyed by their name when they have one."""
    out: dict[str, Any] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            label = str(i)
            if isinstance(value, dict):
                label = str(value.get("hardware") or value.get("name") or value.get("batch_size") or i)
            out.update(flatten(value, f"{prefix}.{label}" if prefix else label))
    else:
        out[prefix] = data
    return out
