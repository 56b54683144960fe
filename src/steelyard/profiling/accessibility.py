"""Can this model run (and be fine-tuned) on a device, how fast, and what to try if not.

Memory: inference needs the weights at the run dtype, the peak activations of the batch and,
for causal LMs, the KV cache of the batch; fine-tuning needs the training-memory estimate.
A device offers its memory × the catalog's usable fraction. When one device is not enough,
the count of devices is an estimate: weights split evenly (tensor / pipeline parallel) for
inference; weights, gradients and optimizer states sharded (ZeRO-3) for fine-tuning, with
each device still holding its own batch's activations.
Latency: the roofline floor divided by an assumed efficiency (stated in the verdict); on the
machine that was measured, the measured median itself. Energy is at the wall (device energy × PUE,
applied once, in :func:`steelyard.profiling.energy.at_the_wall`); on the measured machine it is the
profile's own energy figure. Every figure names its unit of work: per batch, per sample, per 1,000
samples.
"""

from __future__ import annotations

import math

from steelyard.hardware import HardwareSpec, catalog_defaults, roofline
from steelyard.profiling.energy import at_the_wall
from steelyard.profiling.report import Compute, Energy, HardwareVerdict, Memory
from steelyard.units import Bytes, Joules, Seconds, Usd

#: Fraction of the roofline floor a real framework reaches on a catalog device (assumption).
DEFAULT_EFFICIENCY = 0.5
BYTES_PER_WEIGHT = {"float32": 4.0, "float16": 2.0, "bfloat16": 2.0, "int8": 1.0, "int4": 0.5}


def _devices_for_inference(need: float, usable: float) -> int:
    return max(1, math.ceil(need / usable))


def _devices_for_finetune(sharded: float, per_device: float, usable: float) -> int | None:
    """ZeRO-3: ``sharded`` bytes split across n devices, ``per_device`` bytes on each."""
    room = usable - per_device
    if room <= 0:
        return None
    return max(1, math.ceil(sharded / room))


def shardable(hw: HardwareSpec) -> bool:
    """Whether several of this device can share a model: accelerators (GPUs) only. Copies of a CPU box,
    a phone or an edge board are not a sharding target anyone deploys."""
    return hw.kind == "gpu"


def verdict(
    hw: HardwareSpec,
    *,
    params: int,
    dtype: str,
    compute: Compute,
    memory: Memory,
    batch_size: int,
    efficiency: float | None = None,
    measured_latency: Seconds | None = None,
    measured_energy: Energy | None = None,
) -> HardwareVerdict:
    """Fit, speed, energy and cost of one batch on ``hw``.

    ``measured_latency`` / ``measured_energy`` (the machine the profile timed) replace the projection,
    so the card states one latency and one energy per batch for that machine, not two."""
    defaults = catalog_defaults()
    usable = float(hw.memory) * defaults.usable_memory_fraction
    inference_need = float(memory.inference_total)
    training = memory.training
    finetune_need = float(training.total) if training else float("nan")
    bound = roofline(float(compute.total_flops), float(compute.bytes_moved), hw, dtype)
    eff = efficiency if efficiency is not None else DEFAULT_EFFICIENCY
    projected = measured_latency if measured_latency is not None else Seconds(float(bound.latency_floor) / eff)
    energy = measured_energy.joules_per_batch if measured_energy is not None else at_the_wall(
        float(projected) * float(hw.power))
    cost = None
    if hw.price_per_hour is not None:
        cost = Usd(float(hw.price_per_hour) * float(projected) / 3600 / batch_size * 1000)
    fits_inference = inference_need <= usable
    fits_finetune = bool(training) and finetune_need <= usable
    per_device_activations = float(training.activations) if training else 0.0
    sharded = finetune_need - per_device_activations if training else 0.0
    finetune_devices = _devices_for_finetune(sharded, per_device_activations, usable) if training else None
    suggestions = _suggestions(
        hw, usable, params, dtype, memory, batch_size, fits_inference, fits_finetune, finetune_devices
    )
    return HardwareVerdict(
        hardware=hw.name,
        display_name=hw.display_name,
        dtype=dtype,
        device_memory=hw.memory,
        usable_memory=Bytes(usable),
        inference_memory=Bytes(inference_need),
        finetune_memory=Bytes(finetune_need if training else 0),
        fits_inference=fits_inference,
        fits_finetune=fits_finetune,
        devices_for_inference=_devices_for_inference(inference_need, usable),
        devices_for_finetune=finetune_devices,
        bound=bound.bound,
        arithmetic_intensity=bound.arithmetic_intensity,
        latency_floor_per_batch=bound.latency_floor,
        projected_latency_per_batch=projected,
        efficiency_assumed=eff,
        efficiency_source="assumed" if efficiency is None else "measured",
        energy_per_batch=Joules(energy),
        energy_per_sample=Joules(float(energy) / max(1, batch_size)),
        cost_per_1k_samples=cost,
        suggestions=suggestions,
        finetune_unknown=None if training else (memory.training_unknown or "training memory not traced"),
        pue=defaults.pue,
    )


def _suggestions(
    hw: HardwareSpec,
    usable: float,
    params: int,
    dtype: str,
    memory: Memory,
    batch_size: int,
    fits_inference: bool,
    fits_finetune: bool,
    finetune_devices: int | None,
) -> list[str]:
    out: list[str] = []
    gib = 2**30
    if not fits_inference:
        other = float(memory.inference_total) - float(memory.weights)
        for lower in ("float16", "int8", "int4"):
            if BYTES_PER_WEIGHT[lower] >= BYTES_PER_WEIGHT.get(dtype, 4.0):
                continue
            need = params * BYTES_PER_WEIGHT[lower] + other
            if need <= usable:
                out.append(f"inference fits with {lower} weights ({need / gib:.1f} GiB of {usable / gib:.1f} GiB)")
                break
        else:
            if batch_size > 1:
                one = float(memory.weights) + other / batch_size
                if one <= usable:
                    out.append(f"inference fits at batch size 1 ({one / gib:.1f} GiB)")
        n = _devices_for_inference(float(memory.inference_total), usable)
        if shardable(hw):
            out.append(f"or shard the weights over {n}× {hw.name} (tensor / pipeline parallel, estimate)")
        else:
            out.append(f"or run it on accelerators: it needs {n}× this {hw.kind}'s memory (see --hardware with GPUs)")
    if memory.training is not None and not fits_finetune:
        if not shardable(hw):
            out.append(
                f"fine-tuning needs {float(memory.training.total) / gib:.1f} GiB, more than {hw.name} offers "
                f"({usable / gib:.1f} GiB): fine-tune on accelerators (see --hardware with GPUs), or train "
                "adapters (LoRA) on a frozen model"
            )
        elif finetune_devices is None:
            out.append(
                "fine-tuning: this batch's activations alone exceed the device; lower the batch size "
                "or use gradient checkpointing"
            )
        else:
            out.append(
                f"fine-tuning: shard weights, gradients and optimizer states (ZeRO-3) over "
                f"{finetune_devices}× {hw.name} (estimate), or train adapters (LoRA) on a frozen model"
            )
    return out
