"""Short names for runs and models: what a table column or a report title shows.

A stored run keeps its model source exactly as given (a hub id, a catalog name, a factory, or a
local path such as ``/tmp/tmpab12/minilm-int8``), because the reproduce command needs it. A
person reading ``runs list`` or a report title needs a name: the folder's basename, the hub id of
a folder inside the Hugging Face cache, the id or catalog name itself. Composite models
(``a vs b`` of a comparison, ``teacher → student`` of a distillation) are shortened part by part.
"""

from __future__ import annotations

import re
from typing import Any

#: How composite model strings are joined by the store's record functions.
SEPARATORS = (" vs ", " → ")
_HUB_CACHE = re.compile(r"models--(?P<org>[^/\\]+?)--(?P<name>[^/\\]+)[/\\]snapshots[/\\]")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")


def model_label(model: str) -> str:
    """A readable name for a stored model string (see the module docstring)."""
    for sep in SEPARATORS:
        if sep in model:
            return sep.join(model_label(part) for part in model.split(sep))
    return _one(model.strip())


def _one(source: str) -> str:
    cached = _HUB_CACHE.search(source)
    if cached:
        return f"{cached['org']}/{cached['name']}"
    if not _looks_like_path(source):
        return source
    parts = [p for p in re.split(r"[/\\]+", source) if p not in ("", ".")]
    if not parts:
        return source
    last = parts[-1]
    # A bare file name says little on its own (model.onnx, config.json): keep its folder.
    if "." in last and len(parts) > 1 and last.rsplit(".", 1)[0] in ("model", "config", "pytorch_model"):
        return f"{parts[-2]}/{last}"
    return last


def _looks_like_path(source: str) -> bool:
    """Absolute, home- or dot-relative, a Windows drive, several slashes, or a file with a model suffix."""
    if source.startswith(("/", "~", "./", "../", "\\")) or re.match(r"^[A-Za-z]:[/\\]", source):
        return True
    if ":" in source and "/" not in source:
        return False  # a factory pkg.mod:fn
    if source.count("/") > 1 or "\\" in source:
        return True
    if source.endswith((".json", ".onnx", ".xml", ".safetensors", ".bin")):
        return True
    if _HUB_ID.match(source):
        from pathlib import Path

        return "/" in source and Path(source).exists()  # org/name unless it is a folder here
    return False


def run_name(record: Any) -> str | None:
    """The name the user gave the run (``--name``), if any: a record attribute or a ``name`` in its config."""
    if record is None:
        return None
    name = getattr(record, "name", None)
    if not name and isinstance(getattr(record, "config", None), dict):
        name = record.config.get("name")
    return str(name) if name else None


def run_title(record: Any, fallback_model: str | None = None, *, kind: bool = False) -> str:
    """A run's short title: its ``--name``, else its model label; with ``kind``, ``profile · minilm-int8``."""
    name = run_name(record)
    if name:
        return name
    model = fallback_model if fallback_model is not None else getattr(record, "model", "") or ""
    label = model_label(str(model))
    return f"{record.kind} · {label}" if kind and getattr(record, "kind", None) else label
