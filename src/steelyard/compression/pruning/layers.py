"""Depth pruning: drop whole transformer layers and fix the config's layer count.

``spread`` keeps evenly spaced layers (with amount 1 - 1/k that is every k-th layer, starting
with the first); ``drop-last`` keeps the first layers. The saved config's layer count
(``num_hidden_layers`` / ``n_layer``) is updated, so ``from_pretrained`` rebuilds the model.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from steelyard.compression.base import NotApplicableError, TransformResult
from steelyard.compression.pruning.config import LayerPruneConfig
from steelyard.models.handle import ModelHandle

_LAYER_LISTS = ("encoder.layer", "encoder.layers", "layers", "h", "transformer.h", "decoder.layers")
_COUNT_KEYS = ("num_hidden_layers", "n_layer", "num_layers")


def find_layer_list(model: nn.Module) -> tuple[nn.Module, str, nn.ModuleList] | None:
    """(parent, attribute, list) of the model's stack of transformer blocks."""
    roots = [getattr(model, "base_model", model), model]
    for root in roots:
        for path in _LAYER_LISTS:
            parent: Any = root
            *head, last = path.split(".")
            for part in head:
                parent = getattr(parent, part, None)
            layers = getattr(parent, last, None) if parent is not None else None
            if isinstance(layers, nn.ModuleList) and len(layers) > 1:
                return parent, last, layers
    return None


def kept_layers(total: int, amount: float, strategy: str) -> list[int]:
    keep = max(1, total - round(total * amount))
    if strategy == "drop-last":
        return list(range(keep))
    return sorted({round(i * total / keep) for i in range(keep)})


def apply(handle: ModelHandle, cfg: LayerPruneConfig, data: Any = None) -> TransformResult:
    found = find_layer_list(handle.module)
    config = getattr(handle.module, "config", None) or handle.config
    key = next((k for k in _COUNT_KEYS if config is not None and isinstance(getattr(config, k, None), int)), None)
    if found is None or key is None:
        raise NotApplicableError(
            "prune:layers applies to transformers with a stack of layers and a layer count in their "
            f"config; {type(handle.module).__name__} has none"
        )
    parent, attr, layers = found
    total = len(layers)
    keep = kept_layers(total, cfg.amount, cfg.strategy)
    new = nn.ModuleList([layers[i] for i in keep])
    for position, layer in enumerate(new):  # caches index layers by position
        for sub in layer.modules():
            if isinstance(getattr(sub, "layer_idx", None), int):
                sub.layer_idx = position
    setattr(parent, attr, new)
    setattr(config, key, len(keep))
    for list_key in ("layer_types",):
        value = getattr(config, list_key, None)
        if isinstance(value, list) and len(value) == total:
            setattr(config, list_key, [value[i] for i in keep])
    return TransformResult(
        module=handle.module,
        config=config,
        notes=[f"layers: {total} → {len(keep)} (kept {keep}, strategy {cfg.strategy})"],
        details={"layers_before": total, "layers_after": len(keep), "kept": keep},
    )
