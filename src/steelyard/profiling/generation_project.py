"""Project a counted generation onto devices: TTFT, TPOT, throughput, fit, cost and energy per batch.

Each phase is timed on the roofline with stated efficiencies: a forward of ``F`` FLOPs moving ``B``
bytes takes ``max(F / (peak × compute_efficiency), B / (bandwidth × memory_efficiency))`` on one
device. The prefill (``P`` tokens per sequence at once) is compute-bound; a decode step (one token
per sequence) streams every weight and the KV cache, so it is memory-bound until the batch is
large enough that ``B × FLOPs per token`` catches up (:func:`compute_bound_batch`).

When the weights (plus one sequence's KV cache) do not fit one device, the model is split over the
smallest power-of-two tensor-parallel degree that holds it; FLOP/s and bandwidth then add up across
devices (an ideal split: communication is not modelled, and the report says so).

Costs: prompt tokens are priced by the prefill's device time, output tokens by the decode's; energy
per output token is the whole request's device energy (PUE included) over its output tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from steelyard.hardware import HardwareSpec, catalog_defaults
from steelyard.profiling.generation_count import at_batch
from steelyard.profiling.generation_report import BatchProjection, GenerationCount, HardwareGeneration, PhaseCost
from steelyard.units import Bytes, Joules, Seconds, Usd

#: The largest tensor-parallel degree tried before saying the model does not fit.
MAX_TENSOR_PARALLEL = 64


@dataclass(frozen=True)
class Rates:
    """What ``devices`` devices sustain at the stated efficiencies (FLOP/s, B/s)."""

    flops: float
    bandwidth: float
    devices: int

    def time(self, cost: PhaseCost) -> tuple[float, str]:
        compute = float(cost.total_flops) / self.flops
        memory = float(cost.bytes_moved) / self.bandwidth
        return (compute, "compute") if compute >= memory else (memory, "memory")


def rates(hw: HardwareSpec, dtype: str, devices: int, compute_efficiency: float,
          memory_efficiency: float) -> tuple[Rates, str]:
    lookup = hw.resolve_peak(dtype)
    return Rates(float(lookup.flops) * compute_efficiency * devices,
                 float(hw.memory_bandwidth) * memory_efficiency * devices, devices), lookup.note


def resident_bytes(count: GenerationCount, total_weights: float, batch: int) -> float:
    """Weights plus the KV cache of ``batch`` sequences at the last position (activations not included)."""
    return total_weights + batch * float(count.kv_bytes_per_sequence)


def tensor_parallel(count: GenerationCount, total_weights: float, usable: float) -> int | None:
    """Smallest power-of-two device count that holds the weights and one sequence's cache (None: > 64)."""
    need = resident_bytes(count, total_weights, 1)
    devices = 1
    while devices <= MAX_TENSOR_PARALLEL:
        if need / devices <= usable:
            return devices
        devices *= 2
    return None


def max_batch(count: GenerationCount, total_weights: float, usable: float, devices: int) -> int:
    per_sequence = float(count.kv_bytes_per_sequence)
    room = usable * devices - total_weights
    if room <= 0:
        return 0
    return int(room // per_sequence) if per_sequence > 0 else 1_000_000


def compute_bound_batch(count: GenerationCount, rate: Rates) -> int | None:
    """Smallest batch whose mean decode step is compute-bound: ``B·F/flops ≥ (W + B·KV)/bandwidth``."""
    if count.new_tokens < 2:
        return None
    contexts = count.contexts()
    mean = count.decode_at(contexts[len(contexts) // 2])
    per_seq_compute = float(mean.total_flops) / rate.flops
    per_seq_memory = float(mean.kv_read + mean.kv_written) / rate.bandwidth
    if per_seq_compute <= per_seq_memory:
        return None
    batch = max(1, math.ceil(float(mean.weight_bytes) / rate.bandwidth / (per_seq_compute - per_seq_memory)))
    while batch > 1 and rate.time(at_batch(mean, batch - 1, count))[1] == "compute":  # MoE weights grow with B
        batch -= 1
    while rate.time(at_batch(mean, batch, count))[1] != "compute":
        batch += 1
    return batch


def project_batch(count: GenerationCount, batch: int, rate: Rates, hw: HardwareSpec, total_weights: float,
                  usable: float) -> BatchProjection:
    """TTFT, TPOT (each decode step summed exactly over the interpolated costs), throughput, cost, energy."""
    defaults = catalog_defaults()
    ttft, prefill_bound = rate.time(at_batch(count.prefill, batch, count))
    steps = [rate.time(at_batch(count.decode_at(c), batch, count)) for c in count.contexts()]
    decode_time = sum(t for t, _ in steps)
    e2e = ttft + decode_time
    new = count.new_tokens
    tpot = decode_time / len(steps) if steps else 0.0
    price = None if hw.price_per_hour is None else float(hw.price_per_hour) * rate.devices
    out_tokens = batch * max(new - 1, 1)
    resident = resident_bytes(count, total_weights, batch)
    return BatchProjection(
        batch=batch,
        ttft=Seconds(ttft),
        tpot=Seconds(tpot),
        tpot_first=Seconds(steps[0][0] if steps else 0.0),
        tpot_last=Seconds(steps[-1][0] if steps else 0.0),
        e2e=Seconds(e2e),
        tokens_per_second_per_sequence=new / e2e if e2e else 0.0,
        tokens_per_second=batch * new / e2e if e2e else 0.0,
        prefill_bound=prefill_bound,
        decode_bound=steps[len(steps) // 2][1] if steps else "",
        memory=Bytes(resident),
        fits=resident <= usable * rate.devices,
        cost_per_1m_output=None if price is None else Usd(price / 3600 * (decode_time or ttft) / out_tokens * 1e6),
        cost_per_1m_prompt=None if price is None else Usd(price / 3600 * ttft / (batch * count.prompt_len) * 1e6),
        energy_per_token=Joules(float(hw.power) * rate.devices * defaults.pue * e2e / (batch * max(new, 1))),
    )


def project(count: GenerationCount, hw: HardwareSpec, dtype: str, batches: tuple[int, ...], total_weights: float,
            compute_efficiency: float, memory_efficiency: float) -> HardwareGeneration:
    """Project ``count`` on ``hw`` for each of ``batches`` (and at the largest batch that fits)."""
    usable = float(hw.memory) * catalog_defaults().usable_memory_fraction
    notes: list[str] = []
    devices = tensor_parallel(count, total_weights, usable)
    if devices is None:
        devices = MAX_TENSOR_PARALLEL
        notes.append(f"does not fit even on {MAX_TENSOR_PARALLEL} devices")
    elif devices > 1:
        notes.append(f"weights do not fit one {hw.name}: tensor-parallel over {devices} (ideal split, "
                     "communication not modelled)")
    rate, note = rates(hw, dtype, devices, compute_efficiency, memory_efficiency)
    if note:
        notes.append(note)
    largest = max_batch(count, total_weights, usable, devices)
    return HardwareGeneration(
        hardware=hw.name,
        dtype=dtype,
        devices=devices,
        usable_memory=Bytes(usable),
        compute_efficiency=compute_efficiency,
        memory_efficiency=memory_efficiency,
        ridge_point=rate.flops / rate.bandwidth,
        batches=[project_batch(count, b, rate, hw, total_weights, usable) for b in batches],
        max_batch=largest,
        max_batch_projection=project_batch(count, largest, rate, hw, total_weights, usable) if largest else None,
        decode_compute_bound_batch=compute_bound_batch(count, rate),
        price_per_hour=hw.price_per_hour,
        notes=notes,
    )
