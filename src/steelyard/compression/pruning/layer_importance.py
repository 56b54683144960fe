"""Layer dropping by measured importance: the angular distance of a block's input and output.

Deep decoders have blocks that barely turn the residual stream (Gromov et al. 2024, "The
Unreasonable Ineffectiveness of the Deeper Layers"): for such a block the angle between the hidden
state entering it and leaving it, ``arccos(cos(h_in, h_out)) / π`` averaged over calibration
tokens, is small, and removing it costs the least. The blocks with the smallest distances are cut
by the same surgery ``prune:layers`` uses (config count fixed, cache indices renumbered).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from steelyard.compression.base import TransformResult
from steelyard.compression.pruning.config import AngularLayerConfig
from steelyard.compression.pruning.layers import cut_layers, stack_of
from steelyard.compression.quantization.calibration import calibration_batches, feed_calibration
from steelyard.models.handle import ModelHandle

METHOD = "prune:layers-angular"


def _hidden(value: Any) -> torch.Tensor:
    return value[0] if isinstance(value, (tuple, list)) else value


def angular_distances(handle: ModelHandle, blocks: list[nn.Module], batches: list[Any]) -> list[float]:
    """Mean angular distance (0: unchanged direction, 1: reversed) between each block's input and output."""
    sums = [0.0] * len(blocks)
    counts = [0] * len(blocks)
    hooks = []
    for i, block in enumerate(blocks):

        def hook(_m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any, i: int = i) -> None:
            x = _hidden(args[0] if args else kwargs.get("hidden_states")).float()
            y = _hidden(out).float()
            cos = torch.nn.functional.cosine_similarity(x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1]), dim=-1)
            sums[i] += float(torch.arccos(cos.clamp(-1, 1)).sum() / torch.pi)
            counts[i] += cos.numel()

        hooks.append(block.register_forward_hook(hook, with_kwargs=True))
    feed_calibration(handle, batches, hooks, METHOD)
    return [s / max(c, 1) for s, c in zip(sums, counts, strict=True)]


def apply(handle: ModelHandle, cfg: AngularLayerConfig, data: Any = None) -> TransformResult:
    stack = stack_of(handle, METHOD)
    batches = calibration_batches(data, cfg.batches, METHOD, missing=(
        f"{METHOD} needs calibration text to measure each block's change: pass data=<batches of model inputs> "
        "(CLI: --data); or use prune:layers (evenly spaced), which needs none"))  # fmt: skip
    blocks = list(stack.layers)
    distances = angular_distances(handle, blocks, batches)
    drop = max(1, round(len(blocks) * cfg.amount))
    drop = min(drop, len(blocks) - 1)
    dropped = sorted(sorted(range(len(blocks)), key=lambda i: distances[i])[:drop])
    keep = [i for i in range(len(blocks)) if i not in dropped]
    result = cut_layers(handle, keep, f"dropped {dropped}: the smallest input-output angles")
    result.notes.append("angular distance per block: " + ", ".join(f"{d:.3f}" for d in distances))
    result.details["angular_distance"] = distances
    result.details["dropped"] = dropped
    return result
