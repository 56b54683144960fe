"""torch's int8 dynamic Linear (``torch.ao.nn.quantized.dynamic.Linear``) on disk, both ways.

Its state dict holds packed, engine-specific weights that safetensors cannot store; here they
become plain tensors — int8 codes, scales, zero points — and are packed again on load, under the
engine the model was quantized for.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from steelyard.errors import CompressionError

KIND = "int8-dynamic-linear"
PLAIN_KEYS = ("weight_int8", "weight_scale", "weight_zero_point")
_PACKED_KEYS = ("scale", "zero_point", "_packed_params.dtype", "_packed_params._packed_params")


def linear_type() -> type:
    import torch.ao.nn.quantized.dynamic as nnqd

    return nnqd.Linear


def record(m: nn.Module) -> dict[str, Any]:
    _weight, bias = m._weight_bias()
    return {"kind": KIND, "in_features": m.in_features, "out_features": m.out_features, "bias": bias is not None}


def plain_tensors(model: nn.Module, state: dict[str, Any]) -> None:
    """Replace (in ``state``) every int8 dynamic layer's packed entries by plain tensors."""
    from steelyard.compression.quantization.modules import plain_weight

    for name, m in model.named_modules():
        if isinstance(m, linear_type()):
            prefix = f"{name}." if name else ""
            for key in _PACKED_KEYS:
                state.pop(prefix + key, None)
            for key, value in plain_weight(*m._weight_bias()).items():
                state[prefix + key] = value


def empty_layer(rec: dict[str, Any]) -> nn.Module:
    """An int8 dynamic Linear of the recorded size, weights still to load."""
    import torch.ao.nn.quantized.dynamic as nnqd

    from steelyard.compression.quantization.modules import quiet_quantization

    with quiet_quantization():
        return nnqd.Linear(rec["in_features"], rec["out_features"], bias_=rec["bias"], dtype=torch.qint8)


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], records: dict[str, dict[str, Any]]) -> None:
    """Pack the plain tensors of ``state`` into the int8 layers; ``state`` then holds their own keys."""
    from steelyard.compression.quantization.modules import quantized_weight, quiet_quantization

    for name, rec in records.items():
        if rec.get("kind") != KIND:
            continue
        prefix = f"{name}." if name else ""
        try:
            codes, scale, zp = (state.pop(prefix + k) for k in PLAIN_KEYS)
        except KeyError as exc:
            raise CompressionError(f"saved weights lack {exc.args[0]} for the int8 layer {name}") from None
        bias = state.pop(prefix + "bias", None)
        module = model.get_submodule(name)
        with quiet_quantization():
            module.set_weight_bias(quantized_weight(codes, scale, zp), bias)
        for key, value in module.state_dict().items():  # its own keys, so load_state_dict leaves it as set
            state[prefix + key] = value
