"""Describe and measure the machine steelyard runs on, as a :class:`HardwareSpec`.

Catalog peaks are datasheet numbers; what this machine delivers to PyTorch can be far lower
(a cloud VM's share of a socket, thermal limits, no AVX-512). So ``detect_local`` measures a
dense matmul and a large copy instead of guessing, records how, and marks the spec
``measured=True``. The measurement is cached per process, thread count and device, and takes
well under two seconds on two cores.
"""

from __future__ import annotations

import functools
import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from steelyard.hardware.spec import HardwareSpec
from steelyard.units import Bytes, BytesPerSecond, FlopsPerSecond, Watts

#: Assumed CPU power per physical core in use when RAPL tells nothing (a server core under an
#: AVX load draws roughly 5-15 W including its share of uncore and memory).
ASSUMED_WATTS_PER_CORE = 10.0
#: Assumed GPU board power when NVML is not available.
ASSUMED_GPU_WATTS = 300.0

_RAPL = Path("/sys/class/powercap/intel-rapl:0")
_MiB = 1024**2


def cpu_model_name() -> str:
    """The CPU's marketing name, e.g. ``"AMD EPYC 7B13"``; recorded with every measurement."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip().lower(), value.strip())
    except OSError:
        pass
    # x86 says "model name"; some ARM/MIPS kernels say "cpu model", "Hardware" or (Raspberry Pi) "Model".
    # x86's bare "model" is a number, so it only counts when it is not.
    for key in ("model name", "cpu model", "hardware", "model"):
        value = fields.get(key, "")
        if value and not value.isdigit():
            return value
    if platform.system() == "Darwin":
        import subprocess

        try:
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=2
            )
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown CPU"


def detect_local(measure: bool = True) -> HardwareSpec:
    """This machine as a :class:`HardwareSpec`: the first CUDA GPU if there is one, else the CPU.

    With ``measure`` (the default) peak FLOP/s and memory bandwidth are measured and
    ``measured`` is True; without it those figures are empty/zero and only the inventory
    (name, memory, power) is filled in, which is instant. Cached for the process, keyed on the
    torch thread count so changing threads re-measures.
    """
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    index = torch.cuda.current_device() if device == "cuda" else -1
    return _detect(measure, device, index, torch.get_num_threads())


@functools.lru_cache(maxsize=8)
def _detect(measure: bool, device: str, index: int, threads: int) -> HardwareSpec:
    if device == "cuda":
        return _detect_cuda(measure, index)
    return _detect_cpu(measure, threads)


# ---------------------------------------------------------------------------------------- CPU


def _physical_cores() -> int:
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def _best_seconds(run: Callable[[], float], repeats: int, budget_s: float) -> tuple[float, int]:
    """Best of up to ``repeats`` timings (at least two), stopping early once ``budget_s`` is spent."""
    best = math.inf
    start = time.perf_counter()
    done = 0
    for done in range(1, repeats + 1):
        best = min(best, run())
        if done >= 2 and time.perf_counter() - start > budget_s:
            break
    return best, done


def _cpu_matmul_flops(n: int = 1024, repeats: int = 6, budget_s: float = 0.6) -> tuple[float, str]:
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    torch.mm(a, b, out=out)  # warm-up: thread pool start, caches, page faults

    def once() -> float:
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        return time.perf_counter() - t0

    best, runs = _best_seconds(once, repeats, budget_s)
    how = (
        f"Measured on this machine: best of {runs} timed {n}x{n} float32 matmuls (2·n³ FLOPs each) "
        f"with torch's {torch.get_num_threads()} thread(s), torch {torch.__version__}."
    )
    return 2.0 * n**3 / best, how


def _cpu_copy_bandwidth(repeats: int = 5, budget_s: float = 0.5) -> tuple[float, str]:
    import psutil
    import torch

    # Large enough to defeat the last-level cache, small enough for a Pi or a busy laptop.
    nbytes = int(min(256 * _MiB, max(16 * _MiB, psutil.virtual_memory().available // 16)))
    src = torch.ones(nbytes // 4, dtype=torch.float32)
    dst = torch.empty_like(src)
    dst.copy_(src)  # warm-up: fault in the destination pages

    def once() -> float:
        t0 = time.perf_counter()
        dst.copy_(src)
        return time.perf_counter() - t0

    best, runs = _best_seconds(once, repeats, budget_s)
    how = (
        f"Measured on this machine: best of {runs} copies of a {nbytes // _MiB} MiB tensor, "
        "(bytes read + bytes written) / time; write-allocate traffic is not counted, so DRAM "
        "traffic is somewhat higher than this figure."
    )
    return 2.0 * nbytes / best, how


def _rapl_limit_watts() -> float | None:
    """The package's long-term power limit from RAPL, if the kernel exposes it readably."""
    for name in ("constraint_0_power_limit_uw", "constraint_0_max_power_uw"):
        try:
            microwatts = int((_RAPL / name).read_text().strip())
        except (OSError, ValueError):
            continue
        if microwatts > 0:
            return microwatts / 1e6
    return None


def _cpu_power(cores_used: int, physical: int) -> tuple[float, str]:
    limit = _rapl_limit_watts()
    if limit is not None:
        share = min(1.0, cores_used / physical)
        return limit * share, (
            f"RAPL package power limit {limit:.0f} W ({_RAPL}) prorated to the {cores_used} of "
            f"{physical} physical cores in use; an upper-bound-style assumption, not a measurement."
        )
    return ASSUMED_WATTS_PER_CORE * cores_used, (
        f"Assumption: {ASSUMED_WATTS_PER_CORE:.0f} W per physical core in use x {cores_used} core(s); "
        "RAPL was not readable here, so no measured figure exists."
    )


def _detect_cpu(measure: bool, threads: int) -> HardwareSpec:
    import psutil

    physical = _physical_cores()
    cores_used = max(1, min(threads, physical))
    model = cpu_model_name()
    memory = psutil.virtual_memory().total
    power, power_src = _cpu_power(cores_used, physical)
    sources = {
        "memory_gb": "psutil.virtual_memory().total on this machine (total RAM).",
        "power_w": power_src,
    }
    peaks: dict[str, FlopsPerSecond] = {}
    bandwidth = 0.0
    if measure:
        flops, sources["peak_tflops.float32"] = _cpu_matmul_flops()
        bandwidth, sources["memory_bandwidth_gbps"] = _cpu_copy_bandwidth()
        peaks["float32"] = FlopsPerSecond(flops)
    else:
        sources["memory_bandwidth_gbps"] = "Not measured (detect_local(measure=False))."
    return HardwareSpec(
        name="local",
        display_name=f"{model} ({threads} thread(s))",
        kind="cpu",
        memory=Bytes(memory),
        memory_bandwidth=BytesPerSecond(bandwidth),
        peak_flops=peaks,
        power=Watts(power),
        price_per_hour=None,
        sources=sources,
        measured=measure,
        notes=(
            f"This machine: {model}, {physical} physical core(s), {os.cpu_count()} logical CPU(s), "
            f"{threads} torch thread(s), {platform.system()} {platform.machine()}."
        ),
    )


# --------------------------------------------------------------------------------------- CUDA


def _cuda_time(torch: Any, fn: Callable[[], Any], inner: int, repeats: int) -> float:
    """Best seconds per call of ``fn``, timed with CUDA events around ``inner`` back-to-back calls."""
    fn()
    torch.cuda.synchronize()
    best = math.inf
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(inner):
            fn()
        end.record()
        end.synchronize()
        best = min(best, start.elapsed_time(end) / 1e3 / inner)
    return best


def _cuda_peaks(torch: Any, device: Any) -> tuple[dict[str, FlopsPerSecond], dict[str, str]]:
    n = 4096
    dtypes = {"float32": torch.float32, "float16": torch.float16}
    if torch.cuda.is_bf16_supported():
        dtypes["bfloat16"] = torch.bfloat16
    peaks: dict[str, FlopsPerSecond] = {}
    sources: dict[str, str] = {}
    allow_tf32 = getattr(torch.backends.cuda.matmul, "allow_tf32", False)
    tf32 = "TF32 allowed" if allow_tf32 else "TF32 off (true FP32)"
    for label, dtype in dtypes.items():
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        seconds = _cuda_time(torch, lambda a=a, b=b: torch.mm(a, b), inner=5, repeats=5)
        peaks[label] = FlopsPerSecond(2.0 * n**3 / seconds)
        extra = f", {tf32}" if label == "float32" else ""
        sources[f"peak_tflops.{label}"] = (
            f"Measured on this GPU: best of 5 CUDA-event timings of 5 {n}x{n} {label} matmuls "
            f"(2·n³ FLOPs each{extra}), torch {torch.__version__}."
        )
        del a, b
    try:  # int8 tensor cores through torch's private int8 GEMM; absent on some builds and GPUs
        a8 = torch.randint(-64, 64, (n, n), device=device, dtype=torch.int8)
        b8 = torch.randint(-64, 64, (n, n), device=device, dtype=torch.int8)
        seconds = _cuda_time(torch, lambda: torch._int_mm(a8, b8), inner=5, repeats=5)
        peaks["int8"] = FlopsPerSecond(2.0 * n**3 / seconds)
        sources["peak_tflops.int8"] = (
            f"Measured on this GPU: best of 5 CUDA-event timings of 5 {n}x{n} int8 matmuls (torch._int_mm)."
        )
    except (RuntimeError, AttributeError, NotImplementedError):
        pass
    return peaks, sources


def _cuda_bandwidth(torch: Any, device: Any) -> tuple[float, str]:
    free, _total = torch.cuda.mem_get_info(device)
    nbytes = int(min(1024 * _MiB, max(64 * _MiB, free // 8)))
    src = torch.ones(nbytes // 4, device=device, dtype=torch.float32)
    dst = torch.empty_like(src)
    seconds = _cuda_time(torch, lambda: dst.copy_(src), inner=5, repeats=5)
    how = (
        f"Measured on this GPU: best of 5 CUDA-event timings of 5 copies of a {nbytes // _MiB} MiB "
        "tensor, (bytes read + bytes written) / time."
    )
    return 2.0 * nbytes / seconds, how


def _nvml_power_watts(torch: Any, index: int) -> float | None:
    """The enforced board power limit from NVML (nvidia-ml-py), if installed and working."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        try:
            handle = None
            uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
            if uuid is not None:
                text = str(uuid)
                try:
                    handle = pynvml.nvmlDeviceGetHandleByUUID(text if text.startswith("GPU-") else f"GPU-{text}")
                except pynvml.NVMLError:
                    handle = None
            if handle is None:
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            return pynvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1e3
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # NVML raises its own error types and may be half-installed; power is optional
        return None


def _detect_cuda(measure: bool, index: int) -> HardwareSpec:
    import psutil
    import torch

    device = torch.device("cuda", index)
    props = torch.cuda.get_device_properties(index)
    watts = _nvml_power_watts(torch, index)
    if watts is not None:
        power_src = "NVML enforced power limit of this GPU (nvmlDeviceGetEnforcedPowerLimit)."
    else:
        watts = ASSUMED_GPU_WATTS
        power_src = (
            f"Assumption: {ASSUMED_GPU_WATTS:.0f} W board power; NVML (pip install nvidia-ml-py) "
            "was not available to read the real limit."
        )
    sources = {
        "memory_gb": "torch.cuda.get_device_properties(...).total_memory of this GPU.",
        "power_w": power_src,
    }
    peaks: dict[str, FlopsPerSecond] = {}
    bandwidth = 0.0
    if measure:
        with torch.inference_mode():
            peaks, peak_sources = _cuda_peaks(torch, device)
            bandwidth, sources["memory_bandwidth_gbps"] = _cuda_bandwidth(torch, device)
        sources.update(peak_sources)
        torch.cuda.empty_cache()
    else:
        sources["memory_bandwidth_gbps"] = "Not measured (detect_local(measure=False))."
    host_gib = psutil.virtual_memory().total / 1024**3
    return HardwareSpec(
        name="local",
        display_name=f"{props.name} (cuda:{index})",
        kind="gpu",
        memory=Bytes(props.total_memory),
        memory_bandwidth=BytesPerSecond(bandwidth),
        peak_flops=peaks,
        power=Watts(watts),
        price_per_hour=None,
        sources=sources,
        measured=measure,
        notes=(
            f"This machine: {props.name}, compute capability {props.major}.{props.minor}, "
            f"{props.multi_processor_count} SMs; host {cpu_model_name()}, {host_gib:.1f} GiB RAM."
        ),
    )
