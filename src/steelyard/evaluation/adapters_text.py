"""Text for sequence classifiers: the model's own tokenizer, truncation, dynamic padding.

Each batch is padded only to its longest member, which on short texts is several times cheaper
than padding everything to ``max_length``. A model without tokenizer files is refused with the
fix in the message: transformers 5 would otherwise build a placeholder tokenizer of a handful of
tokens and turn every word into ``[UNK]`` silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steelyard.data.dataset import Example
from steelyard.errors import ConfigError
from steelyard.evaluation.adapters import Batch, Feature, pad_sequences, with_labels


def tokenizer_source(handle: Any) -> str | None:
    """Where a handle's tokenizer lives: its folder, or its hub id; None for configs and factories."""
    if getattr(handle, "path", None) is not None and handle.source_kind in ("local", "config"):
        return str(handle.path)
    if handle.source_kind == "hub":
        return str(handle.name)
    return None


#: Files any of which marks a folder as holding a tokenizer.
TOKENIZER_FILES: tuple[str, ...] = (
    "tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "merges.txt", "tokenizer.model",
    "spiece.model", "sentencepiece.bpe.model",
)
#: A real vocabulary is larger than this; transformers' placeholder tokenizer is not.
MIN_VOCAB = 50


def load_tokenizer(source: str | None, model_name: str) -> Any:
    """The tokenizer at ``source`` (folder or hub id), or a one-line ConfigError naming the fix."""
    hint = "pass --tokenizer <folder or hub id> (API: tokenizer=...)"
    if source is None:
        raise ConfigError(f"model {model_name!r} has no tokenizer (it was built from a config or a factory); {hint}")
    from transformers import AutoTokenizer

    folder = Path(source).expanduser()
    if folder.is_dir() and not any((folder / name).is_file() for name in TOKENIZER_FILES):
        # transformers 5 would build a placeholder tokenizer of a handful of tokens here, turning
        # every word into [UNK] without a word of warning.
        raise ConfigError(f"model {model_name!r} has no tokenizer files in {folder}; {hint}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except Exception as exc:  # OSError for missing files, ValueError for unknown classes, hub errors
        raise ConfigError(f"no tokenizer could be loaded from {source!r} for model {model_name!r}; {hint}") from exc
    if len(tokenizer) < MIN_VOCAB:
        raise ConfigError(f"the tokenizer from {source!r} has only {len(tokenizer)} tokens (no vocabulary); {hint}")
    return tokenizer


def model_max_positions(config: Any) -> int | None:
    """The longest sequence a model's position embeddings allow, when its config says (RoBERTa-style
    families reserve padding_idx + 1 of them: :func:`steelyard.families.max_positions`)."""
    from steelyard.families import max_positions

    return max_positions(config)


def effective_max_length(requested: int, tokenizer: Any, config: Any) -> int:
    """``requested`` capped by the tokenizer's and the model's limits."""
    limits = [requested]
    tok_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_max, int) and 0 < tok_max < 1_000_000:
        limits.append(tok_max)
    positions = model_max_positions(config)
    if positions:
        limits.append(positions)
    return min(limits)


@dataclass
class TextAdapter:
    """Tokenize texts for a sequence-classification model; dynamic padding per batch."""

    tokenizer: Any
    max_length: int
    kind: str = "classification"
    positional: bool = False

    def __post_init__(self) -> None:
        if self.max_length < 2:
            raise ConfigError(f"max length must be at least 2 tokens, got {self.max_length}")
        if self.tokenizer.pad_token is None:
            # GPT-style tokenizers have no pad token; padding is masked out, so EOS serves.
            if self.tokenizer.eos_token is None:
                raise ConfigError("the tokenizer has neither a pad nor an end-of-sequence token to pad with")
            self.tokenizer.pad_token = self.tokenizer.eos_token

    @property
    def input_names(self) -> list[str]:
        names = list(getattr(self.tokenizer, "model_input_names", None) or ["input_ids", "attention_mask"])
        return [n for n in names if n in ("input_ids", "attention_mask", "token_type_ids")]

    def encode(self, examples: Sequence[Example]) -> list[Feature]:
        texts = [ex.text or "" for ex in examples]
        if not texts:
            return []
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_length)
        names = [n for n in self.input_names if n in enc]
        return [
            {**{n: enc[n][i] for n in names}, "label": ex.label}
            for i, ex in enumerate(examples)
        ]

    def collate(self, features: Sequence[Feature]) -> Batch:
        pad_id = int(self.tokenizer.pad_token_id)
        left = getattr(self.tokenizer, "padding_side", "right") == "left"
        batch: Batch = {}
        for name in self.input_names:
            if name not in features[0]:
                continue
            value = pad_id if name == "input_ids" else 0
            batch[name] = pad_sequences([f[name] for f in features], value, left)
        return with_labels(batch, features)


