"""What this CPU computes natively, from ``/proc/cpuinfo`` (bf16 must be native to be worth using)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

#: ISA flags that decide which precisions a runtime can run fast.
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@cache
def cpu_flags() -> frozenset[str]:
    """The flags of the first CPU in ``/proc/cpuinfo`` (empty where there is none, e.g. macOS)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def isa_flags() -> list[str]:
    """The :data:`ISA_FLAGS` this CPU has, in that order."""
    flags = cpu_flags()
    return [f for f in ISA_FLAGS if f in flags]


def native_bf16() -> bool:
    """True where the CPU has bf16 instructions (AVX512-BF16 or AMX-BF16); emulated bf16 is slower."""
    return any(f in cpu_flags() for f in BF16_FLAGS)
