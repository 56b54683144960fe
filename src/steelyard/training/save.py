"""Write a trained model folder: weights, tokenizer, label names and the training result.

One writer for every trained model (a fine-tune here, a distilled student in
:mod:`steelyard.distill.save`): transformers models go through ``save_pretrained`` (``id2label``
holds the class names); plain ``nn.Module`` factories get ``model.safetensors`` (never a
pickle) and ``steelyard_model.json`` naming the factory; then the tokenizer, the image
preprocessing settings and the result JSON. Head-only models are the encoder folder plus the
head file (see :mod:`steelyard.evaluation.heads`). Folders are written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from steelyard.evaluation.heads import HEAD_FILE, HEAD_KEY, save_head
from steelyard.models.quiet import library_bars
from steelyard.outputs import write_atomically
from steelyard.training.checkpoint import copy_if_present, patch_config
from steelyard.training.result import FinetuneResult
from steelyard.training.setup import Prepared

RESULT_FILE = "training_result.json"


def write_weights(module: torch.nn.Module, tmp: Path, hf: bool, factory: str | None, label_names: list[str]) -> None:
    """The weights: ``save_pretrained``, or safetensors + ``steelyard_model.json`` for a factory module."""
    if hf:
        with library_bars():  # no "Writing model shards" bar in an API call
            module.save_pretrained(tmp)  # type: ignore[operator]
        return
    from safetensors.torch import save_model as save_safetensors

    save_safetensors(module, str(tmp / "model.safetensors"))
    (tmp / "steelyard_model.json").write_text(json.dumps(
        {"factory": factory, "label_names": label_names, "weights": "model.safetensors"}, indent=2
    ) + "\n")


def write_companions(tmp: Path, tokenizer: Any | None, preprocessing: Path | None, result_file: str,
                     result: dict[str, Any]) -> None:
    """What the model is read with (tokenizer, image settings) and what the run produced."""
    if tokenizer is not None:
        tokenizer.save_pretrained(tmp)
    copy_if_present(preprocessing, ("preprocessor_config.json",), tmp)
    from steelyard.serialize import versioned

    (tmp / result_file).write_text(json.dumps(versioned(result), indent=2) + "\n")


def save_model(prep: Prepared, output: Path, result: FinetuneResult, *, overwrite: bool = False) -> None:
    """Save a fine-tuned model atomically into ``output`` (see :func:`steelyard.outputs.write_atomically`)."""
    names = prep.label_names

    def write(tmp: Path) -> None:
        label2id = {n: i for i, n in enumerate(names)}
        if prep.mode == "head-only":
            assert prep.encoder is not None
            with library_bars():
                prep.encoder.save_pretrained(tmp)
            save_head(prep.module, tmp)  # type: ignore[arg-type]
            patch_config(tmp, id2label={str(i): n for i, n in enumerate(names)}, label2id=label2id,
                         **{HEAD_KEY: {"pooling": "mean", "file": HEAD_FILE}})
        else:
            if prep.hf and names:
                config = prep.module.config  # type: ignore[union-attr]
                config.id2label = dict(enumerate(names))
                config.label2id = label2id
            write_weights(prep.module, tmp, prep.hf, prep.handle.name, names)
        write_companions(tmp, prep.tokenizer, prep.handle.path, RESULT_FILE, result.to_dict())

    write_atomically(output, write, overwrite=overwrite, inputs=(prep.handle.path,))
