"""Config surgery that goes with model surgery: a config that still describes the cut model.

``save_pretrained`` / ``from_pretrained`` round-trip only when the config states the model's real
depth, including per-layer lists (``layer_types`` of models that mix sliding-window and full
attention), so depth pruning and distillation students both fix the config here.
"""

from __future__ import annotations

from typing import Any

#: Config lists with one entry per layer, sliced with the layers.
PER_LAYER_LISTS: tuple[str, ...] = ("layer_types",)


def keep_config_layers(config: Any, count_key: str, kept: list[int], total: int) -> None:
    """Set ``config.<count_key>`` to ``len(kept)`` and keep the ``kept`` entries of per-layer lists."""
    setattr(config, count_key, len(kept))
    for list_key in PER_LAYER_LISTS:
        value = getattr(config, list_key, None)
        if isinstance(value, list) and len(value) == total:
            setattr(config, list_key, [value[i] for i in kept])
