"""Head-only training on frozen embeddings: embed every split once, then train a linear head.

The frozen encoder's forward is the expensive part and it never changes, so it runs once per
example (sharded over ranks under DDP) and the head trains on cached vectors in seconds. The
cache is reusable: comparing optimizers or sweeping training-set sizes pays for it once, and
each run is still charged the embedding cost (FLOPs and seconds) so the numbers stay honest.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from steelyard.data.dataset import Example
from steelyard.evaluation.adapters import Adapter, Batch, Feature
from steelyard.evaluation.heads import mean_pool
from steelyard.profiling.counting import flops_per_row
from steelyard.training.dist import DistContext
from steelyard.training.frozen import frozen_outputs
from steelyard.units import Flops


@dataclass
class FeatureCache:
    """Mean-pooled embeddings per split with labels, and what computing them cost."""

    train: torch.Tensor
    train_labels: list[int]
    validation: torch.Tensor
    validation_labels: list[int]
    test: torch.Tensor
    test_labels: list[int]
    #: Wall seconds of the embedding pass over all splits.
    seconds: float
    #: Counted forward FLOPs of the encoder per example (on the first batch).
    flops_per_example: Flops

    @property
    def train_flops(self) -> Flops:
        """Embedding the training set: a cost of training, charged to every run that uses it."""
        return Flops(self.flops_per_example * len(self.train_labels))

    def features(self, split: str) -> list[Feature]:
        x, y = getattr(self, split), getattr(self, f"{split}_labels")
        return [{"features": x[i], "label": y[i]} for i in range(len(y))]

    def with_train(self, indices: Sequence[int]) -> FeatureCache:
        """The same cache restricted to some training examples (learning curves)."""
        idx = list(indices)
        return replace(self, train=self.train[idx], train_labels=[self.train_labels[i] for i in idx])


@dataclass
class FeatureAdapter:
    """Batches of cached feature vectors for a :class:`~steelyard.evaluation.heads.LinearHead`."""

    kind: str = "classification"
    positional: bool = False

    def encode(self, examples: Sequence[Example]) -> list[Feature]:  # pragma: no cover - never re-encoded
        raise NotImplementedError("cached features are not re-encoded from examples")

    def collate(self, features: Sequence[Feature]) -> Batch:
        batch: Batch = {"features": torch.stack([f["features"] for f in features])}
        batch["labels"] = torch.as_tensor([f["label"] for f in features], dtype=torch.long)
        return batch


def embed(
    encoder: torch.nn.Module,
    adapter: Adapter,
    examples: Sequence[Example],
    batch_size: int,
    dist: DistContext,
    device: torch.device | str = "cpu",
    progress: bool = False,
    description: str = "embedding",
) -> torch.Tensor:
    """Mean-pooled embeddings of ``examples`` in order; each rank embeds its shard."""
    def pooled(output: Any, batch: Batch) -> torch.Tensor:
        return mean_pool(output.last_hidden_state, batch.get("attention_mask"))

    gathered = frozen_outputs(encoder, adapter, examples, batch_size, dist, pooled, device=device,
                              progress=progress, description=description, encode=True)
    if not gathered:
        return torch.zeros(0, 0)
    return torch.stack(gathered)


def build_cache(
    encoder: torch.nn.Module,
    adapter: Adapter,
    splits: dict[str, list[Example]],
    batch_size: int,
    dist: DistContext,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> FeatureCache:
    """Embed train, validation and test once (the FLOPs are counted on the first train batch)."""
    start = time.perf_counter()
    probe = adapter.collate(adapter.encode(splits["train"][: min(batch_size, 8)]))
    per_example = flops_per_row(encoder, {k: v.to(device) for k, v in probe.items() if k != "labels"})
    tensors = {
        name: embed(encoder, adapter, examples, batch_size, dist, device, progress, f"embedding {name}")
        for name, examples in splits.items()
    }
    labels = {name: [int(ex.label) for ex in examples] for name, examples in splits.items()}  # type: ignore[arg-type]
    return FeatureCache(
        train=tensors["train"],
        train_labels=labels["train"],
        validation=tensors["validation"],
        validation_labels=labels["validation"],
        test=tensors["test"],
        test_labels=labels["test"],
        seconds=time.perf_counter() - start,
        flops_per_example=per_example,
    )
