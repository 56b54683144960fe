"""Parameter counts and weight bytes that also see quantized and exported modules.

``count_parameters`` of the profiler sees ``nn.Parameter`` only; an int8 dynamic Linear keeps its
weight in packed params, a weight-only Linear in buffers, an ONNX Runtime session in its file.
A module can report its own state with ``steelyard_size() -> (parameters, bytes)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ModelSize:
    parameters: int  # logical weights (a quantized weight counts as many as its float original)
    nonzero: int | None  # None where codes are packed and zeros are not visible
    bytes: int  # parameters + persistent buffers, as stored in memory


def _packed_weight_bias(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    weight_bias = getattr(module, "_weight_bias", None)
    if callable(weight_bias) and hasattr(module, "_packed_params"):
        return weight_bias()
    return None


def quantized_tensor_bytes(q: torch.Tensor) -> int:
    """Codes (1 byte each) plus one fp32 scale and one int32 zero point per channel."""
    groups = (
        q.q_per_channel_scales().numel()
        if q.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric)
        else 1
    )
    return q.numel() * q.element_size() + 8 * groups


def model_size(model: nn.Module) -> ModelSize:
    params = 0
    nonzero: int | None = 0
    nbytes = 0
    seen: set[int] = set()

    def add_tensor(t: torch.Tensor, *, is_param: bool) -> None:
        nonlocal params, nonzero, nbytes
        key = t.untyped_storage().data_ptr() + t.storage_offset() if not t.is_meta else id(t)
        if key in seen and t.numel():
            return
        seen.add(key)
        nbytes += t.numel() * t.element_size()
        if is_param:
            params += t.numel()
            if nonzero is not None:
                nonzero += 0 if t.is_meta else int(torch.count_nonzero(t.detach()))

    for module in model.modules():
        if getattr(module, "_steelyard_counted_by_parent", False) or type(module).__name__ == "LinearPackedParams":
            continue  # counted by its parent (a quantized Linear)
        own = getattr(module, "steelyard_size", None)
        if callable(own):
            p, b = own()
            params += p
            nbytes += b
            nonzero = None
            continue
        packed = _packed_weight_bias(module)
        if packed is not None:
            weight, bias = packed
            params += weight.numel()
            nbytes += quantized_tensor_bytes(weight)
            nonzero = None
            if bias is not None:
                add_tensor(bias, is_param=True)
            continue
        for p in module.parameters(recurse=False):
            add_tensor(p, is_param=True)
        skip = getattr(module, "_non_persistent_buffers_set", set())
        for name, b in module.named_buffers(recurse=False):
            if name not in skip:
                add_tensor(b, is_param=False)
    return ModelSize(params, nonzero, nbytes)
