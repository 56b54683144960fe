"""PyTorch's quantized CPU engine (x86 / fbgemm / onednn / qnnpack), chosen explicitly."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from steelyard.compression.base import BackendUnavailableError


def supported_engines() -> list[str]:
    return [e for e in torch.backends.quantized.supported_engines if e != "none"]


def check_engine(name: str) -> None:
    supported = supported_engines()
    if name not in supported:
        raise BackendUnavailableError(
            f"the torch quantized engine '{name}' is not available in this torch build; "
            f"available: {', '.join(supported) or 'none'} "
            "(or use backend=onnxruntime)"
        )


@contextmanager
def quantized_engine(name: str) -> Iterator[None]:
    """Pack weights under ``name``; the packed weights keep that engine's kernels afterwards."""
    check_engine(name)
    before = torch.backends.quantized.engine
    torch.backends.quantized.engine = name
    try:
        yield
    finally:
        torch.backends.quantized.engine = before
