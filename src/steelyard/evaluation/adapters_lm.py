"""Causal language modelling: documents → one token stream → blocks, and per-block NLL.

Documents are joined with the end-of-sequence token and cut into ``block_size`` blocks, the
standard way to measure perplexity; each block's summed next-token NLL and token count let
perplexity weigh every token equally and still be bootstrapped over blocks.
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
    """Documents → one token stream (EOS between documents) → blocks of ``block_size`` tokens."""

    tokenizer: Any
    block_size: int
    kind: str = "lm"
    positional: bool = False

    def encode(self, examples: Sequence[Example]) -> list[Feature]:
        if self.block_size < 2:
            raise ConfigError(f"perplexity needs blocks of at least 2 tokens, got {self.block_size}")
        eos = self.tokenizer.eos_token_id
        stream: list[int] = []
        texts = [ex.text or "" for ex in examples if (ex.text or "").strip()]
        if not texts:
            return []
        for ids in self.tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]:
            stream.extend(ids)
            if eos is not None:
                stream.append(int(eos))
        blocks = [stream[i : i + self.block_size] for i in range(0, len(stream), self.block_size)]
        return [{"input_ids": b} for b in blocks if len(b) >= 2]

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


