"""Depth pruning: drop whole transformer layers and fix the config's layer count.

``spread`` keeps evenly spaced layers by the one rule in :func:`steelyard.families.spread`
(``floor(i · N / K)``, from the first; with amount 1 - 1/k that is every k-th layer), the rule
distillation students use too; ``drop-last`` keeps the first layers. The stack is the model's
first one (:func:`steelyard.families.find_blocks`: the encoder of an encoder-decoder), and the
saved config's count for that stack (``num_hidden_layers`` / ``n_layers`` / ``encoder_layers``...)
is updated, so ``from_pretrained`` rebuilds the model.
"""

from __future__ import annotations

from typing import Any

from steelyard.compression.base import NotApplicableError, TransformResult
from steelyard.compression.pruning.config import LayerPruneConfig
from steelyard.families import Blocks, drop_layers, find_blocks, model_config, spread
from steelyard.models.handle import ModelHandle


def kept_layers(total: int, amount: float, strategy: str) -> list[int]:
    keep = max(1, total - round(total * amount))
    if strategy == "drop-last":
        return list(range(keep))
    return spread(total, keep)


def apply(handle: ModelHandle, cfg: LayerPruneConfig, data: Any = None) -> TransformResult:
    total = len(stack_of(handle, "prune:layers").layers)
    return cut_layers(handle, kept_layers(total, cfg.amount, cfg.strategy), f"strategy {cfg.strategy}")


def stack_of(handle: ModelHandle, method: str) -> Blocks:
    """The model's first stack of blocks, refused when there is none (or its config has no layer count)."""
    found = find_blocks(handle.module)
    config = model_config(handle.module) or handle.config
    key = found.count_key(config) if found is not None and config is not None else None
    if found is None or len(found) < 2 or key is None:
        raise NotApplicableError(
            f"{method} applies to transformers with a stack of layers and a layer count in their "
            f"config; {type(handle.module).__name__} has none"
        )
    return found


def cut_layers(handle: ModelHandle, keep: list[int], why: str) -> TransformResult:
    """Keep only the blocks at positions ``keep`` of the first stack (in place) and fix the config
    (:func:`steelyard.families.drop_layers`: the count, per-layer lists, MoE layer indices, cache indices)."""
    found = stack_of(handle, "prune:layers")
    config = model_config(handle.module) or handle.config
    total = len(found)
    drop_layers(handle.module, found, keep, config)
    return TransformResult(
        module=handle.module,
        config=config,
        notes=[f"layers: {total} → {len(keep)} (kept {keep}, {why})"],
        details={"layers_before": total, "layers_after": len(keep), "kept": keep},
    )
