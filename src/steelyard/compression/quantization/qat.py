"""Quantization-aware training: fine-tune with the rounding that ``quantize:int8-dynamic`` will apply.

Inside ``with fake_quant(model):`` every ``nn.Linear`` outside the output head computes

    y = fq_x(x) · fq_w(W)ᵀ + b

where ``fq`` quantizes and dequantizes at once (:mod:`~steelyard.compression.quantization.formulas`):

* weights: symmetric, per output channel, int8, with PyTorch's scale s = max|w| / ((qmax − qmin) / 2)
  = max|w| / 127.5 and codes in [−128, 127] — exactly what ``torch.ao`` dynamic quantization stores;
* inputs (``activations=True``): per tensor, asymmetric, from the tensor's own min and max on
  every call, in the uint8 range that fbgemm's dynamic Linear uses (``reduce_range``: codes 0..127,
  one bit left free so the int8 x uint8 products cannot overflow 16-bit accumulators).

Codes are computed as ``round(x · (1/s))``, as fbgemm does, rather than ``round(x / s)``: the two
differ on values that land exactly half-way (the weight of largest magnitude does, by construction),
and with the multiplication the fake-quantized weights equal torch's int8 weights bit for bit.

Gradients use the straight-through estimator: the backward pass treats ``fq`` as the identity
(nothing is clipped, since the ranges come from the tensors themselves), so the optimizer updates
the float weights while the loss sees the quantized computation. On exit the layers are plain
``nn.Linear`` again, holding the trained float weights; ``quantize:int8-dynamic`` then rounds them
onto the grid the training already adapted to.

Why an instance ``forward`` override and not ``torch.nn.utils.parametrize`` or hooks:
parametrize renames the weight in the state dict (``parametrizations.weight.original``), which
breaks the training loop's best-state snapshot and reload; a forward pre-hook can change the input
but not the weight ``nn.Linear.forward`` reads. The override keeps parameters, their identity (the
optimizer's references) and the state-dict keys unchanged, and is removed on exit.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from steelyard.compression.base import NotApplicableError, linear_layers, no_linear_message
from steelyard.compression.quantization.formulas import QuantParams, affine_params, qrange, range_params
from steelyard.errors import CompressionError, ConfigError

#: Instance attribute holding a layer's :class:`FakeQuantSpec` while fake quantization is on.
SPEC_ATTR = "_steelyard_fake_quant"
_EPS = torch.finfo(torch.float32).eps


@dataclass(frozen=True)
class FakeQuantSpec:
    """How one Linear layer fake-quantizes its weight and input."""

    bits: int = 8
    per_channel: bool = True
    symmetric: bool = True
    activations: bool = True
    reduce_range: bool = True


def weight_params(weight: torch.Tensor, spec: FakeQuantSpec) -> QuantParams:
    """Scale and zero point of a Linear weight, as torch's min-max weight observers compute them."""
    axis = 0 if spec.per_channel else None
    if not spec.symmetric:
        return affine_params(weight, spec.bits, axis=axis, signed=True)
    qmin, qmax = qrange(spec.bits, signed=True)
    w = weight.detach().float().abs()
    absmax = w.amax(dim=1, keepdim=True) if spec.per_channel else w.max().reshape(1, 1)
    scale = torch.clamp(absmax / ((qmax - qmin) / 2), min=_EPS)
    return QuantParams(scale, torch.zeros_like(scale), qmin, qmax, axis)


def activation_params(x: torch.Tensor, spec: FakeQuantSpec) -> QuantParams:
    """Per-tensor asymmetric uint8 parameters from ``x``'s own range (fbgemm dynamic quantization)."""
    flat = x.detach().float()
    return range_params(flat.min(), flat.max(), bits=7 if spec.reduce_range else 8, scheme="affine", signed=False)


def fake_quantize_ste(x: torch.Tensor, p: QuantParams) -> torch.Tensor:
    """dequantize(quantize(x)) in the forward pass, the identity in the backward pass.

    The value is exactly the dequantized codes (``xq + (x − x)`` adds an exact zero), and the
    gradient reaches ``x`` unchanged: the straight-through estimator.
    """
    inverse = 1.0 / p.scale
    codes = torch.clamp(torch.round(x.detach().float() * inverse) + p.zero_point, p.qmin, p.qmax)
    xq = ((codes - p.zero_point) * p.scale).to(x.dtype)
    return xq + (x - x.detach())


def fake_quant_linear(layer: nn.Linear, x: torch.Tensor, spec: FakeQuantSpec) -> torch.Tensor:
    """``layer(x)`` computed with fake-quantized weight (and input)."""
    if spec.activations:
        x = fake_quantize_ste(x, activation_params(x, spec))
    weight = fake_quantize_ste(layer.weight, weight_params(layer.weight, spec))
    return F.linear(x, weight, layer.bias)


def _forward(self: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return fake_quant_linear(self, x, self.__dict__[SPEC_ATTR])


def is_fake_quantized(layer: nn.Module) -> bool:
    return SPEC_ATTR in layer.__dict__


def strip_fake_quant(module: nn.Module) -> int:
    """Make every fake-quantized Linear in ``module`` plain again; returns how many were.

    The context manager does this on exit. Call it yourself on a *copy* made inside the context
    (``copy.deepcopy``, or :func:`steelyard.training.finetune`, which trains a copy): the copy
    carries the override with it.
    """
    count = 0
    for m in module.modules():
        if is_fake_quantized(m):
            del m.__dict__[SPEC_ATTR]
            m.__dict__.pop("forward", None)
            count += 1
    return count


def _check(bits: int) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 8:
        raise ConfigError(f"fake_quant: bits must be an integer in 2..8 (int8 kernels), got {bits!r}")


@contextmanager
def fake_quant(
    module: nn.Module,
    *,
    bits: int = 8,
    per_channel: bool = True,
    symmetric: bool = True,
    activations: bool = True,
    reduce_range: bool = True,
    include_head: bool = False,
) -> Iterator[list[str]]:
    """While active, ``module``'s Linear layers (outside the output head) compute fake-quantized.

    Yields the names of the affected layers. Train inside the context (e.g. with
    :func:`steelyard.training.loop.train`); on exit, even after an error, every layer is plain
    again with its (trained) float weights, no hooks and unchanged state-dict keys.

    ``bits``/``per_channel``/``symmetric`` describe the weights (defaults: what
    ``quantize:int8-dynamic`` stores); ``activations`` adds the per-call input quantization with
    fbgemm's ``reduce_range`` uint8 codes. ``include_head`` also covers the output head (which
    ``quantize:int8-dynamic`` quantizes by default, include_head=true).
    """
    _check(bits)
    layers = linear_layers(module, include_head)
    if not layers:
        raise NotApplicableError(no_linear_message("fake_quant", include_head))
    busy = [name for name, layer in layers if is_fake_quantized(layer) or "forward" in layer.__dict__]
    if busy:
        raise CompressionError(f"fake_quant: layer '{busy[0]}' already has its own forward (nested fake_quant?)")
    spec = FakeQuantSpec(bits, per_channel, symmetric, activations, reduce_range)
    try:
        for _, layer in layers:
            layer.__dict__[SPEC_ATTR] = spec
            layer.__dict__["forward"] = types.MethodType(_forward, layer)
        yield [name for name, _ in layers]
    finally:
        for _, layer in layers:
            layer.__dict__.pop(SPEC_ATTR, None)
            layer.__dict__.pop("forward", None)
