"""Quantized Linear replacements whose state dict holds plain tensors (safetensors-friendly).

* weight-only int8 / int4 Linear layers live in ``lowbit.py`` (torch's low-bit kernels).
* :class:`StaticQuantLinear` runs PyTorch's int8 x int8 kernel (``quantized::linear``) with an
  input scale fixed by calibration instead of measured on every call.

Each module reports ``steelyard_record()`` (what the loader needs to rebuild it) and implements the
profiler's size protocol, ``steelyard_weight()`` (logical parameters and bytes held, per dtype).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from steelyard.compression.quantization.formulas import QuantParams, quantize, symmetric_params
from steelyard.profiling.weigh import HeldWeights, dtype_name, merge, plain_tensor_weights, quantized_tensor_weights


@contextmanager
def quiet_quantization() -> Iterator[None]:
    """Silence torch's deprecation warnings around torch.ao and its quantized-tensor API."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


class StaticQuantLinear(nn.Module):
    """int8 Linear with a calibrated input scale: quantize x → ``quantized::linear`` → dequantize.

    Activations use 7-bit codes (0..127, "reduce_range") because x86 CPUs without VNNI add
    uint8 x int8 products in saturating 16-bit lanes; weights are symmetric int8.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.has_bias = bias
        self.register_buffer("input_scale", torch.tensor(1.0, dtype=torch.float64))
        self.register_buffer("input_zero_point", torch.tensor(0, dtype=torch.int64))
        self.register_buffer("output_scale", torch.tensor(1.0, dtype=torch.float64))
        self.register_buffer("output_zero_point", torch.tensor(0, dtype=torch.int64))
        self._packed: Any = None
        self._set_weight(
            torch.zeros(out_features, in_features, dtype=torch.int8),
            torch.ones(out_features, dtype=torch.float64),
            torch.zeros(out_features, dtype=torch.int64),
            torch.zeros(out_features) if bias else None,
        )

    # -- weights ----------------------------------------------------------------------------
    def _set_weight(
        self, codes: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, bias: torch.Tensor | None
    ) -> None:
        qw = quantized_weight(codes, scale, zero_point)
        self._packed = torch.ops.quantized.linear_prepack(qw, None if bias is None else bias.float())

    def weight_bias(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return torch.ops.quantized.linear_unpack(self._packed)

    @classmethod
    def from_linear(
        cls, linear: nn.Linear, input_params: QuantParams, output_params: QuantParams, per_channel: bool = True
    ) -> StaticQuantLinear:
        new = cls(linear.in_features, linear.out_features, linear.bias is not None)
        w = linear.weight.detach().float()
        p = symmetric_params(w, 8, axis=0 if per_channel else None)
        codes = quantize(w, p).to(torch.int8)
        scale = p.scale.reshape(-1).double()
        new._set_weight(
            codes,
            scale,
            torch.zeros_like(scale, dtype=torch.int64),
            None if linear.bias is None else linear.bias.detach(),
        )
        new.input_scale.fill_(float(input_params.scale))
        new.input_zero_point.fill_(int(input_params.zero_point))
        new.output_scale.fill_(float(output_params.scale))
        new.output_zero_point.fill_(int(output_params.zero_point))
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xq = torch.quantize_per_tensor(x.float(), float(self.input_scale), int(self.input_zero_point), torch.quint8)
        y = torch.ops.quantized.linear(xq, self._packed, float(self.output_scale), int(self.output_zero_point))
        return y.dequantize().to(x.dtype)

    # -- plain-tensor state dict ------------------------------------------------------------
    def _save_to_state_dict(self, destination: Any, prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        for key, value in plain_weight(*self.weight_bias()).items():
            destination[prefix + key] = value

    def _load_from_state_dict(
        self,
        state_dict: Any,
        prefix: str,
        local_metadata: Any,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        keys = ("weight_int8", "weight_scale", "weight_zero_point")
        if all(prefix + k in state_dict for k in keys):
            codes, scale, zp = (state_dict.pop(prefix + k) for k in keys)
            bias = state_dict.pop(prefix + "bias", None)
            self._set_weight(codes, scale, zp, bias)
        elif strict:
            missing_keys.extend(prefix + k for k in keys)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__().copy()
        state["_packed"] = tuple(t for t in self.weight_bias())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        weight, bias = state.pop("_packed")
        super().__setstate__(state)
        self._set_weight(*_qparts(weight), bias)

    def steelyard_record(self) -> dict[str, Any]:
        return {
            "kind": "int8-static-linear",
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.has_bias,
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> StaticQuantLinear:
        return cls(rec["in_features"], rec["out_features"], rec["bias"])

    def steelyard_weight(self) -> HeldWeights:
        """The packed int8 weight (codes, scales, zero points), the float bias and the calibrated scales."""
        weight, bias = self.weight_bias()
        parts = [quantized_tensor_weights(weight)]
        if bias is not None:
            parts.append(plain_tensor_weights(bias))
        parts.extend(HeldWeights({}, {dtype_name(b.dtype): b.numel() * b.element_size()})
                     for b in self.buffers(recurse=False))
        return merge(*parts)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"input_scale={float(self.input_scale):.4g}, input_zero_point={int(self.input_zero_point)}"
        )


def _qparts(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(int8 codes, scales, zero points) of a quantized tensor, per tensor or per channel."""
    if weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        return weight.int_repr(), weight.q_per_channel_scales().double(), weight.q_per_channel_zero_points().long()
    return (
        weight.int_repr(),
        torch.tensor([weight.q_scale()], dtype=torch.float64),
        torch.tensor([weight.q_zero_point()], dtype=torch.int64),
    )


def plain_weight(weight: torch.Tensor, bias: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """A quantized weight (and bias) as plain tensors for a safetensors file."""
    codes, scale, zp = _qparts(weight)
    out = {"weight_int8": codes, "weight_scale": scale, "weight_zero_point": zp}
    if bias is not None:
        out["bias"] = bias.detach()
    return out


def quantized_weight(codes: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor) -> torch.Tensor:
    """Plain tensors back to a qint8 tensor (per tensor when one scale, else per output channel)."""
    with quiet_quantization():
        if scale.numel() == 1:
            return torch._make_per_tensor_quantized_tensor(codes, float(scale), int(zero_point))
        return torch._make_per_channel_quantized_tensor(codes, scale.double(), zero_point.long(), 0)


class QuantizedEmbedding(nn.Module):
    """An embedding table stored as symmetric int8 rows with one float scale per row.

    A lookup reads the int8 rows it needs and dequantizes only those, so it costs no more than
    the float lookup; the table takes a quarter of the memory.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None):
        super().__init__()
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        self.register_buffer("qweight", torch.zeros(num_embeddings, embedding_dim, dtype=torch.int8))
        self.register_buffer("scale", torch.ones(num_embeddings))

    @classmethod
    def from_embedding(cls, emb: nn.Embedding) -> QuantizedEmbedding:
        new = cls(emb.num_embeddings, emb.embedding_dim, emb.padding_idx)
        p = symmetric_params(emb.weight, bits=8, axis=0)
        with torch.no_grad():
            new.qweight.copy_(quantize(emb.weight, p).to(torch.int8))
            new.scale.copy_(p.scale.reshape(-1))
        return new.to(emb.weight.device)

    @property
    def weight(self) -> torch.Tensor:
        """The dequantized table (read-only view for code that inspects ``.weight``)."""
        return self.qweight.float() * self.scale[:, None]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.qweight).float() * self.scale[ids].unsqueeze(-1)

    def steelyard_record(self) -> dict[str, Any]:
        return {"kind": "int8-embedding", "num_embeddings": self.num_embeddings,
                "embedding_dim": self.embedding_dim, "padding_idx": self.padding_idx}  # fmt: skip

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> QuantizedEmbedding:
        return cls(rec["num_embeddings"], rec["embedding_dim"], rec.get("padding_idx"))

    def steelyard_weight(self) -> HeldWeights:
        """The table's elements as int8 codes, plus one fp32 scale per row."""
        n = self.qweight.numel()
        return HeldWeights({"int8": n}, {"int8": n, "float32": self.scale.numel() * self.scale.element_size()})

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, int8 rows"
