"""The recipe's data, encoded once and shared by every step and every measurement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from steelyard.data.dataset import TaskDataset
from steelyard.errors import DataError
from steelyard.evaluation.adapters import Adapter, Feature
from steelyard.evaluation.predictor import predictor_for
from steelyard.models.handle import ModelHandle
from steelyard.training.finetune import relabel, with_validation


@dataclass
class RecipeData:
    """Encoded splits whose labels are already the model's class ids.

    ``eval_split`` is where the before / after metrics are taken: ``test`` for a final report,
    ``validation`` inside a search, so that choosing among trials never looks at the test set.
    """

    name: str
    task: str
    #: The module that answers the task: the model itself, or for a head-only checkpoint the
    #: encoder with its pooled linear head (what ``evaluate`` scores).
    module: torch.nn.Module
    adapter: Adapter
    label_names: list[str]
    metric: str
    train: list[Feature]
    validation: list[Feature]
    test: list[Feature]
    eval_split: str
    notes: list[str]
    #: The original model's (metrics, predictions) on the evaluation split, filled by the runner once.
    baseline: Any = None

    @property
    def evaluation(self) -> list[Feature]:
        return self.test if self.eval_split == "test" else self.validation

    def batches(self, batch_size: int, limit: int, *, with_labels: bool) -> list[dict[str, Any]]:
        """Up to ``limit`` training batches of model inputs (for calibration or gradient scores)."""
        out: list[dict[str, Any]] = []
        for start in range(0, min(len(self.train), batch_size * limit), batch_size):
            batch = self.adapter.collate(self.train[start : start + batch_size])
            out.append({k: v for k, v in batch.items() if (with_labels or k != "labels") and not k.startswith("_")})
        return out


#: The last prepared data and what it was prepared from: a search runs many recipes on the same model
#: and dataset objects, and need not re-encode every split (nor re-score the original) per trial.
_LAST: tuple[tuple[Any, ...], RecipeData] | None = None


def prepare_data(
    handle: ModelHandle,
    dataset: TaskDataset,
    *,
    eval_split: str,
    max_length: int,
    tokenizer: str | None,
    seed: int,
) -> RecipeData:
    """:func:`encode_data`, reused while the same model and dataset objects come back with the same settings.

    The key holds the objects themselves (compared by identity), so they cannot be freed and their
    ids reused while the entry lives.
    """
    global _LAST
    key = (handle.module, dataset, eval_split, max_length, tokenizer, seed)
    if _LAST is not None and _LAST[0][0] is key[0] and _LAST[0][1] is key[1] and _LAST[0][2:] == key[2:]:
        return _LAST[1]
    data = encode_data(handle, dataset, eval_split=eval_split, max_length=max_length, tokenizer=tokenizer, seed=seed)
    _LAST = (key, data)
    return data


def encode_data(
    handle: ModelHandle,
    dataset: TaskDataset,
    *,
    eval_split: str,
    max_length: int,
    tokenizer: str | None,
    seed: int,
) -> RecipeData:
    """Map the data's labels onto the model's head and encode every split once."""
    if dataset.task not in ("text-classification", "image-classification", "causal-lm"):
        raise DataError(
            f"compress measures accuracy on classification data or perplexity on plain text; {dataset.name!r} is "
            f"{dataset.task} (run the recipe without --data to compress without a metric)"
        )
    if eval_split not in ("test", "validation"):
        raise DataError(f"eval split must be test or validation, got {eval_split!r}")
    ds, notes = with_validation(dataset, seed)
    predictor = predictor_for(handle, ds, max_length=max_length, tokenizer=tokenizer)
    if dataset.task == "causal-lm":
        return _encode_text(ds, predictor, eval_split, notes)
    assert predictor.labels is not None
    ds = relabel(ds, predictor.labels.to_model, predictor.labels.names)
    adapter = predictor.adapter
    split = ds.test if eval_split == "test" else ds.validation
    if not split:
        raise DataError(f"{dataset.name!r} has no {eval_split} split to measure the metric on")
    # Not under inference_mode: image features are tensors that training steps feed to autograd.
    encoded = {name: adapter.encode(getattr(ds, name)) for name in ("train", "validation", "test")}
    return RecipeData(
        name=ds.name, task=ds.task, module=predictor.module, adapter=adapter,
        label_names=list(predictor.labels.names), metric="accuracy",
        train=encoded["train"], validation=encoded["validation"], test=encoded["test"], eval_split=eval_split,
        notes=notes + list(predictor.notes),
    )


def _encode_text(ds: TaskDataset, predictor: Any, eval_split: str, notes: list[str]) -> RecipeData:
    """Plain text for a causal LM: token blocks per split, perplexity as the metric, no labels to map.

    The training steps then minimise the next-token loss (the adapter's kind is "lm").
    """
    adapter = predictor.adapter
    encoded = {name: adapter.encode(getattr(ds, name)) for name in ("train", "validation", "test")}
    if not encoded[eval_split]:
        raise DataError(f"{ds.name!r} has no {eval_split} text to measure perplexity on")
    return RecipeData(
        name=ds.name, task=ds.task, module=predictor.module, adapter=adapter, label_names=[], metric="perplexity",
        train=encoded["train"], validation=encoded["validation"], test=encoded["test"], eval_split=eval_split,
        notes=notes + list(predictor.notes),
    )
