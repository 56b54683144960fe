"""The user's data as a runtime needs it: a real timing batch, calibration batches, labelled validation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from steelyard.backends.base import Calibration
from steelyard.compression.base import CalibrationError

if TYPE_CHECKING:
    from steelyard.data import TaskDataset
    from steelyard.models.handle import ModelHandle

#: Fewer calibration examples than this give activation ranges that say little about the data.
MIN_CALIBRATION_EXAMPLES = 16


@dataclass
class RuntimeData:
    module: nn.Module  # what answers the task (a head-only checkpoint: encoder + pooled head)
    inputs: dict[str, torch.Tensor]  # a timing batch of real examples
    calibration: Calibration
    name: str


def runtime_data(handle: ModelHandle, dataset: TaskDataset, *, batch_size: int, max_length: int,
                 calibration_batches: int = 8, max_drop: float | None = None, tokenizer: str | None = None,
                 seed: int = 0) -> RuntimeData:
    """Encode ``dataset`` for ``handle``: timing rows from validation, calibration from train.

    ``max_drop`` (absolute accuracy, 0.01 = one point) adds labelled validation batches for an
    accuracy-aware quantizer. Too little training data to calibrate on is a one-line error.
    """
    from steelyard.compression.recipe.data import encode_data
    from steelyard.compression.recipe.measure import timing_inputs

    data = encode_data(handle, dataset, eval_split="validation", max_length=max_length, tokenizer=tokenizer,
                       seed=seed)
    if len(data.train) < MIN_CALIBRATION_EXAMPLES:
        raise CalibrationError(f"{data.name}: {len(data.train)} training examples; calibrating a runtime needs at "
                               f"least {MIN_CALIBRATION_EXAMPLES}")
    batches = data.batches(batch_size, calibration_batches, with_labels=False)
    validation = None
    if max_drop is not None:
        validation = []
        for start in range(0, len(data.validation), batch_size):
            batch = data.adapter.collate(data.validation[start : start + batch_size])
            labels = batch.pop("labels")
            validation.append(({k: v for k, v in batch.items() if not k.startswith("_")}, labels))
    inputs = timing_inputs(data.adapter, data.validation or data.train, batch_size)
    return RuntimeData(data.module, inputs, Calibration(batches, validation, max_drop), data.name)


def synthetic_inputs(handle: ModelHandle, batch_size: int) -> dict[str, Any]:
    """The handle's example inputs at ``batch_size`` rows (no data given: nothing calibrated)."""
    inputs = handle.inputs_for_batch(batch_size)
    if not isinstance(inputs, dict):
        raise CalibrationError("runtimes need a model with named inputs (a transformers model)")
    return inputs
