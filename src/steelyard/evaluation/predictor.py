"""Decide how a loaded model is run on a dataset: which module, which adapter, which labels.

This is where unusable combinations become one-line errors before any work is done: a
config-only model (no weights), an embedding model with no head, an image model given text,
a head whose size does not match the labels, a text model without a tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from steelyard.data.dataset import TaskDataset
from steelyard.errors import ConfigError, DataError
from steelyard.evaluation.adapters import (
    Adapter,
    CausalLMAdapter,
    ImageAdapter,
    TextAdapter,
    call_model,
    effective_max_length,
    image_spec_for,
    load_tokenizer,
    logits_of,
    tokenizer_source,
)
from steelyard.evaluation.heads import has_pooled_head, load_pooled_classifier
from steelyard.evaluation.labels import LabelMap, match_labels
from steelyard.families.inputs import is_vision
from steelyard.models.handle import ModelHandle


@dataclass
class Predictor:
    """A ready-to-run model: module, adapter and (for classification) the label mapping."""

    module: torch.nn.Module
    adapter: Adapter
    labels: LabelMap | None
    notes: list[str] = field(default_factory=list)


def model_modality(handle: ModelHandle) -> str:
    """``"image"`` or ``"text"``: what the model reads, from its config or its example input."""
    if handle.config is not None and getattr(handle.config, "model_type", None):
        return "image" if is_vision(handle.config) else "text"
    if isinstance(handle.inputs, dict):
        return "image" if "pixel_values" in handle.inputs else "text"
    tensors = handle.input_tensors()
    return "image" if tensors and tensors[0].is_floating_point() else "text"


def make_adapter(
    handle: ModelHandle,
    task: str,
    *,
    max_length: int = 128,
    tokenizer: str | None = None,
) -> Adapter:
    """The adapter that feeds ``task`` data to ``handle``'s model."""
    positional = not isinstance(handle.inputs, dict)
    if task == "image-classification":
        return ImageAdapter(image_spec_for(handle), positional=positional)
    tok = load_tokenizer(tokenizer or tokenizer_source(handle), handle.name)
    length = effective_max_length(max_length, tok, handle.config)
    if task == "causal-lm":
        return CausalLMAdapter(tok, length, positional=positional)
    return TextAdapter(tok, length, positional=positional)


def check_runnable(handle: ModelHandle) -> None:
    if handle.on_meta:
        raise ConfigError(
            f"model {handle.name!r} was loaded from its config only (no weights): there is nothing to evaluate; "
            "load real weights, or fine-tune it first (steelyard finetune trains it from the config)"
        )


def check_modality(handle: ModelHandle, dataset: TaskDataset) -> None:
    want = dataset.modality
    have = model_modality(handle)
    if handle.source_kind != "factory" and want != have:
        raise DataError(f"model {handle.name!r} reads {have} but the data {dataset.name!r} is {want}")


def predictor_for(
    handle: ModelHandle,
    dataset: TaskDataset,
    *,
    max_length: int = 128,
    tokenizer: str | None = None,
) -> Predictor:
    """How to evaluate ``handle`` on ``dataset``; raises a clear error when it cannot be done."""
    check_runnable(handle)
    check_modality(handle, dataset)
    notes: list[str] = []
    module = handle.module
    if dataset.task == "causal-lm":
        if handle.task != "causal-lm" and handle.source_kind != "factory":
            raise DataError(
                f"perplexity needs a causal language model; {handle.name!r} is loaded as {handle.task} "
                "(pass --task causal-lm if it is one)"
            )
        return Predictor(module, make_adapter(handle, "causal-lm", max_length=max_length, tokenizer=tokenizer), None)
    if handle.task == "causal-lm":
        raise DataError(f"{handle.name!r} is a causal language model; classification data needs a classifier")
    if has_pooled_head(handle.config):
        module = load_pooled_classifier(module, handle.path, handle.config)
        notes.append("head-only checkpoint: linear head on mean-pooled encoder embeddings")
    elif handle.task == "feature-extraction" and handle.source_kind != "factory":
        raise DataError(
            f"{handle.name!r} is an embedding (feature-extraction) model with no classification head; train one "
            f"first: steelyard finetune {handle.name} --data <data> --output <dir> [--freeze-encoder]"
        )
    task = "image-classification" if dataset.modality == "image" else "text-classification"
    adapter = make_adapter(handle, task, max_length=max_length, tokenizer=tokenizer)
    num_outputs = head_size(module, handle, adapter, dataset)
    labels = match_labels(handle.name, num_outputs, handle.config, dataset.label_names)
    if labels.note:
        notes.append(labels.note)
    return Predictor(module, adapter, labels, notes)


def head_size(module: torch.nn.Module, handle: ModelHandle, adapter: Adapter, dataset: TaskDataset) -> int:
    """Number of classes the model predicts: from a Linear head's shape, else one forward pass."""
    if isinstance(getattr(module, "head", None), torch.nn.Module):
        return int(module.head.classifier.out_features)  # type: ignore[union-attr]
    config = handle.config
    if handle.source_kind != "factory" and config is not None and getattr(config, "num_labels", None):
        return int(config.num_labels)
    probe = next((s for s in (dataset.test, dataset.validation, dataset.train) if s), None)
    if not probe:
        raise DataError(f"the dataset {dataset.name!r} is empty")
    batch = adapter.collate(adapter.encode(probe[:1]))
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            logits = logits_of(call_model(module, batch, adapter.positional))
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"model {handle.name!r} rejected the data's input {_shapes(batch)}: {first}") from exc
    finally:
        module.train(was_training)
    return int(logits.shape[-1])


def _shapes(batch: dict[str, Any]) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in batch.items() if k != "labels"}
