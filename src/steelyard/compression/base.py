"""What every transform returns, the errors it raises, and helpers to inspect a model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from steelyard.errors import BackendUnavailableError as BackendUnavailableError  # re-exported: raised here too
from steelyard.errors import CompressionError
from steelyard.families import find_units

#: Names of output heads, which most methods leave alone by default (they decide the labels).
HEAD_NAMES = ("classifier", "lm_head", "score", "qa_outputs", "cls", "head", "fc")


class NotApplicableError(CompressionError):
    """The method does not apply to this model (e.g. attention heads on a CNN)."""


class CalibrationError(CompressionError):
    """A method that needs calibration data got none, or got data the model rejects."""


@dataclass
class TransformResult:
    """A transform's output: the new module and what it changed.

    ``config`` is the updated Hugging Face config (None keeps the copy's own); ``inputs``
    replaces the example inputs when the method changes their dtype; ``backend`` is "torch" or
    "onnxruntime"; ``notes`` are plain sentences for the user; ``details`` are numbers.
    """

    module: nn.Module
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    config: Any = None
    inputs: Any = None
    dtype: torch.dtype | None = None
    backend: str = "torch"


def is_head(name: str, module: nn.Module | None = None, root: nn.Module | None = None) -> bool:
    """Whether ``name`` is (inside) the model's output head."""
    if name.split(".")[0] in HEAD_NAMES:
        return True
    if root is not None and module is not None:
        get_out = getattr(root, "get_output_embeddings", None)
        out = get_out() if callable(get_out) else None
        if out is module:
            return True
    return False


def linear_layers(model: nn.Module, include_head: bool) -> list[tuple[str, nn.Linear]]:
    return [
        (name, m)
        for name, m in model.named_modules()
        if type(m) is nn.Linear and (include_head or not is_head(name, m, model))
    ]


def conv1d_type() -> type | None:
    """transformers' GPT-2 ``Conv1D`` (weight stored (in, out)), if transformers is installed."""
    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:  # pragma: no cover - transformers is a dependency
        return None
    return Conv1D


def weight_of(layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A Linear-like layer's weight as (out, in) and its bias (a Conv1D's weight transposed)."""
    conv1d = conv1d_type()
    if conv1d is not None and isinstance(layer, conv1d):
        return layer.weight.t(), layer.bias
    return layer.weight, layer.bias


def matmul_layers(model: nn.Module, include_head: bool) -> list[tuple[str, nn.Module]]:
    """nn.Linear and Conv1D layers (outside the head unless asked): the decoders' weight matmuls."""
    conv1d = conv1d_type()
    kinds: tuple[type, ...] = (nn.Linear,) if conv1d is None else (nn.Linear, conv1d)
    return [
        (name, m)
        for name, m in model.named_modules()
        if type(m) in kinds and (include_head or not is_head(name, m, model))
    ]


def no_linear_message(method: str, include_head: bool) -> str:
    where = "" if include_head else " outside its output head (include_head=true adds the head)"
    return f"{method} works on nn.Linear layers and this model has none{where}"


def model_kind(model: nn.Module) -> str:
    """ "transformer" (blocks whose heads, FFN neurons or experts a family table knows,
    :func:`steelyard.families.find_units`),
    "cnn" (has Conv2d layers) or "other"."""
    if find_units(model) is not None:
        return "transformer"
    if any(isinstance(m, nn.Conv2d) for m in model.modules()):
        return "cnn"
    return "other"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def set_module(root: nn.Module, name: str, new: nn.Module) -> None:
    """Replace the submodule at dotted path ``name``."""
    parent_name, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, leaf, new)
