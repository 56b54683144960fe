"""Tasks steelyard knows, the transformers auto-class for each, and example inputs.

A task decides which head sits on the model and what an input looks like; everything
downstream (counting, timing, evaluation) only calls ``handle.forward()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from steelyard.errors import ConfigError
from steelyard.families import config_number

TASKS: dict[str, str] = {
    "text-classification": "AutoModelForSequenceClassification",
    "image-classification": "AutoModelForImageClassification",
    "causal-lm": "AutoModelForCausalLM",
    "feature-extraction": "AutoModel",
}

VISION_MODEL_TYPES = {
    "vit",
    "resnet",
    "mobilenet_v2",
    "mobilenet_v1",
    "convnext",
    "convnextv2",
    "efficientnet",
    "deit",
    "swin",
    "regnet",
    "beit",
    "dinov2",
    "levit",
}


@dataclass(frozen=True)
class InputSpec:
    """The shape of the example batch that every measurement uses."""

    batch_size: int = 1
    seq_len: int = 128
    image_size: int | None = None  # None: the config's own image size (224 when it has none)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {self.batch_size}")
        if self.seq_len < 1:
            raise ConfigError(f"sequence length must be at least 1, got {self.seq_len}")
        if self.image_size is not None and self.image_size < 1:
            raise ConfigError(f"image size must be at least 1, got {self.image_size}")


def check_task(task: str) -> str:
    if task not in TASKS:
        raise ConfigError(f"unknown task '{task}'; choose one of: {', '.join(TASKS)}")
    return task


def auto_class(task: str) -> Any:
    import transformers

    return getattr(transformers, TASKS[check_task(task)])


def infer_task(config: Any) -> str:
    """The task a config was published for: its architecture name, else its model type."""
    for arch in getattr(config, "architectures", None) or []:
        if arch.endswith(("ForCausalLM", "LMHeadModel")):
            return "causal-lm"
        if arch.endswith("ForSequenceClassification"):
            return "text-classification"
        if arch.endswith("ForImageClassification"):
            return "image-classification"
    if getattr(config, "model_type", None) in VISION_MODEL_TYPES:
        return "image-classification"
    return "feature-extraction"


def is_vision(config: Any) -> bool:
    return getattr(config, "model_type", None) in VISION_MODEL_TYPES or hasattr(config, "num_channels")


def make_inputs(config: Any, task: str, spec: InputSpec, device: Any) -> dict[str, Any]:
    """Example inputs for a Hugging Face model: token ids (text) or pixel values (vision).

    Token ids are drawn at random from the vocabulary (fixed seed) so that embedding lookups
    touch realistic rows; on the meta device only shapes matter.
    """
    import torch

    if task == "image-classification" or (task == "feature-extraction" and is_vision(config)):
        size = spec.image_size or _config_image_size(config)
        channels = int(getattr(config, "num_channels", 3))
        shape = (spec.batch_size, channels, size, size)
        if str(device) == "meta":
            return {"pixel_values": torch.empty(shape, device="meta")}
        gen = torch.Generator().manual_seed(0)
        return {"pixel_values": torch.randn(shape, generator=gen).to(device)}
    vocab = int(getattr(config, "vocab_size", 30522) or 30522)
    max_pos = config_number(config, "positions")
    if max_pos is not None and spec.seq_len > int(max_pos):
        raise ConfigError(
            f"sequence length {spec.seq_len} exceeds the model's maximum of {max_pos} positions"
        )
    shape = (spec.batch_size, spec.seq_len)
    if str(device) == "meta":
        # No attention mask: models inspect mask values (``.item()``) to pick a kernel, which
        # meta tensors cannot answer; an all-ones mask changes no FLOPs.
        return {"input_ids": torch.zeros(shape, dtype=torch.long, device="meta")}
    else:
        gen = torch.Generator().manual_seed(0)
        ids = torch.randint(0, vocab, shape, generator=gen).to(device)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def _config_image_size(config: Any) -> int:
    size = getattr(config, "image_size", None)
    if isinstance(size, (list, tuple)):
        size = size[0]
    return int(size or 224)
