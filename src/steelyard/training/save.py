"""Write a trained model folder: weights, tokenizer, label names and the training result.

Full and frozen-base models are transformers models (``save_pretrained``; ``id2label`` holds the
class names). Head-only models are the encoder folder plus the head file (see
:mod:`steelyard.evaluation.heads`). Plain ``nn.Module`` factories get ``model.safetensors``
(never a pickle) and ``steelyard_model.json`` naming the factory.
"""

from __future__ import annotations

import json
from pathlib import Path

from steelyard.evaluation.heads import HEAD_FILE, HEAD_KEY, save_head
from steelyard.training.checkpoint import copy_if_present, patch_config, write_folder_atomically
from steelyard.training.result import FinetuneResult
from steelyard.training.setup import Prepared

RESULT_FILE = "training_result.json"


def save_model(prep: Prepared, output: Path, result: FinetuneResult) -> None:
    """Save atomically into ``output`` (see :func:`write_folder_atomically`)."""
    names = prep.label_names

    def write(tmp: Path) -> None:
        id2label = {str(i): n for i, n in enumerate(names)}
        label2id = {n: i for i, n in enumerate(names)}
        if prep.mode == "head-only":
            assert prep.encoder is not None
            prep.encoder.save_pretrained(tmp)
            save_head(prep.module, tmp)  # type: ignore[arg-type]
            patch_config(tmp, id2label=id2label, label2id=label2id,
                         **{HEAD_KEY: {"pooling": "mean", "file": HEAD_FILE}})
        elif prep.hf:
            config = prep.module.config  # type: ignore[union-attr]
            if names:
                config.id2label = dict(enumerate(names))
                config.label2id = label2id
            prep.module.save_pretrained(tmp)  # type: ignore[operator]
        else:
            from safetensors.torch import save_model as save_safetensors

            save_safetensors(prep.module, str(tmp / "model.safetensors"))
            (tmp / "steelyard_model.json").write_text(json.dumps(
                {"factory": prep.handle.name, "label_names": names, "weights": "model.safetensors"}, indent=2
            ) + "\n")
        tokenizer = prep.tokenizer
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        copy_if_present(prep.handle.path, ("preprocessor_config.json",), tmp)
        (tmp / RESULT_FILE).write_text(json.dumps(result.to_dict(), indent=2) + "\n")

    write_folder_atomically(output, write)
