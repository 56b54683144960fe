"""Counted training FLOPs per sample, from one real batch.

The counter runs one forward + backward at the dispatch level
(:func:`steelyard.profiling.counting.count_forward` with ``training=True``), so attention, matmuls
and convolutions are exact for this architecture and this batch's padded length. The random state
is saved and restored around it, so counting does not change what the run trains.
"""

from __future__ import annotations

import torch

from steelyard.evaluation.adapters import Batch
from steelyard.units import Flops

#: Rows of the first training batch used for counting (FLOPs scale linearly with rows).
COUNT_ROWS = 4


def training_flops_per_sample(module: torch.nn.Module, batch: Batch, positional: bool = False) -> tuple[Flops, str]:
    """Forward + backward FLOPs per sample on the first rows of ``batch``, and how it was counted."""
    from steelyard.profiling.counting import flops_per_row

    inputs = {k: v[:COUNT_ROWS] for k, v in batch.items() if k != "labels"}
    rows = int(next(iter(inputs.values())).shape[0])
    per_row = flops_per_row(module, tuple(inputs.values()) if positional else inputs, training=True)
    shape = ", ".join(f"{k} {tuple(v.shape)}" for k, v in inputs.items())
    basis = f"counted forward+backward on {rows} rows of the first training batch ({shape}), matrix-class FLOPs"
    return per_row, basis
