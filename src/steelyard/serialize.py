"""Dataclass <-> JSON-friendly dict, typed both ways.

Reports are nested dataclasses whose numbers carry unit types (:mod:`steelyard.units`).
``to_dict`` flattens them to plain JSON values; ``from_dict`` rebuilds the same objects,
units included, from the type hints, so a report survives a JSON round trip unchanged.
``flatten`` turns such JSON into dotted keys (CSV rows, MLflow params, config tables, diffs);
a dot or backslash inside a key is escaped (``\\.``, ``\\\\``), so a module named ``encoder.layer`` and a
nested ``{"encoder": {"layer": ...}}`` never share a column, and :func:`split_key` takes a key apart.

Every JSON and CSV file steelyard writes carries :data:`SCHEMA_VERSION` (:func:`versioned`), and
every timestamp it writes is ISO 8601 in UTC with its offset (:func:`iso_utc`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
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


#: The version of every JSON and CSV layout steelyard writes: the ``schema_version`` key of a JSON
#: document, the first ``schema_version,<version>`` row of a ``metric,value`` CSV, the first column
#: of a one-row-per-run CSV. The number goes up when a key is renamed or removed.
SCHEMA_VERSION = "steelyard/1"
SCHEMA_KEY = "schema_version"


def versioned(data: Any, items: str = "items") -> dict[str, Any]:
    """``data`` as a JSON document that names its schema first; a list becomes ``{..., items: data}``."""
    if isinstance(data, dict):
        return {SCHEMA_KEY: SCHEMA_VERSION, **{k: v for k, v in data.items() if k != SCHEMA_KEY}}
    return {SCHEMA_KEY: SCHEMA_VERSION, items: data}


def utc(moment: dt.datetime, *, naive: str = "utc") -> dt.datetime:
    """``moment`` in UTC, zone attached.

    ``naive``: what a datetime without a zone means: ``"utc"`` (SQLite hands back the UTC it was
    given without one) or ``"local"`` (Optuna records the machine's local time).
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc) if naive == "utc" else moment.astimezone()
    return moment.astimezone(dt.timezone.utc)


def iso_utc(moment: dt.datetime | None, *, naive: str = "utc") -> str | None:
    """ISO 8601 in UTC with its offset (``2026-12-01T12:00:00+00:00``), so no reader guesses the zone."""
    return None if moment is None else utc(moment, naive=naive).isoformat(timespec="seconds")


def now_utc() -> str:
    """The current time as :func:`iso_utc` writes it."""
    return iso_utc(dt.datetime.now(dt.timezone.utc)) or ""


def _escape(key: Any) -> str:
    return str(key).replace("\\", "\\\\").replace(".", "\\.")


def split_key(key: str) -> list[str]:
    """The parts of a :func:`flatten` key, escapes undone: ``a\\.b.c`` → ``["a.b", "c"]``."""
    parts, part, chars = [], [], iter(key)
    for c in chars:
        if c == "\\":
            part.append(next(chars, ""))
        elif c == ".":
            parts.append("".join(part))
            part = []
        else:
            part.append(c)
    parts.append("".join(part))
    return parts


def _labels(items: list[Any]) -> list[str]:
    """A list's item labels: each dict item's name (hardware, name, batch size) when all are distinct, else indices."""
    named = [str(v.get("hardware") or v.get("name") or v.get("batch_size") or i) if isinstance(v, dict) else str(i)
             for i, v in enumerate(items)]
    return named if len(set(named)) == len(named) else [str(i) for i in range(len(items))]


def flatten(data: Any, prefix: str | None = None) -> dict[str, Any]:
    """Nested dicts/lists → dotted keys; list items of dicts keyed by their name when they have one.

    Dots and backslashes inside a key are escaped, and items of one list that share a name fall
    back to their index, so two different values never get the same key.
    """
    out: dict[str, Any] = {}
    if isinstance(data, dict):
        pairs = [(_escape(k), v) for k, v in data.items()]
    elif isinstance(data, list):
        pairs = [(_escape(label), v) for label, v in zip(_labels(data), data, strict=True)]
    else:
        return {prefix or "": data}
    for key, value in pairs:
        out.update(flatten(value, key if prefix is None else f"{prefix}.{key}"))
    return out
