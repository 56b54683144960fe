"""Linear (uniform) quantization as small pure functions.

Notation: ``x`` a real tensor, ``q`` its integer code, ``s`` the scale (step between two codes),
``z`` the zero point (the code of the real value 0), ``[qmin, qmax]`` the integer range.

Quantize and dequantize (both schemes)::

    q  = clamp(round(x / s) + z, qmin, qmax)
    x' = (q - z) * s

**Symmetric** (signed codes, zero point 0; weights)::

    qmax = 2**(b-1) - 1,  qmin = -qmax          (the "narrow" range: -127..127 for int8)
    s    = max|x| / qmax
    z    = 0

**Asymmetric / affine** (any codes; activations, which are often all positive)::

    lo = min(min x, 0),  hi = max(max x, 0)     (the range must hold 0 so 0 is exact)
    s  = (hi - lo) / (qmax - qmin)
    z  = clamp(round(qmin - lo / s), qmin, qmax)

Error bound: for every ``x`` inside the calibrated range, ``|x - x'| <= s / 2``. (Affine: the
rounded zero point moves the whole grid by at most s/2, so the end points lo and hi still lie
within s/2 of the first and last code.) Outside the range, clamping adds the distance to it.

**Per tensor** uses one (s, z) for the whole tensor; **per channel** one per slice along
``axis`` (output channel 0 for weights), which follows each row's own range and loses less.
A constant-zero tensor or channel gets s = 1 so that nothing divides by zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

Scheme = Literal["symmetric", "affine"]


@dataclass(frozen=True)
class QuantParams:
    """Scale and zero point (tensors shaped to broadcast against ``x``) and the code range."""

    scale: torch.Tensor
    zero_point: torch.Tensor
    qmin: int
    qmax: int
    axis: int | None = None

    @property
    def bits(self) -> int:
        return int(self.qmax - self.qmin + 1).bit_length() - 1


def qrange(bits: int, signed: bool, narrow: bool = False) -> tuple[int, int]:
    """The integer range of ``bits``-bit codes; ``narrow`` drops the most negative code."""
    if not 2 <= bits <= 16:
        raise ValueError(f"bits must be in 2..16, got {bits}")
    if signed:
        qmax = 2 ** (bits - 1) - 1
        return (-qmax if narrow else -qmax - 1), qmax
    return 0, 2**bits - 1


def _reduce(x: torch.Tensor, axis: int | None, op: str) -> torch.Tensor:
    """min / max / absmax over the whole tensor, or over every dim but ``axis`` (kept, size 1 elsewhere)."""
    x = x.detach().float()
    if axis is None:
        value = {"min": x.min, "max": x.max, "absmax": lambda: x.abs().max()}[op]()
        return value.reshape([1] * x.dim()) if x.dim() else value
    axis = axis % x.dim()
    dims = [d for d in range(x.dim()) if d != axis]
    src = x.abs() if op == "absmax" else x
    fn = torch.amin if op == "min" else torch.amax
    return fn(src, dim=dims, keepdim=True)


def _safe_scale(scale: torch.Tensor) -> torch.Tensor:
    return torch.where(scale > 0, scale, torch.ones_like(scale))


def symmetric_params(x: torch.Tensor, bits: int = 8, axis: int | None = None) -> QuantParams:
    """s = max|x| / qmax, z = 0, codes in [-qmax, qmax]."""
    qmin, qmax = qrange(bits, signed=True, narrow=True)
    scale = _safe_scale(_reduce(x, axis, "absmax") / qmax)
    return QuantParams(scale, torch.zeros_like(scale), qmin, qmax, axis)


def range_params(
    lo: torch.Tensor | float,
    hi: torch.Tensor | float,
    bits: int = 8,
    scheme: Scheme = "affine",
    signed: bool = False,
    axis: int | None = None,
) -> QuantParams:
    """Scale and zero point from an observed range [lo, hi] (what calibration observers give)."""
    lo_t = torch.as_tensor(lo, dtype=torch.float32)
    hi_t = torch.as_tensor(hi, dtype=torch.float32)
    if scheme == "symmetric":
        qmin, qmax = qrange(bits, signed=True, narrow=True)
        scale = _safe_scale(torch.maximum(lo_t.abs(), hi_t.abs()) / qmax)
        return QuantParams(scale, torch.zeros_like(scale), qmin, qmax, axis)
    qmin, qmax = qrange(bits, signed=signed)
    lo_t = torch.clamp(lo_t, max=0.0)
    hi_t = torch.clamp(hi_t, min=0.0)
    scale = _safe_scale((hi_t - lo_t) / (qmax - qmin))
    zero_point = torch.clamp(torch.round(qmin - lo_t / scale), qmin, qmax)
    return QuantParams(scale, zero_point, qmin, qmax, axis)


def affine_params(x: torch.Tensor, bits: int = 8, axis: int | None = None, signed: bool = False) -> QuantParams:
    """Asymmetric parameters from the tensor's own min and max (per tensor or per channel)."""
    return range_params(_reduce(x, axis, "min"), _reduce(x, axis, "max"), bits, "affine", signed, axis)


def quantize(x: torch.Tensor, p: QuantParams) -> torch.Tensor:
    """Integer codes (int32 tensor): clamp(round(x / s) + z, qmin, qmax)."""
    q = torch.round(x.detach().float() / p.scale) + p.zero_point
    return torch.clamp(q, p.qmin, p.qmax).to(torch.int32)


def dequantize(q: torch.Tensor, p: QuantParams) -> torch.Tensor:
    """Real values back from codes: (q - z) * s."""
    return (q.float() - p.zero_point) * p.scale


def fake_quantize(x: torch.Tensor, p: QuantParams) -> torch.Tensor:
    """x' = dequantize(quantize(x)): the value a quantized kernel actually computes with."""
    return dequantize(quantize(x, p), p).to(x.dtype)


def max_error_bound(p: QuantParams) -> torch.Tensor:
    """The round-trip error bound inside the calibrated range: s / 2."""
    return p.scale / 2
