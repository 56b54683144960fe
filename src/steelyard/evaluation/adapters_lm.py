"""Causal language modelling: each document → blocks of its own tokens, and per-block NLL.

Each document (its tokens, then the end-of-sequence token) is cut into ``block_size`` blocks, as
lm-evaluation-harness scores a corpus document by document, so a block never mixes two documents.
Each block's summed next-token NLL and token count, and the document it comes from, let perplexity
weigh every token equally and be bootstrapped over *documents* (:func:`steelyard.evaluation.predict.
predict` sums the blocks of each document): the unit a held-out set is drawn in, where blocks of one
document are not independent samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from steelyard.data.dataset import Example
from steelyard.errors import ConfigError
from steelyard.evaluation.adapters import Batch, Feature, pad_sequences


@dataclass
class CausalLMAdapter:
    """Documents → blocks of ``block_size`` tokens, each feature naming its document (``document``)."""

    tokenizer: Any
    block_size: int
    kind: str = "lm"
    positional: bool = False

    def encode(self, examples: Sequence[Example]) -> list[Feature]:
        if self.block_size < 2:
            raise ConfigError(f"perplexity needs blocks of at least 2 tokens, got {self.block_size}")
        eos = self.tokenizer.eos_token_id
        texts = [ex.text or "" for ex in examples if (ex.text or "").strip()]
        if not texts:
            return []
        features: list[Feature] = []
        for document, ids in enumerate(self.tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]):
            tokens = list(ids) + ([int(eos)] if eos is not None else [])
            blocks = (tokens[i : i + self.block_size] for i in range(0, len(tokens), self.block_size))
            features.extend({"input_ids": b, "document": document} for b in blocks if len(b) >= 2)
        return features

    def collate(self, features: Sequence[Feature]) -> Batch:
        ids = [f["input_ids"] for f in features]
        pad = int(self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0)
        input_ids = pad_sequences(ids, pad)
        mask = pad_sequences([[1] * len(s) for s in ids], 0)
        labels = input_ids.masked_fill(mask == 0, -100)
        return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def lm_token_nll(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sequence summed next-token NLL (natural log) and the number of predicted tokens."""
    import torch.nn.functional as F

    shift_logits = logits[:, :-1].float()
    shift_labels = labels[:, 1:]
    nll = F.cross_entropy(shift_logits.transpose(1, 2), shift_labels, ignore_index=-100, reduction="none")
    valid = shift_labels != -100
    return (nll * valid).sum(dim=1), valid.sum(dim=1)


