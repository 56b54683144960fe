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

from torch import nn

from steelyard.compression.base import NotApplicableError, TransformResult
from steelyard.compression.pruning.config import LayerPruneConfig
from steelyard.families import Blocks, find_blocks, keep_config_layers, spread
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
    config = getattr(handle.module, "config", None) or handle.config
    key = found.count_key(config) if found is not None and config is not None else None
    if found is None or len(found) < 2 or key is None:
        raise NotApplicableError(
            f"{method} applies to transformers with a stack of layers and a layer count in their "
            f"config; {type(handle.module).__name__} has none"
        )
    return found


def cut_layers(handle: ModelHandle, keep: list[int], why: str) -> TransformResult:
    """Keep only the blocks at positions ``keep`` of the first stack (in place) and fix the config's count."""
    found = stack_of(handle, "prune:layers")
    config = getattr(handle.module, "config", None) or handle.config
    key = found.count_key(config)
    layers = found.layers
    total = len(layers)
    new = nn.ModuleList([layers[i] for i in keep])
    for position, layer in enumerate(new):  # caches index layers by position
        for sub in layer.modules():
            if isinstance(getattr(sub, "layer_idx", None), int):
                sub.layer_idx = position
    parent = handle.module.get_submodule(found.parent_path) if found.parent_path else handle.module
    setattr(parent, found.attr, new)
    keep_config_layers(config, key, keep, total)
    return TransformResult(
        module=handle.module,
        config=config,
        notes=[f"layers: {total} → {len(keep)} (kept {keep}, {why})"],
        details={"layers_before": total, "layers_after": len(keep), "kept": keep},
    )
