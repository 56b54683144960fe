"""Write the distilled student as a model folder that ``steelyard evaluate`` and transformers load.

The folder is written atomically by the trainer's writer (:mod:`steelyard.training.save`):
weights (``save_pretrained``, or ``model.safetensors`` + ``steelyard_model.json`` for a plain
module), the tokenizer or image settings the student reads with, and ``distill_result.json``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from steelyard.distill.result import DistillResult
from steelyard.outputs import write_atomically
from steelyard.training.save import write_companions, write_weights
from steelyard.training.setup import is_hf

RESULT_FILE = "distill_result.json"


def save_student(module: torch.nn.Module, tokenizer: object | None, preprocessing: Path | None, output: Path,
                 result: DistillResult, factory: str | None = None, *, overwrite: bool = False) -> None:
    """Save atomically into ``output``; ``factory`` names the ``pkg.module:function`` of a plain module."""

    def write(tmp: Path) -> None:
        write_weights(module, tmp, is_hf(module), factory, result.label_names)
        write_companions(tmp, tokenizer, preprocessing, RESULT_FILE, result.to_dict())

    write_atomically(output, write, overwrite=overwrite)
