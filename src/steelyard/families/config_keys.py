"""The names a Hugging Face config gives one quantity (depth, width, heads, FFN width, positions).

Model types spell them differently (``num_hidden_layers``, DistilBERT's ``n_layers``, GPT-2's
``n_layer``, T5's ``num_layers``); transformers maps many aliases through ``attribute_map``, but not
all, and plain ``PretrainedConfig`` objects have none. Every caller asks :func:`config_int` instead
of writing its own ``getattr(...) or getattr(...)`` chain.
"""

from __future__ import annotations

from typing import Any

#: Config attributes for each quantity, canonical name first.
CONFIG_KEYS: dict[str, tuple[str, ...]] = {
    "layers": ("num_hidden_layers", "n_layers", "n_layer", "num_layers"),
    "hidden": ("hidden_size", "dim", "d_model", "n_embd"),
    "heads": ("num_attention_heads", "n_heads", "n_head"),
    "ffn": ("intermediate_size", "hidden_dim", "ffn_dim", "n_inner"),
    "positions": ("max_position_embeddings", "n_positions", "max_seq_len"),
}


def config_int(config: Any, quantity: str) -> tuple[str, int] | None:
    """(attribute, value) of the first of ``CONFIG_KEYS[quantity]`` that ``config`` holds as an integer."""
    if config is None:
        return None
    for attr in CONFIG_KEYS[quantity]:
        value = getattr(config, attr, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return attr, value
    return None


def config_number(config: Any, quantity: str) -> int | None:
    """The value of :func:`config_int` alone: ``config_number(config, "layers")`` is the depth, or None."""
    found = config_int(config, quantity)
    return found[1] if found else None
