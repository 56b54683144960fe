"""A linear classification head on mean-pooled encoder embeddings, and its checkpoint format.

Embedding models such as all-MiniLM-L6-v2 were trained so that the *mean* of their token
vectors is the sentence embedding; transformers' ``BertForSequenceClassification`` classifies
from the first token instead, so a head trained on mean-pooled features cannot live in it.
A head-only checkpoint is therefore the encoder folder (``save_pretrained``, loadable by
``AutoModel`` as before) plus ``steelyard_head.safetensors``, announced in ``config.json`` as
``steelyard_head = {"pooling": "mean", "file": ...}`` together with ``id2label``. steelyard
wraps such a folder in :class:`PooledClassifier` when it evaluates it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

HEAD_FILE = "steelyard_head.safetensors"
HEAD_KEY = "steelyard_head"


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Average of the token vectors that the attention mask keeps (all tokens without a mask)."""
    if attention_mask is None:
        return hidden.mean(dim=1)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


class LinearHead(nn.Module):
    """``features`` (batch, hidden) → logits (batch, classes): what head-only training optimises."""

    def __init__(self, hidden: int, num_labels: int) -> None:
        super().__init__()
        self.classifier = nn.Linear(hidden, num_labels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(features)


class PooledClassifier(nn.Module):
    """Encoder → mean pooling → linear head; returns logits. Inference form of a head-only model."""

    def __init__(self, encoder: nn.Module, head: LinearHead) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.config = getattr(encoder, "config", None)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**kwargs).last_hidden_state
        return self.head(mean_pool(hidden, attention_mask))


def has_pooled_head(config: Any) -> bool:
    """Whether a config announces a steelyard head-only checkpoint."""
    return isinstance(getattr(config, HEAD_KEY, None), dict)


def save_head(head: LinearHead, folder: Path) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}, str(folder / HEAD_FILE))


def load_pooled_classifier(encoder: nn.Module, folder: Path | None, config: Any) -> PooledClassifier:
    """Rebuild the classifier of a head-only checkpoint around its (already loaded) encoder."""
    from safetensors.torch import load_file

    from steelyard.errors import CorruptWeightsError

    meta = getattr(config, HEAD_KEY)
    if folder is None:
        raise CorruptWeightsError("a head-only checkpoint must be loaded from its folder (the head is a file there)")
    file = Path(folder) / str(meta.get("file", HEAD_FILE))
    try:
        state = load_file(str(file))
    except Exception as exc:
        raise CorruptWeightsError(f"cannot read the classification head {file}: {exc}") from exc
    weight = state["classifier.weight"]
    head = LinearHead(int(weight.shape[1]), int(weight.shape[0]))
    head.load_state_dict(state)
    return PooledClassifier(encoder, head).eval()
