"""Saving the trained model as a folder that transformers and steelyard load, atomically.

The folder is written under a temporary name next to the destination, then renamed into place,
so a crash or a full disk never leaves a half-written model, and an existing model folder is
replaced only once the new one is complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from steelyard.errors import ConfigError

#: Files whose presence marks a folder as a model folder that may be replaced.
MODEL_MARKERS = ("config.json", "steelyard_model.json")


def check_output(path: Path) -> None:
    """Fail before training, not after, when ``path`` cannot receive a model folder.

    An existing file, or a non-empty folder that is not a model folder, is never overwritten.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"output {path} exists and is a file, not a folder")
    if path.is_dir() and any(path.iterdir()) and not any((path / m).is_file() for m in MODEL_MARKERS):
        raise ConfigError(
            f"output folder {path} is not empty and holds no model (no config.json); choose a new or empty folder"
        )
    parent = path.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"cannot write to {parent}")


def write_folder_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a fresh temporary folder, then move it to ``path``.

    An existing folder at ``path`` is moved aside first and deleted only after the new one is in
    place; if anything fails it is moved back.
    """
    path = Path(path).resolve()
    check_output(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=path.parent))
    old: Path | None = None
    try:
        write(tmp)
        if path.exists():
            old = path.parent / f".{path.name}.old-{os.getpid()}"
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and old.exists() and not path.exists():
            os.replace(old, path)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


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
