"""Short, readable names for runs and models in reports: a run's own name, else the model's short name.

A model source is often a path (``/tmp/tmpab12/compressed-int8``); a report titled with it is hard to
read and says nothing the folder name does not. Hub ids (``org/model``) and catalog names stay whole.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any


def short_model(model: str) -> str:
    """``/tmp/x/minilm-int8/`` → ``minilm-int8``; ``sentence-transformers/all-MiniLM-L6-v2`` stays whole.

    A path is a name that starts with ``/``, ``~``, ``.`` or a drive letter, or has more than one ``/``
    (a hub id has exactly one); a comparison's ``a vs b`` is shortened name by name.
    """
    text = str(model).strip()
    if " vs " in text:
        return " vs ".join(short_model(m) for m in text.split(" vs "))
    if " → " in text:
        return " → ".join(short_model(m) for m in text.split(" → "))
    looks_like_path = (text.startswith(("/", "~", ".", "\\")) or text.count("/") > 1 or "\\" in text
                       or (len(text) > 2 and text[1] == ":" and text[2] in "/\\"))
    if not looks_like_path:
        return text
    name = PurePath(text.rstrip("/\\")).name
    return name or text


def run_name(record: Any) -> str | None:
    """The name the user gave the run (``--name``), if any: a record attribute or a ``name`` in its config."""
    if record is None:
        return None
    name = getattr(record, "name", None)
    if not name and isinstance(getattr(record, "config", None), dict):
        name = record.config.get("name")
    return str(name) if name else None


def run_title(record: Any, fallback_model: str | None = None) -> str:
    """A run's short title: its name, else the short name of its model."""
    name = run_name(record)
    if name:
        return name
    model = fallback_model if fallback_model is not None else getattr(record, "model", "") or ""
    return short_model(model)


__all__ = ["run_name", "run_title", "short_model"]
