"""What training or fine-tuning costs: FLOPs → device-hours → $, kWh, kg CO2e.

FLOPs come from counting one forward + backward per sample at the dispatch level (exact for
this architecture and sequence length), with 6·N·D (Kaplan et al. 2020: 2 FLOPs per
parameter per token forward, 4 backward) shown beside it for dense transformers. Device time
is FLOPs over (peak × utilisation); energy is time × board power × PUE; CO2 is energy × grid
intensity. Every one of these numbers is printed next to the answer.
"""

from __future__ import annotations

import time

import torch

from steelyard.hardware import HardwareSpec, catalog_defaults
from steelyard.models.handle import ModelHandle
from steelyard.profiling.counting import count_forward, scalar_loss
from steelyard.profiling.report import DataNeeds, TrainingCostRow, TrainingEstimate
from steelyard.profiling.weigh import weigh
from steelyard.units import Flops, KgCO2, KilowattHours, Seconds, Usd

CHINCHILLA_TOKENS_PER_PARAMETER = 20.0


def counted_training_flops(handle: ModelHandle) -> Flops:
    """Matrix-class FLOPs of one forward + backward on the handle's example batch."""
    return Flops(count_forward(handle.module, handle.inputs, training=True).flops)


def measure_step_time(handle: ModelHandle, steps: int = 3) -> Seconds:
    """Median seconds of one real training step (forward, backward, AdamW) on this machine."""
    module = handle.module
    optimizer = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-5)
    module.train()
    times = []
    try:
        for _ in range(steps + 1):
            t0 = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            scalar_loss(handle.forward()).backward()
            optimizer.step()
            times.append(time.perf_counter() - t0)
    finally:
        module.eval()
        optimizer.zero_grad(set_to_none=True)
    times = sorted(times[1:])
    return Seconds(times[len(times) // 2])


def tokens_per_sample(handle: ModelHandle) -> int:
    """Tokens in one example row: sequence length for text, 1 (one image) for vision."""
    inputs = handle.inputs
    if isinstance(inputs, dict) and "input_ids" in inputs:
        return int(inputs["input_ids"].shape[1])
    return 1


def cost_rows(
    total_flops: float, hardware: list[HardwareSpec], dtype: str, utilization: float
) -> list[TrainingCostRow]:
    defaults = catalog_defaults()
    rows = []
    for hw in hardware:
        peak = hw.peak_for(dtype)
        seconds = total_flops / (float(peak) * utilization)
        hours = seconds / 3600
        kwh = hours * float(hw.power) * defaults.pue / 1000
        price = None if hw.price_per_hour is None else Usd(hours * float(hw.price_per_hour))
        rows.append(
            TrainingCostRow(
                hardware=hw.name,
                peak_flops_per_second=peak,
                utilization=utilization,
                device_hours=hours,
                cost=price,
                energy=KilowattHours(kwh),
                co2=KgCO2(kwh * defaults.grid_kg_co2_per_kwh),
            )
        )
    return rows


def _short_source(text: str | None) -> str:
    """The grid figure's provenance in a few words: the catalog's world average, or the user's own figure."""
    if text and not text.startswith("Ember"):
        return text.split(":")[0]
    return "world-average grid"


def estimate_training(
    handle: ModelHandle,
    tokens: float,
    hardware: list[HardwareSpec],
    *,
    utilization: float = 0.4,
    dtype: str = "bfloat16",
    method: str = "counted",
    measure_step: bool = False,
) -> TrainingEstimate:
    """Cost of training ``handle`` on ``tokens`` tokens (or samples, for vision) per device type."""
    from steelyard.errors import ConfigError

    if not 0 < utilization <= 1:
        raise ConfigError(f"utilization must be in (0, 1], got {utilization}")
    if tokens <= 0:
        raise ConfigError(f"tokens must be positive, got {tokens}")
    if method not in ("counted", "6ND"):
        raise ConfigError(f"unknown method '{method}'; choose counted or 6ND")
    params = weigh(handle.module).parameters.total
    per_row = tokens_per_sample(handle)
    samples = tokens / per_row
    six_nd = Flops(6.0 * params * tokens)
    if method == "counted":
        flops_per_sample = Flops(counted_training_flops(handle) / handle.batch_size)
        total = Flops(flops_per_sample * samples)
    else:
        flops_per_sample = Flops(6.0 * params * per_row)
        total = six_nd
    defaults = catalog_defaults()
    assumptions = [
        f"FLOPs: {'counted forward+backward on the example batch' if method == 'counted' else '6·N·D'} "
        f"({per_row} tokens per sample); 6·N·D with N = {params:,} parameters shown for reference",
        "6·N·D counts every parameter, embeddings included, though a lookup costs no FLOPs: it overstates "
        "models whose embeddings are a large share of N (counted FLOPs do not)",
        "matrix-class FLOPs only (elementwise work is memory-bound and folded into utilisation)",
        f"model FLOPs utilisation {utilization:.0%} of each device's dense {dtype} peak",
        f"energy (steelyard estimate) = device-hours × board power × PUE {defaults.pue:g}; CO2 = kWh × "
        f"{defaults.grid_kg_co2_per_kwh:g} kg/kWh ({_short_source(defaults.sources.get('grid_kg_co2_per_kwh'))})",
        "prices: " + "; ".join([*(f"{hw.name} {hw.sources.get('price_per_hour_usd')}" for hw in hardware
                                  if str(hw.sources.get("price_per_hour_usd", "")).startswith("user override")),
                                "otherwise on-demand list prices per device-hour from the catalog"]),
    ]
    step = None
    if measure_step and not handle.on_meta:
        step = measure_step_time(handle)
        assumptions.append(
            f"measured on this machine: {float(step):.3f} s per step of {handle.batch_size} samples → "
            f"{float(step) / handle.batch_size * samples / 3600:.1f} hours here"
        )
    return TrainingEstimate(
        tokens=tokens,
        samples=samples,
        flops_per_sample=flops_per_sample,
        total_flops=total,
        method=method,
        six_nd_flops=six_nd,
        rows=cost_rows(total, hardware, dtype, utilization),
        assumptions=assumptions,
        measured_step_time=step,
    )


def data_needs(params: int, hardware: list[HardwareSpec], utilization: float = 0.4) -> DataNeeds:
    """Chinchilla rule of thumb (Hoffmann et al. 2022): ~20 training tokens per parameter."""
    tokens = CHINCHILLA_TOKENS_PER_PARAMETER * params
    flops = 6.0 * params * tokens
    training = TrainingEstimate(
        tokens=tokens,
        samples=tokens,
        flops_per_sample=Flops(6.0 * params),
        total_flops=Flops(flops),
        method="6ND",
        six_nd_flops=Flops(flops),
        rows=cost_rows(flops, hardware, "bfloat16", utilization),
        assumptions=[
            f"pretraining from scratch on {tokens:,.0f} tokens (Chinchilla: ~20 per parameter)",
            f"6·N·D FLOPs at {utilization:.0%} utilisation of the bf16 peak",
        ],
    )
    return DataNeeds(
        parameters=params,
        tokens_per_parameter=CHINCHILLA_TOKENS_PER_PARAMETER,
        compute_optimal_tokens=tokens,
        training=training,
    )
