"""Task adapters: turn a TaskDataset's examples into the tensors a model takes.

Every model sees data through one of three adapters, so evaluation and training share the same
preprocessing and a checkpoint is evaluated exactly as it was trained:

- :class:`TextAdapter` tokenizes with the model's own tokenizer (truncation to ``max_length``)
  and pads each batch only to its longest member (dynamic padding), which on short texts is
  several times cheaper than padding everything to the maximum.
- :class:`ImageAdapter` scales pixels to [0, 1] (uint8 files are divided by 255; the built-in
  digits already are), converts channels to what the model expects, resizes to its image size
  and normalises with the model's mean / std (its ``preprocessor_config.json``, else 0.5 / 0.5).
- :class:`CausalLMAdapter` cuts each document into blocks of its own tokens, so that perplexity's
  interval can resample documents.

An adapter has two steps: ``encode`` (examples → per-example features, done once) and
``collate`` (features → a batch dict of tensors, with ``labels`` when the data is labelled).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import torch

from steelyard.data.dataset import Example
from steelyard.errors import ConfigError, DataError

Feature = dict[str, Any]
Batch = dict[str, torch.Tensor]


class Adapter(Protocol):
    """What the evaluation and training loops need from a task adapter."""

    #: "classification" (labels → logits) or "lm" (token blocks → next-token NLL).
    kind: str
    #: Whether the model takes its one input positionally (factories) rather than by name.
    positional: bool

    def encode(self, examples: Sequence[Example]) -> list[Feature]: ...

    def collate(self, features: Sequence[Feature]) -> Batch: ...


def call_model(module: torch.nn.Module, batch: Batch, positional: bool = False) -> Any:
    """Run ``module`` on a batch's model inputs: everything but ``labels`` and the keys that start
    with ``_``, which carry training targets (a teacher's cached logits) alongside the inputs."""
    inputs = {k: v for k, v in batch.items() if k != "labels" and not k.startswith("_")}
    if positional:
        return module(*inputs.values())
    return module(**inputs)


def logits_of(output: Any) -> torch.Tensor:
    """The logits in a model output: a tensor, an object with ``.logits``, or the first item."""
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    if logits is not None:
        return logits
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise DataError(
        f"the model returned {type(output).__name__} with no logits; a classification model must return "
        "logits (a tensor or an object with .logits)"
    )


def pad_sequences(seqs: Sequence[Sequence[int]], value: int, left: bool = False) -> torch.Tensor:
    """A (batch, longest) long tensor of ``seqs`` padded with ``value``."""
    longest = max((len(s) for s in seqs), default=0)
    out = torch.full((len(seqs), longest), value, dtype=torch.long)
    for i, s in enumerate(seqs):
        if not s:
            continue
        if left:
            out[i, longest - len(s) :] = torch.as_tensor(s, dtype=torch.long)
        else:
            out[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out


def with_labels(batch: Batch, features: Sequence[Feature]) -> Batch:
    labels = [f.get("label") for f in features]
    if labels and all(lab is not None for lab in labels):
        batch["labels"] = torch.as_tensor(labels, dtype=torch.long)
    return batch


def iter_batches(features: Sequence[Feature], batch_size: int) -> list[list[Feature]]:
    """Consecutive chunks of ``batch_size`` features (the last one may be shorter)."""
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    return [list(features[i : i + batch_size]) for i in range(0, len(features), batch_size)]


def n_batches(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size) if n else 0


# The adapters themselves, one module per modality (imported last: they import the helpers above).
from steelyard.evaluation.adapters_image import (  # noqa: E402
    ImageAdapter,
    ImageSpec,
    image_spec_for,
    image_to_tensor,
    read_normalisation,
)
from steelyard.evaluation.adapters_lm import CausalLMAdapter, lm_token_nll  # noqa: E402
from steelyard.evaluation.adapters_text import (  # noqa: E402
    TOKENIZER_FILES,
    TextAdapter,
    effective_max_length,
    load_tokenizer,
    model_max_positions,
    tokenizer_source,
)

__all__ = [
    "TOKENIZER_FILES",
    "Adapter",
    "Batch",
    "CausalLMAdapter",
    "Feature",
    "ImageAdapter",
    "ImageSpec",
    "TextAdapter",
    "call_model",
    "effective_max_length",
    "image_spec_for",
    "image_to_tensor",
    "iter_batches",
    "lm_token_nll",
    "load_tokenizer",
    "logits_of",
    "model_max_positions",
    "n_batches",
    "pad_sequences",
    "read_normalisation",
    "tokenizer_source",
    "with_labels",
]
