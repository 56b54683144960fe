"""Energy per inference: measured where the machine exposes a counter, else estimated.

Measured: Intel/AMD RAPL package energy (``/sys/class/powercap/intel-rapl:*``) on CPU, NVML's
total-energy counter on NVIDIA GPUs. RAPL counts the whole package, so idle draw and other
processes are included: the number is an upper bound for the model alone. Estimated: the
median latency times the device's power figure (catalog TDP, or the stated per-core
assumption for this CPU), which is what most papers report.

Every energy figure steelyard states is at the wall: the device's energy × the catalog PUE (or
``--pue``). :func:`at_the_wall` is the one place that factor is applied, for measured and
estimated figures and for every device a profile projects onto, so two figures of one model on
one device cannot disagree by the PUE. The estimator is steelyard's own (codecarbon is not used).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from steelyard.hardware import HardwareSpec, catalog_defaults
from steelyard.profiling.report import Energy
from steelyard.units import Joules, Watts

#: Named in every energy figure's output: which estimator produced it.
ESTIMATOR = "steelyard estimate"


def at_the_wall(device_joules: float) -> Joules:
    """Device energy → energy drawn from the grid: × the PUE (catalog default or ``--pue``)."""
    return Joules(float(device_joules) * catalog_defaults().pue)


def energy_card(device_joules_per_batch: float, batch_size: int, method: str, power: float, note: str) -> Energy:
    """One :class:`Energy` from the device's joules for one batch: wall energy per batch and per sample."""
    wall = at_the_wall(device_joules_per_batch)
    return Energy(
        joules_per_batch=wall,
        joules_per_sample=Joules(float(wall) / max(1, batch_size)),
        device_joules_per_batch=Joules(device_joules_per_batch),
        pue=catalog_defaults().pue,
        method=method,
        power=Watts(power),
        note=note,
        estimator=ESTIMATOR if method == "estimated" else f"steelyard, read from the {method.split('-')[-1].upper()} "
                                                            "counter",
    )

_RAPL = Path("/sys/class/powercap")


def _rapl_counters() -> list[Path]:
    if not _RAPL.is_dir():
        return []
    found = []
    for zone in sorted(_RAPL.glob("intel-rapl:*")):
        if zone.name.count(":") == 1 and (zone / "energy_uj").is_file():
            found.append(zone / "energy_uj")
    return found


def _read_rapl(counters: list[Path]) -> int | None:
    try:
        return sum(int(p.read_text()) for p in counters)
    except (OSError, ValueError):
        return None


def _nvml_energy_mj(device: torch.device) -> Callable[[], int] | None:
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(device.index or 0)
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except Exception:
        return None
    return lambda: int(pynvml.nvmlDeviceGetTotalEnergyConsumption(handle))


def measure_energy(
    fn: Callable[[], Any],
    *,
    device: torch.device | str,
    runs: int,
    median_latency: float,
    hardware: HardwareSpec,
    batch_size: int = 1,
) -> Energy:
    """Energy of one call of ``fn`` (one batch of ``batch_size`` samples): a counter where readable, else
    ``median_latency`` × the device's power; at the wall (× PUE) either way."""
    device = torch.device(device)
    if device.type == "cuda":
        read = _nvml_energy_mj(device)
        if read is not None:
            before = read()
            with torch.inference_mode():
                for _ in range(runs):
                    fn()
            torch.cuda.synchronize(device)
            joules = (read() - before) / 1e3 / runs
            return energy_card(joules, batch_size, "measured-nvml", joules / median_latency if median_latency else 0,
                               "NVML total-energy counter of the whole GPU over the timed runs")
    counters = _rapl_counters()
    if device.type == "cpu" and counters and _read_rapl(counters) is not None:
        import time

        before, t0 = _read_rapl(counters), time.perf_counter()
        with torch.inference_mode():
            for _ in range(runs):
                fn()
        after, elapsed = _read_rapl(counters), time.perf_counter() - t0
        if before is not None and after is not None and after >= before:
            joules = (after - before) / 1e6 / runs
            return energy_card(joules, batch_size, "measured-rapl", (after - before) / 1e6 / elapsed,
                               "RAPL package counter: includes idle draw and other processes (an upper bound)")
    power = float(hardware.power)
    source = hardware.sources.get("power_w") or hardware.sources.get("power") or "catalog power figure"
    return energy_card(median_latency * power, batch_size, "estimated", power,
                       f"median latency × {power:.0f} W ({source}); no energy counter readable here")
