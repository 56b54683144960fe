"""The sequence length a training estimate uses when none is given: the model's own limit, capped.

A fixed default breaks on models with short position tables (GPT-2 has 1,024 positions, the old
default was 2,048), and the model's full limit can be far longer than typical training sequences
(Llama 3.1: 131,072), so the default is the model's limit up to :data:`DEFAULT_SEQ_LEN`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steelyard.families import max_positions

#: Tokens per training sequence when the model allows at least this many.
DEFAULT_SEQ_LEN = 2048

#: Tokenizers that set no limit report a huge sentinel (``int(1e30)``); larger than this is "no limit".
_NO_LIMIT = 10**7


@dataclass(frozen=True)
class SequenceLength:
    """The chosen length, the model's limit (None when it states none) and where that limit came from."""

    tokens: int
    limit: int | None
    source: str | None


def model_limit(config: Any, path: Path | str | None = None) -> tuple[int | None, str | None]:
    """The longest sequence the model takes: its position table, else its tokenizer's ``model_max_length``."""
    positions = max_positions(config) if config is not None else None
    if positions is not None:
        key = next((k for k in ("max_position_embeddings", "n_positions", "max_seq_len")
                    if isinstance(getattr(config, k, None), int)), "positions")
        return positions, key
    file = Path(path) / "tokenizer_config.json" if path is not None else None
    if file is not None and file.is_file():
        try:
            value = json.loads(file.read_text()).get("model_max_length")
        except (OSError, ValueError):
            value = None
        if isinstance(value, int | float) and 0 < value < _NO_LIMIT:
            return int(value), "model_max_length"
    return None, None


def default_seq_len(config: Any, path: Path | str | None = None, cap: int = DEFAULT_SEQ_LEN) -> SequenceLength:
    """``cap`` tokens, or fewer when the model's own limit is lower."""
    limit, source = model_limit(config, path)
    return SequenceLength(min(cap, limit) if limit is not None else cap, limit, source)
