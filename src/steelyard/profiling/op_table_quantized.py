"""Cost formulas for the quantized kernels (``torch.ops.quantized``) compressed models run.

They count the same multiply-adds as the float op they replace (a quantized linear is still
``numel(out) · in_features`` MACs); shapes come from the packed weight the kernel receives, read
through its TorchBind methods (``unpack()`` for linear, ``weight()`` / ``bias()`` for conv), which do
not dispatch. Quantize / requantize steps inside the kernel are not counted. A bias add is 1 other
FLOP per output element, as for the float ops.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from steelyard.profiling.op_table import MacFormula, Uncountable, conv_macs_from_shapes

quantized = torch.ops.quantized


def _numel(x: Any) -> int:
    return x.numel() if isinstance(x, torch.Tensor) else 0


def _linear_weight_bias(packed: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    try:
        weight, bias = packed.unpack()
    except (AttributeError, RuntimeError, TypeError, ValueError) as err:  # an engine without unpack()
        raise Uncountable(f"packed linear weight not readable: {err}") from err
    return weight, bias


def _conv_weight_bias(packed: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    try:
        return packed.weight(), packed.bias()
    except (AttributeError, RuntimeError, TypeError) as err:
        raise Uncountable(f"packed conv weight not readable: {err}") from err


def quantized_linear_macs(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    """``quantized::linear{,_dynamic,_relu,...}(x, packed_weight, ...)``: numel(out) · in_features."""
    weight, _ = _linear_weight_bias(args[1])
    return _numel(out) * weight.shape[1]


def quantized_linear_bias_flops(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    _, bias = _linear_weight_bias(args[1])
    return _numel(out) if bias is not None else 0


def quantized_conv_macs(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    """``quantized::conv{1,2,3}d(x, packed_weight, scale, zero_point)``: numel(out) · C_in/groups · prod(k).

    Only forward convolutions are in the table (``quantized::conv_transpose*`` are not), so the
    weight is (C_out, C_in/groups, *k)."""
    weight, _ = _conv_weight_bias(args[1])
    return conv_macs_from_shapes(tuple(args[0].shape), tuple(weight.shape), tuple(out.shape), transposed=False)


def quantized_conv_bias_flops(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    return _numel(out) if _conv_weight_bias(args[1])[1] is not None else 0


_LINEAR = ("linear", "linear_dynamic", "linear_relu", "linear_relu_dynamic", "linear_dynamic_fp16",
           "linear_relu_dynamic_fp16")
_CONV = ("conv1d", "conv2d", "conv3d", "conv1d_relu", "conv2d_relu", "conv3d_relu")

#: Quantized matrix-class ops: packet -> (category, MAC formula), as ``op_table.MAC_OPS``.
MAC_OPS: dict[Any, tuple[str, MacFormula]] = {}
#: Their bias adds: packet -> (other-FLOPs category, formula), as ``op_table.MAC_OP_EXTRAS``.
MAC_OP_EXTRAS: dict[Any, tuple[str, MacFormula]] = {}
for _name in _LINEAR:
    if hasattr(quantized, _name):
        MAC_OPS[getattr(quantized, _name)] = ("matmul", quantized_linear_macs)
        MAC_OP_EXTRAS[getattr(quantized, _name)] = ("elementwise", quantized_linear_bias_flops)
for _name in _CONV:
    if hasattr(quantized, _name):
        MAC_OPS[getattr(quantized, _name)] = ("conv", quantized_conv_macs)
        MAC_OP_EXTRAS[getattr(quantized, _name)] = ("elementwise", quantized_conv_bias_flops)
