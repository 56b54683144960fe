"""Where a compressed model may be saved, checked before any work (``compress`` and ``optimize``).

A recipe or a search can take an hour; an output that would fail at the end (the original
model's own folder, an existing folder without ``overwrite``, an ``.onnx`` file for a model that
is not saved as ONNX) is refused at the start with a one-line :class:`ConfigError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from steelyard.errors import ConfigError


def check_output_folder(output: str | Path | None, model: str, recipe: Any = None, *,
                        overwrite: bool = False) -> None:
    """Raise ConfigError when saving ``model``'s compressed copy to ``output`` would fail or destroy it."""
    if output is None:
        return
    output = Path(output)
    source, target = Path(model).expanduser(), output.expanduser().resolve()
    if source.exists():
        src = source.resolve()
        if target == src or src in target.parents or target in src.parents:
            raise ConfigError(f"--output {output} would overwrite or contain the original model {model}; choose "
                              "another folder")
    if recipe is not None and output.suffix == ".onnx" and not any(
            getattr(s.config, "backend", None) == "onnxruntime" for s in recipe.steps):
        raise ConfigError(f"--output {output}: only an onnxruntime-backend model saves as an .onnx file; "
                          "give a folder, or --backend onnxruntime")
    if not overwrite and target.exists() and (target.is_file() or any(target.iterdir())):
        raise ConfigError(f"--output {output} already exists; choose another folder or pass --overwrite")
