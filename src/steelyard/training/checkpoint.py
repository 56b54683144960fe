"""Helpers for the trained model folder: patch its ``config.json``, copy preprocessing files.

The folder itself is written atomically by :func:`steelyard.outputs.write_atomically`.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path


def patch_config(folder: Path, **updates: object) -> None:
    """Add keys to a saved ``config.json`` (without touching the in-memory model's config)."""
    file = folder / "config.json"
    data = json.loads(file.read_text())
    data.update(updates)
    file.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def copy_if_present(source: Path | None, names: tuple[str, ...], dest: Path) -> None:
    """Copy preprocessing files (image processor settings) that the model folder had."""
    if source is None:
        return
    for name in names:
        file = Path(source) / name
        if file.is_file() and not (dest / name).exists():
            with contextlib.suppress(OSError):
                shutil.copy2(file, dest / name)
