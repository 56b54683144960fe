"""Tiny models for the compression, profiling and families tests (random weights, built in milliseconds).

``tests/compression/test_compression_models.py`` keeps the builders honest.
"""

from __future__ import annotations

import torch
from torch import nn

from steelyard.models import InputSpec, ModelHandle
from steelyard.models.tasks import make_inputs

BERT = dict(
    vocab_size=100,
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=128,
    max_position_embeddings=64,
    num_labels=3,
)


def tiny_bert(seed: int = 0, batch: int = 2, seq: int = 16, **overrides) -> ModelHandle:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(**{**BERT, **overrides})
    model = BertForSequenceClassification(config).eval()
    inputs = make_inputs(config, "text-classification", InputSpec(batch_size=batch, seq_len=seq), "cpu")
    return ModelHandle("tiny-bert", "config", "text-classification", model, inputs, config)


def tiny_resnet(seed: int = 0, batch: int = 2, image: int = 32) -> ModelHandle:
    from transformers import ResNetConfig, ResNetForImageClassification

    torch.manual_seed(seed)
    config = ResNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], layer_type="basic", num_labels=5)
    model = ResNetForImageClassification(config).eval()
    inputs = make_inputs(config, "image-classification", InputSpec(batch_size=batch, image_size=image), "cpu")
    return ModelHandle("tiny-resnet", "config", "image-classification", model, inputs, config)


def small_cnn(widths: tuple[int, int] = (16, 32), classes: int = 10) -> nn.Sequential:
    a, b = widths
    return nn.Sequential(
        nn.Conv2d(3, a, 3, padding=1), nn.BatchNorm2d(a), nn.ReLU(),
        nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(b, classes),
    )  # fmt: skip


def cnn_factory() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """A factory ("module:function") for load_model: a small CNN and its example input."""
    torch.manual_seed(0)
    return small_cnn().eval(), (torch.randn(2, 3, 16, 16),)


def cnn_handle() -> ModelHandle:
    module, inputs = cnn_factory()
    return ModelHandle("compression_toys:cnn_factory", "factory", "image-classification", module, inputs)


def outputs(handle: ModelHandle, inputs=None) -> torch.Tensor:
    from steelyard.compression.fidelity import primary_output

    with torch.inference_mode():
        return primary_output(handle.forward(inputs))[1].float()
