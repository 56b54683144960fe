"""Write the distilled student as a model folder that ``steelyard evaluate`` and transformers load.

The folder is written atomically (:func:`~steelyard.training.checkpoint.write_folder_atomically`):
weights (``save_pretrained``, or ``model.safetensors`` + ``steelyard_model.json`` for a plain
module), the tokenizer or image settings the student reads with, and ``distill_result.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from steelyard.distill.result import DistillResult
from steelyard.training.checkpoint import copy_if_present, write_folder_atomically

RESULT_FILE = "distill_result.json"


def save_student(module: torch.nn.Module, tokenizer: object | None, preprocessing: Path | None, output: Path,
                 result: DistillResult, factory: str | None = None) -> None:
    """Save atomically into ``output``; ``factory`` names the ``pkg.module:function`` of a plain module."""

    def write(tmp: Path) -> None:
        if hasattr(module, "save_pretrained") and getattr(module, "config", None) is not None:
            module.save_pretrained(tmp)  # type: ignore[operator]
        else:
            from safetensors.torch import save_model

            save_model(module, str(tmp / "model.safetensors"))
            (tmp / "steelyard_model.json").write_text(json.dumps(
                {"factory": factory, "label_names": result.label_names, "weights": "model.safetensors"}, indent=2
            ) + "\n")
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)  # type: ignore[attr-defined]
        copy_if_present(preprocessing, ("preprocessor_config.json",), tmp)
        (tmp / RESULT_FILE).write_text(json.dumps(result.to_dict(), indent=2) + "\n")

    write_folder_atomically(output, write)
