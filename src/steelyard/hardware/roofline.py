"""The roofline model: the fastest a kernel or a model can possibly run on a device.

A workload that performs ``F`` FLOPs and moves ``B`` bytes between memory and the chip can
finish no sooner than the larger of

* ``F / peak_flops`` (the compute roof) and
* ``B / memory_bandwidth`` (the memory roof).

Its arithmetic intensity ``I = F / B`` (FLOP per byte) decides which roof binds: below the
device's ridge point ``peak_flops / memory_bandwidth`` it is memory-bound, at or above it
compute-bound. The attainable throughput is ``min(peak_flops, I * memory_bandwidth)``.

This is a lower bound on time (an upper bound on speed): real kernels reach a fraction of
either roof, and caches can make the bytes that actually reach DRAM fewer than counted.
Williams, Waterman and Patterson, "Roofline: an insightful visual performance model for
multicore architectures", CACM 52(4), 2009.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from steelyard.errors import HardwareError
from steelyard.hardware.spec import HardwareSpec
from steelyard.units import BytesPerSecond, FlopsPerSecond, Seconds


@dataclass(frozen=True)
class RooflineBound:
    """Where a workload sits on one device's roofline, and the time floor that follows."""

    hardware: str
    dtype: str
    peak_flops: FlopsPerSecond
    memory_bandwidth: BytesPerSecond
    arithmetic_intensity: float  # FLOP per byte; inf when nothing is moved
    ridge_point: float  # FLOP per byte where the two roofs meet
    compute_time: Seconds
    memory_time: Seconds
    latency_floor: Seconds
    bound: Literal["compute", "memory"]
    attainable_flops: FlopsPerSecond
    note: str = ""  # e.g. a dtype fallback taken by HardwareSpec.resolve_peak


def roofline(flops: float, bytes_moved: float, hw: HardwareSpec, dtype: str = "float32") -> RooflineBound:
    """Bound the run time of ``flops`` FLOPs moving ``bytes_moved`` bytes on ``hw`` at ``dtype``.

    Pure: no measurement, no I/O. Raises :class:`HardwareError` if the device has no usable
    peak or bandwidth figure, or if the counts are negative or not finite.
    """
    for label, value in (("flops", flops), ("bytes_moved", bytes_moved)):
        if not math.isfinite(value) or value < 0:
            raise HardwareError(f"roofline: {label} must be a finite non-negative number, got {value}")
    lookup = hw.resolve_peak(dtype)
    peak = float(lookup.flops)
    bandwidth = float(hw.memory_bandwidth)
    if peak <= 0 or bandwidth <= 0:
        raise HardwareError(
            f"roofline: {hw.name} has no positive peak ({peak}) or bandwidth ({bandwidth}); "
            "was it detected with measure=False?"
        )
    compute_time = flops / peak
    memory_time = bytes_moved / bandwidth
    intensity = flops / bytes_moved if bytes_moved > 0 else (math.inf if flops > 0 else 0.0)
    ridge = peak / bandwidth
    bound: Literal["compute", "memory"] = "compute" if compute_time >= memory_time and flops > 0 else "memory"
    attainable = peak if math.isinf(intensity) else min(peak, intensity * bandwidth)
    return RooflineBound(
        hardware=hw.name,
        dtype=lookup.requested,
        peak_flops=FlopsPerSecond(peak),
        memory_bandwidth=BytesPerSecond(bandwidth),
        arithmetic_intensity=intensity,
        ridge_point=ridge,
        compute_time=Seconds(compute_time),
        memory_time=Seconds(memory_time),
        latency_floor=Seconds(max(compute_time, memory_time)),
        bound=bound,
        attainable_flops=FlopsPerSecond(attainable),
        note=lookup.note,
    )
