"""How much memory a batch needs, said instead of an allocator's traceback.

A batch far too big for the machine fails deep inside torch (``DefaultCPUAllocator: can't allocate
memory``, ``CUDA out of memory``) while the inputs are built or the forward runs. When that
happens, :func:`batch_too_large` weighs the same model on the meta device at batch 1 and 2 (no
memory used: the growth per example is the difference), and turns the failure into one
:class:`TooLargeError` that says what the batch needs, what is free and the largest batch that fits.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from steelyard.errors import TooLargeError

#: Words of the allocator failures torch raises as a plain RuntimeError.
ALLOCATION_WORDS = ("can't allocate memory", "out of memory", "not enough memory", "DefaultCPUAllocator")


def gib(n: float) -> str:
    """Bytes in GiB for an error message (as the weights check in ``models/hf.py`` words it)."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale / 8:
            return f"{n / scale:,.1f} {unit}"
    return f"{n:,.0f} B"


def is_allocation_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is memory running out (MemoryError, torch's OutOfMemoryError or allocator message)."""
    if isinstance(exc, MemoryError):
        return True
    oom = getattr(torch, "OutOfMemoryError", None)
    if oom is not None and isinstance(exc, oom):
        return True
    return isinstance(exc, RuntimeError) and any(w in str(exc) for w in ALLOCATION_WORDS)


def free_memory(device: str | None) -> int:
    """Bytes free for a batch: the GPU's free memory on CUDA, the machine's available RAM otherwise."""
    if device and device.startswith("cuda") and torch.cuda.is_available():
        return int(torch.cuda.mem_get_info()[0])
    import psutil

    return int(psutil.virtual_memory().available)


def _meta_bytes(source: str, cfg: Any, batch: int) -> tuple[int, int]:
    """(weights, inputs + peak activations) of ``source`` at ``batch``, counted on the meta device."""
    from steelyard.models.loading import load_model
    from steelyard.profiling.counting import count_forward

    meta_cfg = dataclasses.replace(cfg, config_only=True, inputs=dataclasses.replace(cfg.inputs, batch_size=batch))
    handle = load_model(source, meta_cfg)
    weights = sum(p.numel() * p.element_size() for p in handle.module.parameters())
    inputs = sum(t.numel() * t.element_size() for t in handle.input_tensors())
    return weights, inputs + count_forward(handle.module, handle.inputs).peak_live_bytes  # type: ignore[arg-type]


def batch_too_large(source: str, cfg: Any, exc: BaseException) -> TooLargeError:
    """The one-line error for an allocation failure at ``cfg.inputs.batch_size`` (``cfg``: a LoadConfig)."""
    batch = cfg.inputs.batch_size
    free = free_memory(cfg.device)
    try:
        weights, one = _meta_bytes(source, cfg, 1)
        _, two = _meta_bytes(source, cfg, 2)
    except Exception:  # a source without a meta twin (a factory): say what is known
        return TooLargeError(f"batch {batch:,} does not fit in memory ({gib(free)} free): the allocator refused "
                             f"({str(exc).splitlines()[0][:160]}); try a smaller --batch-size")
    per_example = max(two - one, 1)
    fixed = weights + one - per_example
    needed = fixed + batch * per_example
    largest = max(0, (free - fixed) // per_example)
    fits = f"the largest batch that fits is about {largest:,}" if largest else "not even batch 1 fits"
    return TooLargeError(f"batch {batch:,} needs about {gib(needed)} (weights {gib(weights)} + "
                         f"{gib(per_example)} per example) but {gib(free)} is free; {fits}: use a smaller "
                         "--batch-size")
