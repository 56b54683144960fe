"""Parameter counts and storage, with tied weights counted once."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import torch

from steelyard.profiling.report import ParameterCount, Storage
from steelyard.units import Bytes


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def count_parameters(module: torch.nn.Module) -> ParameterCount:
    """Count unique parameters; a weight shared by two layers (tied embeddings) counts once."""
    unique = list(module.parameters())  # deduplicated by identity
    named_all = list(module.named_parameters(remove_duplicate=False))
    total = sum(p.numel() for p in unique)
    by_dtype: dict[str, int] = defaultdict(int)
    for p in unique:
        by_dtype[_dtype_name(p.dtype)] += p.numel()
    seen: set[int] = set()
    tied = 0
    for _, p in named_all:
        if id(p) in seen:
            tied += p.numel()
        seen.add(id(p))
    on_meta = any(p.is_meta for p in unique)
    nonzero = None if on_meta else int(sum(int(torch.count_nonzero(p.detach())) for p in unique))
    return ParameterCount(
        total=total,
        trainable=sum(p.numel() for p in unique if p.requires_grad),
        nonzero=nonzero,
        tied=tied,
        by_dtype=dict(by_dtype),
    )


def storage(module: torch.nn.Module, files: list[Path] | None = None) -> Storage:
    """In-memory bytes per dtype (parameters + persistent buffers) and on-disk file sizes."""
    by_dtype: dict[str, float] = defaultdict(float)
    param_bytes = 0
    for p in module.parameters():
        size = p.numel() * p.element_size()
        param_bytes += size
        by_dtype[_dtype_name(p.dtype)] += size
    buffer_bytes = 0
    non_persistent = _non_persistent_buffers(module)
    for name, b in module.named_buffers():
        if name in non_persistent:
            continue
        size = b.numel() * b.element_size()
        buffer_bytes += size
        by_dtype[_dtype_name(b.dtype)] += size
    files = files or []
    on_disk = Bytes(sum(f.stat().st_size for f in files)) if files else None
    return Storage(
        bytes_by_dtype={k: Bytes(v) for k, v in by_dtype.items()},
        parameters=Bytes(param_bytes),
        buffers=Bytes(buffer_bytes),
        on_disk=on_disk,
        files=[str(f) for f in files],
    )


def _non_persistent_buffers(module: torch.nn.Module) -> set[str]:
    names: set[str] = set()
    for prefix, sub in module.named_modules():
        for b in getattr(sub, "_non_persistent_buffers_set", ()):
            names.add(f"{prefix}.{b}" if prefix else b)
    return names
