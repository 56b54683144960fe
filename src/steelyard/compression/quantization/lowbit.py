"""Weight-only int8 / int4 Linear layers run by torch's own low-bit CPU kernels.

Decoding at batch 1 is memory-bound: each generated token reads every weight once, so storing
weights in 8 or 4 bits speeds it up only if the matmul reads the low-bit codes directly. These
layers never rebuild a float weight; they call

* int8: ``aten._weight_int8pack_mm(x, codes[n, k] int8, scales[n])`` — symmetric, one scale per
  output row (the kernel has no zero point and no groups);
* int4: ``aten._weight_int4pack_mm_for_cpu(x, packed[n, k/2] uint8, group, scale_zeros[k/g, n, 2])``
  with ``w = (q − 8)·s + z`` per group of ``group`` input weights (32, 64, 128 or 256); symmetric
  (z = 0, s = max|w|/7) or asymmetric (s = (max − min)/15, z = min + 8s).

Calibrated methods (AWQ, GPTQ) choose the codes elsewhere and hand them over with :meth:`WeightOnlyLinear.from_codes`;
AWQ's per-input-channel scales ``s`` are kept as an ``input_scale`` (1/s) that multiplies the activations
before the kernel — k multiplies per token against the kernel's n·k, so decode still reads int4 codes.

The int4 buffer is in the kernel's own packed CPU layout (``_convert_weight_to_int4pack_for_cpu``);
a saved model therefore reloads with a torch that has that kernel (2.6 or later).

Both kernels multiply in the dtype of the scales (``compute_dtype``). On an AVX2 CPU their float32
path is 10-30x slower than their bfloat16 path (measured with torch 2.13), so weight-only layers
take bfloat16 activations by default, casting the input in and the output back.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from steelyard.compression.quantization.config import INT4_GROUP_SIZES
from steelyard.profiling.weigh import HeldWeights, dtype_name, merge, plain_tensor_weights

#: Output rows of an int4 weight must be a multiple of this (the CPU pack works in blocks of 16).
INT4_ROW_BLOCK = 16
KERNELS = {8: "aten._weight_int8pack_mm", 4: "aten._weight_int4pack_mm_for_cpu"}


def int4_unfit(in_features: int, out_features: int, group_size: int) -> str | None:
    """Why an (out, in) weight cannot use the int4 kernel, or None when it can."""
    if group_size not in INT4_GROUP_SIZES:
        return f"group size {group_size} is not one the int4 kernel takes ({', '.join(map(str, INT4_GROUP_SIZES))})"
    if in_features % group_size:
        return f"group size {group_size} does not divide the {in_features} input features"
    if out_features % INT4_ROW_BLOCK:
        return f"{out_features} output features are not a multiple of {INT4_ROW_BLOCK}"
    return None


def kernels_available() -> bool:
    """Whether this torch ships the low-bit CPU kernels these layers call."""
    aten = torch.ops.aten
    return all(hasattr(aten, n) for n in ("_weight_int8pack_mm", "_weight_int4pack_mm_for_cpu",
                                          "_convert_weight_to_int4pack_for_cpu"))  # fmt: skip


class WeightOnlyLinear(nn.Module):
    """y = x·Wᵀ + b with W held as int8 rows or packed int4 groups, multiplied by a low-bit kernel."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, bits: int = 8, group_size: int = 0,
                 symmetric: bool = True, compute_dtype: torch.dtype = torch.bfloat16,
                 input_scale: bool = False):  # fmt: skip
        super().__init__()
        if bits == 8 and (group_size or not symmetric):
            raise ValueError("the int8 kernel takes symmetric weights with one scale per output row (group_size=0)")
        if bits == 4 and (why := int4_unfit(in_features, out_features, group_size)):
            raise ValueError(why)
        if bits not in (8, 4):
            raise ValueError("bits must be 8 or 4")
        self.in_features, self.out_features, self.bits = in_features, out_features, bits
        self.group_size, self.symmetric = group_size, symmetric
        if bits == 8:
            self.register_buffer("qweight", torch.zeros(out_features, in_features, dtype=torch.int8))
            self.register_buffer("scale", torch.ones(out_features, dtype=compute_dtype))
        else:
            self.register_buffer("qweight", torch.zeros(out_features, in_features // 2, dtype=torch.uint8))
            self.register_buffer("scale", torch.zeros(in_features // group_size, out_features, 2, dtype=compute_dtype))
        self.bias = nn.Parameter(torch.zeros(out_features), requires_grad=False) if bias else None
        # AWQ: x·diag(1/s) meets the codes of W·diag(s); float32, applied before the cast to compute_dtype
        self.input_scale: torch.Tensor | None
        if input_scale:
            self.register_buffer("input_scale", torch.ones(in_features))
        else:
            self.input_scale = None

    @classmethod
    def from_weight(cls, weight: torch.Tensor, bias: torch.Tensor | None, bits: int = 8, group_size: int = 0,
                    symmetric: bool = True, compute_dtype: torch.dtype = torch.bfloat16,
                    ) -> WeightOnlyLinear:  # fmt: skip
        """Quantize an (out, in) float weight (a Conv1D's weight transposed) and its bias."""
        out_features, in_features = weight.shape
        new = cls(in_features, out_features, bias is not None, bits, group_size, symmetric, compute_dtype)
        w = weight.detach().float().cpu()
        with torch.no_grad():
            if bits == 8:
                scale = w.abs().amax(dim=1).clamp(min=1e-12) / 127
                new.qweight.copy_((w / scale[:, None]).round().clamp(-127, 127).to(torch.int8))
                new.scale.copy_(scale)
            else:
                codes, scale_zeros = _int4_codes(w, group_size, symmetric)
                new.qweight.copy_(torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes, 1))
                new.scale.copy_(scale_zeros)
            if bias is not None:
                new.bias.copy_(bias.detach().float())
        return new

    @classmethod
    def from_codes(cls, codes: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor | None, bias: torch.Tensor | None,
                   bits: int, group_size: int = 0, compute_dtype: torch.dtype = torch.bfloat16,
                   input_scale: torch.Tensor | None = None) -> WeightOnlyLinear:  # fmt: skip
        """Pack integer codes chosen elsewhere (e.g. by a calibrated method) for the low-bit kernels.

        ``codes`` (out, in) are signed: int8 in [-128, 127] with ``w = q·scale[row]`` (``zero`` None), or int4
        in [-8, 7] with ``w = (q − zero)·scale`` per group of ``group_size`` inputs (``scale`` and ``zero``
        (out, in/group); zero None or all 0 is symmetric). ``input_scale`` (in,) multiplies the activations.
        """
        out_features, in_features = codes.shape
        symmetric = zero is None or not bool(zero.any())
        new = cls(in_features, out_features, bias is not None, bits, group_size, symmetric, compute_dtype,
                  input_scale is not None)  # fmt: skip
        q = codes.detach().cpu().to(torch.int32)
        s = scale.detach().float().cpu().reshape(out_features, -1)
        with torch.no_grad():
            if bits == 8:
                if q.min() < -128 or q.max() > 127 or s.shape[1] != 1:
                    raise ValueError("int8 codes must lie in [-128, 127] with one scale per output row")
                new.qweight.copy_(q.to(torch.int8))
                new.scale.copy_(s[:, 0])
            else:
                if q.min() < -8 or q.max() > 7 or s.shape[1] != in_features // group_size:
                    raise ValueError(f"int4 codes must lie in [-8, 7] with one scale per {group_size} inputs")
                z = torch.zeros_like(s) if zero is None else zero.detach().float().cpu().reshape(out_features, -1)
                # the kernel computes (c − 8)·s + z' with c = q + 8, so z' = −zero·s
                scale_zeros = torch.stack((s, -z * s), dim=-1).transpose(0, 1).contiguous()
                new.qweight.copy_(torch.ops.aten._convert_weight_to_int4pack_for_cpu(q + 8, 1))
                new.scale.copy_(scale_zeros)
            if bias is not None:
                new.bias.copy_(bias.detach().float())
            if input_scale is not None:
                new.input_scale.copy_(input_scale.detach().float().cpu())
        return new

    @classmethod
    def from_linear(cls, linear: nn.Linear, bits: int = 8, group_size: int = 0,
                    symmetric: bool = True, compute_dtype: torch.dtype = torch.bfloat16,
                    ) -> WeightOnlyLinear:  # fmt: skip
        return cls.from_weight(linear.weight, linear.bias, bits, group_size, symmetric, compute_dtype)

    @property
    def kernel(self) -> str:
        return KERNELS[self.bits]

    def _mm(self, x2: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        if self.bits == 8:
            return torch.ops.aten._weight_int8pack_mm(x2, self.qweight, scale)
        return torch.ops.aten._weight_int4pack_mm_for_cpu(x2, self.qweight, self.group_size, scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = self.scale.dtype  # the kernels want x in the scales' dtype (f32, f16 or bf16)
        x2 = x.reshape(-1, self.in_features)
        if self.input_scale is not None:
            x2 = x2 * self.input_scale.to(x2.dtype)
        x2 = x2.to(dtype).contiguous()
        y = self._mm(x2, self.scale)
        if self.bias is not None:
            y = y + self.bias.to(dtype)
        return y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

    def dequantized_weight(self) -> torch.Tensor:
        """The float weight the codes stand for, read back through the kernel itself (x = I, in float32)."""
        eye = torch.eye(self.in_features, device=self.scale.device)
        weight = self._mm(eye, self.scale.float()).t()
        return weight if self.input_scale is None else weight * self.input_scale[None, :]

    def steelyard_record(self) -> dict[str, Any]:
        return {
            "kind": "weight-only-linear",
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias is not None,
            "bits": self.bits,
            "group_size": self.group_size,
            "symmetric": self.symmetric,
            "kernel": self.kernel,
            "compute_dtype": dtype_name(self.scale.dtype),
            "input_scale": self.input_scale is not None,
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> WeightOnlyLinear:
        return cls(rec["in_features"], rec["out_features"], rec["bias"], rec["bits"], rec["group_size"],
                   rec.get("symmetric", True), getattr(torch, rec.get("compute_dtype", "bfloat16")),
                   rec.get("input_scale", False))  # fmt: skip

    def steelyard_weight(self) -> HeldWeights:
        """The float weight's elements as int8 / int4 codes, plus the scales (and zeros) and the bias."""
        codes = f"int{self.bits}"
        n = self.in_features * self.out_features
        parts = [
            HeldWeights({codes: n}, {codes: self.qweight.numel() * self.qweight.element_size()}),
            HeldWeights({}, {dtype_name(self.scale.dtype): self.scale.numel() * self.scale.element_size()}),
        ]
        if self.bias is not None:
            parts.append(plain_tensor_weights(self.bias))
        if self.input_scale is not None:
            parts.append(HeldWeights({}, {"float32": self.input_scale.numel() * 4}))
        return merge(*parts)

    def extra_repr(self) -> str:
        groups = f"group_size={self.group_size}, symmetric={self.symmetric}" if self.bits == 4 else "per row"
        return f"in_features={self.in_features}, out_features={self.out_features}, bits={self.bits}, {groups}"


def _int4_codes(w: torch.Tensor, group: int, symmetric: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(codes 0..15 as int32 (n, k), scales and zeros (k/group, n, 2)) with w ≈ (q − 8)·s + z per group."""
    n, k = w.shape
    g = w.reshape(n, k // group, group)
    if symmetric:
        scale = (g.abs().amax(dim=-1, keepdim=True) / 7).clamp(min=1e-12)
        zero = torch.zeros_like(scale)
        codes = (g / scale).round().clamp(-8, 7) + 8
    else:
        lo, hi = g.amin(dim=-1, keepdim=True), g.amax(dim=-1, keepdim=True)
        scale = ((hi - lo) / 15).clamp(min=1e-12)
        zero = lo + 8 * scale
        codes = ((g - lo) / scale).round().clamp(0, 15)
    scale_zeros = torch.cat((scale, zero), dim=-1).transpose(0, 1).contiguous()  # (groups, n, 2)
    return codes.reshape(n, k).to(torch.int32), scale_zeros
