"""Weigh a model: parameters (tied weights once) and bytes in memory and on disk, per dtype.

One weigher for float and compressed modules alike. ``nn.Parameter`` alone misses most of a
compressed model: an int8 dynamic Linear keeps its weight in packed params, a weight-only
Linear keeps codes and scales in buffers, an ONNX Runtime session keeps everything in its file.
So a module whose weights are not plain parameters reports them itself through the **size
protocol** (:class:`WeighsItself`): ``steelyard_weight()`` returns a :class:`HeldWeights` — the
*logical* parameters it stands for (a quantized weight counts as many as its float original) and
the bytes it keeps, each per storage dtype. The weigher then takes that report for the whole
module and does not look inside it; what it holds counts as weight (parameter) bytes. torch's own
packed int8 Linears (``torch.ao``) are read directly, so profiling needs nothing from
``compression`` (which implements the protocol).
"""

from __future__ import annotations

import json
import struct
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from steelyard.profiling.report import ParameterCount, Storage
from steelyard.units import Bytes


@dataclass(frozen=True)
class HeldWeights:
    """What one self-weighing module holds: logical parameters and bytes, both keyed by storage dtype."""

    parameters: dict[str, int]
    bytes: dict[str, int]
    #: Non-zero parameters; None where the codes are packed and zeros are not visible.
    nonzero: int | None = None

    @property
    def total_parameters(self) -> int:
        return sum(self.parameters.values())


@runtime_checkable
class WeighsItself(Protocol):
    """The size protocol: a module that knows what it holds better than its parameters say."""

    def steelyard_weight(self) -> HeldWeights: ...


@dataclass(frozen=True)
class Weighing:
    """A model's parameter count and storage, as the cost card and the recipe tables show them."""

    parameters: ParameterCount
    storage: Storage

    @property
    def bytes(self) -> Bytes:
        """Parameters plus persistent buffers, in memory."""
        return Bytes(self.storage.parameters + self.storage.buffers)


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


#: Quantized tensor dtypes under the name of the integer codes they store.
_CODE_DTYPES = {torch.qint8: "int8", torch.quint8: "uint8", torch.qint32: "int32"}


def quantized_tensor_weights(q: torch.Tensor) -> HeldWeights:
    """A qint8 tensor: 1-byte codes plus one fp32 scale and one int32 zero point per channel (or per tensor)."""
    per_channel = q.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric)
    groups = q.q_per_channel_scales().numel() if per_channel else 1
    codes = _CODE_DTYPES.get(q.dtype, dtype_name(q.dtype))
    return HeldWeights(
        parameters={codes: q.numel()},
        bytes={codes: q.numel() * q.element_size(), "float32": 4 * groups, "int32": 4 * groups},
    )


def merge(*parts: HeldWeights) -> HeldWeights:
    """The sum of several holdings (a quantized weight and its float bias, say)."""
    params: dict[str, int] = defaultdict(int)
    nbytes: dict[str, int] = defaultdict(int)
    nonzero: int | None = 0
    for part in parts:
        for k, v in part.parameters.items():
            params[k] += v
        for k, v in part.bytes.items():
            nbytes[k] += v
        nonzero = None if nonzero is None or part.nonzero is None else nonzero + part.nonzero
    return HeldWeights(dict(params), dict(nbytes), nonzero)


def plain_tensor_weights(t: torch.Tensor) -> HeldWeights:
    """A plain weight tensor: its elements and its bytes under its dtype (non-zeros unknown on meta)."""
    name = dtype_name(t.dtype)
    nonzero = None if t.is_meta else int(torch.count_nonzero(t.detach()))
    return HeldWeights({name: t.numel()}, {name: t.numel() * t.element_size()}, nonzero)


def _torch_packed_linear(module: nn.Module) -> HeldWeights | None:
    """torch.ao's int8 Linears (dynamic or static) keep weight and bias in a packed handle."""
    weight_bias = getattr(module, "_weight_bias", None)
    if not (callable(weight_bias) and hasattr(module, "_packed_params")):
        return None
    weight, bias = weight_bias()
    parts = [quantized_tensor_weights(weight)]
    if bias is not None:
        parts.append(plain_tensor_weights(bias))
    return merge(*parts)


def held_by(module: nn.Module) -> HeldWeights | None:
    """What ``module`` reports for itself (protocol or torch.ao packed Linear); None for plain modules."""
    if isinstance(module, WeighsItself):
        return module.steelyard_weight()
    return _torch_packed_linear(module)


def _plain_modules(model: nn.Module) -> Iterator[tuple[nn.Module, HeldWeights | None]]:
    """(module, its own report) in order, not descending into modules that weigh themselves."""
    stack: list[nn.Module] = [model]
    while stack:
        module = stack.pop()
        own = held_by(module)
        yield module, own
        if own is None:
            stack.extend(reversed(list(module.children())))


def _key(t: torch.Tensor) -> tuple[int, ...]:
    """Identity of the memory a tensor uses: two names for one storage (tied weights) share a key."""
    if t.is_meta or not t.numel():
        return (id(t),)
    return (t.untyped_storage().data_ptr(), t.storage_offset(), t.numel())


#: safetensors dtype codes under torch's names.
_SAFETENSORS_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2", "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8",
    "BOOL": "bool",
}


def disk_bytes_by_dtype(files: list[Path]) -> dict[str, int]:
    """Tensor bytes per dtype in ``.safetensors`` files, read from their headers (no tensor is loaded).

    A safetensors file starts with an 8-byte little-endian header length, then a JSON header that
    gives each tensor's dtype and byte range. Other formats are left out (their total is ``on_disk``).
    """
    out: dict[str, int] = defaultdict(int)
    for f in files:
        if f.suffix != ".safetensors":
            continue
        with f.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(length))
        for name, info in header.items():
            if name != "__metadata__":
                start, end = info["data_offsets"]
                out[_SAFETENSORS_DTYPES.get(info["dtype"], info["dtype"].lower())] += end - start
    return dict(out)


def weigh(model: nn.Module, files: list[Path] | None = None) -> Weighing:
    """Parameters and bytes of ``model`` (float or compressed), and the size of its weight ``files`` on disk.

    Tied weights (one tensor under two names) count once, in the parameters and in the bytes;
    ``tied`` says how many elements the second names would have added. Non-persistent buffers are
    not part of the model's state and are left out.
    """
    buffer_bytes: dict[str, int] = defaultdict(int)
    trainable = tied = 0
    seen: set[tuple[int, ...]] = set()
    weights: list[HeldWeights] = []
    for module, own in _plain_modules(model):
        if own is not None:
            weights.append(own)
            continue
        for p in module.parameters(recurse=False):
            key = _key(p)
            if key in seen:
                tied += p.numel()
                continue
            seen.add(key)
            weights.append(plain_tensor_weights(p))
            trainable += p.numel() if p.requires_grad else 0
        skip = getattr(module, "_non_persistent_buffers_set", set())
        for name, b in module.named_buffers(recurse=False):
            key = _key(b)
            if name in skip or key in seen:
                continue
            seen.add(key)
            buffer_bytes[dtype_name(b.dtype)] += b.numel() * b.element_size()
    held = merge(*weights)
    by_dtype: dict[str, float] = defaultdict(float)
    for table in (held.bytes, buffer_bytes):
        for k, v in table.items():
            by_dtype[k] += v
    files = files or []
    return Weighing(
        parameters=ParameterCount(
            total=held.total_parameters,
            trainable=trainable,
            nonzero=held.nonzero,
            tied=tied,
            by_dtype=held.parameters,
        ),
        storage=Storage(
            bytes_by_dtype={k: Bytes(v) for k, v in by_dtype.items()},
            parameters=Bytes(sum(held.bytes.values())),
            buffers=Bytes(sum(buffer_bytes.values())),
            on_disk=Bytes(sum(f.stat().st_size for f in files)) if files else None,
            files=[str(f) for f in files],
            on_disk_by_dtype={k: Bytes(v) for k, v in disk_bytes_by_dtype(files).items()},
        ),
    )

