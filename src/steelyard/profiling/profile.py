"""``profile``: weigh one model and return its cost card (a :class:`CostReport`).

Counting runs one forward under :class:`CostCounter` on whatever device the handle lives on
(meta included). Measurement (latency, throughput, peak memory, energy) needs real weights
and is skipped, and said to be skipped, for config-only handles.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

import torch

from steelyard.config_values import normalise_tuples
from steelyard.environment import current_environment
from steelyard.errors import ConfigError, DtypeUnsupportedError, InputShapeError
from steelyard.families.geometry import active_parameters, geometry, kv_cache, recurrent_state_bytes
from steelyard.hardware import HardwareSpec, detect_local, parse_hardware_list, roofline
from steelyard.models.handle import ModelHandle
from steelyard.models.loading import config_dtype
from steelyard.profiling.accessibility import verdict
from steelyard.profiling.counter import ROOT, CountResult
from steelyard.profiling.counting import CountsItself, count_forward
from steelyard.profiling.energy import measure_energy
from steelyard.profiling.generation import profile_generation
from steelyard.profiling.generation_config import GenerationWorkload
from steelyard.profiling.latency import PeakMemory, fixed_threads, measure_latency
from steelyard.profiling.memory import training_memory
from steelyard.profiling.report import (
    Compute,
    CostReport,
    InputDescription,
    Measured,
    Memory,
    ModuleRow,
    ParameterCount,
    ThroughputPoint,
)
from steelyard.profiling.training_cost import data_needs
from steelyard.profiling.weigh import Weighing, dtype_name, weigh
from steelyard.units import Bytes, Flops, FlopsPerSecond, Macs

#: Where ``compress`` records the methods a module went through (``steelyard.compression.api``).
COMPRESSION_HISTORY_ATTR = "_steelyard_history"


def compression_assumptions(module: torch.nn.Module) -> list[str]:
    """What each compression method the module went through did to its MACs, one sentence each.

    Quantization and casts change how a multiply-add is stored and run, not how many run, so the
    count is the float model's; structured, layer and low-rank methods leave a smaller architecture,
    whose count is the float model's minus what they removed; zeroed (unstructured) weights are
    still multiplied by dense kernels."""
    out = []
    for entry in getattr(module, COMPRESSION_HISTORY_ATTR, ()):
        method = str(entry.get("method", "")) if isinstance(entry, dict) else str(entry)
        if method.startswith("quantize:"):
            out.append(f"{method}: MACs are the float model's (the method changes how each multiply-add is stored "
                       "and run, not how many run)")
        elif method in ("prune:unstructured", "prune:wanda"):
            out.append(f"{method}: sparse, not faster: the zeroed weights are still multiplied, so MACs are the "
                       "dense model's")
        elif method.startswith(("prune:", "low-rank:")):
            out.append(f"{method}: MACs are the smaller architecture's: the float model's minus what the method "
                       "removed")
        elif method:
            out.append(f"compressed with {method}")
    return out


@dataclass(frozen=True)
class ProfileConfig:
    hardware: tuple[str, ...] = ("local", "t4", "a100-80gb")
    measure: bool = True
    warmup: int = 3
    runs: int = 20
    threads: int | None = None
    #: Batch sizes of the throughput sweep; None: 1, 2, 4, ... up to the example batch.
    batch_sweep: tuple[int, ...] | None = None
    causal_attention: Literal["full", "visible"] = "full"
    breakdown_depth: int = 3
    top_n: int = 12
    optimizer: str = "adamw"
    training_precision: str = "mixed"
    utilization: float = 0.4
    extra_assumptions: tuple[str, ...] = field(default_factory=tuple)
    #: A request shape to profile as generation (prefill, decode, serving); None: one forward only.
    generation: GenerationWorkload | None = None

    def __post_init__(self) -> None:
        normalise_tuples(self, "hardware", "batch_sweep", whole=("extra_assumptions",))  # hardware="t4" works
        if self.runs < 1 or self.warmup < 0:
            raise ConfigError("runs must be at least 1 and warmup at least 0")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be at least 1, got {self.threads}")


def count(handle: ModelHandle, causal_attention: str = "full") -> CountResult:
    """One counted forward of the handle on its example inputs; model errors become clear input errors."""
    try:
        return count_forward(handle.module, handle.inputs, causal_attention=causal_attention)  # type: ignore[arg-type]
    except (RuntimeError, ValueError, IndexError, TypeError) as exc:
        raise _forward_error(handle, exc) from exc


def _forward_error(handle: ModelHandle, exc: Exception) -> Exception:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    shapes = {k: list(v.shape) for k, v in _named_inputs(handle).items()}
    if "not implemented for" in message and ("Half" in message or "BFloat16" in message):
        return DtypeUnsupportedError(
            f"{dtype_name(handle.dtype)} is not supported on {handle.device} for this model: {message}"
        )
    return InputShapeError(f"the model rejected the example input {shapes}: {message}")


def _named_inputs(handle: ModelHandle) -> dict[str, torch.Tensor]:
    if isinstance(handle.inputs, dict):
        return {k: v for k, v in handle.inputs.items() if isinstance(v, torch.Tensor)}
    return {f"input{i}": v for i, v in enumerate(handle.input_tensors())}


def breakdown(result: CountResult, depth: int, top_n: int) -> list[ModuleRow]:
    """Per-module rows at ``depth`` name components; the top ``top_n`` plus one "(other)" row.

    Work is attributed to the innermost module it ran in, then names are cut to ``depth``
    components, so every op lands in exactly one row and the rows sum to the total.
    """
    grouped: dict[str, list[int]] = {}
    for name, stat in result.modules.items():
        key = ".".join(name.split(".")[:depth]) if name != ROOT else "(top level)"
        row = grouped.setdefault(key, [0, 0, 0])
        row[0] += stat.macs
        row[1] += stat.other_flops
        row[2] += stat.bytes_moved
    total = result.flops + result.other_flops or 1
    ordered = sorted(grouped.items(), key=lambda kv: -(2 * kv[1][0] + kv[1][1]))
    head, tail = ordered[:top_n], ordered[top_n:]
    if tail:
        rest = [sum(v[i] for _, v in tail) for i in range(3)]
        head.append((f"(other {len(tail)} modules)", rest))
    return [
        ModuleRow(
            name=name,
            macs=Macs(m),
            flops=Flops(2 * m),
            other_flops=Flops(o),
            bytes_moved=Bytes(b),
            share=(2 * m + o) / total,
        )
        for name, (m, o, b) in head
    ]


def compute_section(result: CountResult, depth: int, top_n: int) -> Compute:
    total = result.flops + result.other_flops
    return Compute(
        macs=Macs(result.macs),
        flops=Flops(result.flops),
        other_flops=Flops(result.other_flops),
        macs_by_category={k: Macs(v) for k, v in result.macs_by_category.items()},
        other_flops_by_category={k: Flops(v) for k, v in result.other_flops_by_category.items()},
        uncounted_ops=result.uncounted,
        causal_attention=result.causal_attention,
        bytes_moved=Bytes(result.bytes_moved),
        arithmetic_intensity=total / result.bytes_moved if result.bytes_moved else 0.0,
        top_modules=breakdown(result, depth, top_n),
        breakdown_depth=depth,
    )


def _element_bytes(handle: ModelHandle) -> int:
    return torch.finfo(handle.dtype).bits // 8 if handle.dtype.is_floating_point else 4


def _sequence_length(handle: ModelHandle) -> int | None:
    """Tokens a decoder holds at the profiled length: the decoder's ids, else the only ids."""
    inputs = handle.inputs if isinstance(handle.inputs, dict) else {}
    for key in ("decoder_input_ids", "input_ids"):
        if isinstance(inputs.get(key), torch.Tensor):
            return int(inputs[key].shape[-1])
    return None


def memory_section(handle: ModelHandle, result: CountResult, cfg: ProfileConfig, weighed: Weighing) -> Memory:
    weights = float(weighed.storage.parameters)  # quantized codes and scales included
    element = _element_bytes(handle)
    seq = _sequence_length(handle)
    generates = handle.task == "causal-lm" or (isinstance(handle.inputs, dict) and "decoder_input_ids" in handle.inputs)
    cache = kv_cache(handle.config, seq, element) if handle.config is not None and seq and generates else None
    per_token = Bytes(cache.per_token) if cache else None
    per_sequence = Bytes(cache.per_sequence) if cache else None
    kv_total = float(cache.per_sequence) * handle.batch_size if cache else 0.0
    state = recurrent_state_bytes(handle.config, element) if handle.config is not None else None
    if state is not None:
        kv_total = float(state) * handle.batch_size
    training = unknown = None
    try:
        if isinstance(handle.module, CountsItself):  # a trace of torch ops would see none of its work
            raise NotImplementedError("the model runs outside torch (ONNX Runtime): nothing to trace")
        training = training_memory(handle, cfg.optimizer, cfg.training_precision)
    except (RuntimeError, NotImplementedError) as err:  # cannot run backward here: say why, guess nothing
        unknown = f"training-memory trace failed ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
    return Memory(
        weights=Bytes(weights),
        peak_activations=Bytes(result.peak_live_bytes),
        inference_total=Bytes(weights + result.peak_live_bytes + kv_total),
        kv_cache_per_token=per_token,
        kv_cache_per_sequence=per_sequence,
        training=training,
        recurrent_state_per_sequence=Bytes(state) if state is not None else None,
        training_unknown=unknown,
    )


def _cache_assumptions(handle: ModelHandle) -> list[str]:
    """How the KV cache (or a state-space state) was counted, when the model has one."""
    if handle.config is None:
        return []
    shape = geometry(handle.config)
    if shape.state_space is not None:
        return ["state-space model: a fixed recurrent state per sequence (SSM state + conv window per layer), "
                "no KV cache"]
    if not shape.attention:
        return []
    kinds = sorted({layer.kind for layer in shape.attention})
    notes = [f"KV cache: decoder self-attention only ({', '.join(kinds).upper()}, {len(shape.attention)} layers)"]
    if "mla" in kinds:
        notes.append("MLA caches the compressed KV latent + the rope key per token and layer, not full K and V")
    windows = sorted({layer.window for layer in shape.attention if layer.window})
    if windows:
        sliding = sum(1 for layer in shape.attention if layer.window)
        notes.append(f"{sliding} of {len(shape.attention)} layers use a sliding window of "
                     f"{', '.join(map(str, windows))} tokens and cache at most that many; per token is the rate "
                     "while the sequence fits the window")
    return notes


def _moe_assumption(handle: ModelHandle, params: ParameterCount) -> list[str]:
    if params.active is None or handle.config is None:
        return []
    ffn = geometry(handle.config).ffn
    shared = f" + {ffn.shared_experts} shared" if ffn.shared_experts else ""
    return [f"mixture of experts: each token routed to top-{ffn.top_k} of {ffn.experts} experts{shared}; "
            "routed experts counted at that expected load (FLOPs and active parameters), embeddings and head whole"]


def _dtype_assumption(handle: ModelHandle) -> str:
    """Which dtype the weights are weighed in, and whether it is the config's own."""
    name = dtype_name(handle.dtype)
    own = config_dtype(handle.config) if handle.config is not None else None
    if own is None:
        return f"weights in {name}"
    if own == name:
        return f"weights in {name}, the config's own torch_dtype (--dtype to change)"
    return f"weights in {name} (--dtype); the config was published in {own}"


def _sweep_sizes(batch: int, requested: tuple[int, ...] | None) -> list[int]:
    if requested:
        return sorted(set(requested))
    sizes, b = [], 1
    while b < batch:
        sizes.append(b)
        b *= 2
    return [*sizes, batch]


def measure(handle: ModelHandle, flops: float, cfg: ProfileConfig, local: HardwareSpec) -> Measured:
    device = handle.device
    with PeakMemory(device) as peak:
        latency = measure_latency(
            handle.forward,
            device=device,
            batch_size=handle.batch_size,
            warmup=cfg.warmup,
            runs=cfg.runs,
            threads=cfg.threads,
        )
    points = []
    for size in _sweep_sizes(handle.batch_size, cfg.batch_sweep):
        if size == handle.batch_size:  # the headline measurement is this batch's point: one latency per batch
            points.append(ThroughputPoint(size, latency.median, size / float(latency.median), latency.runs,
                                          "headline"))
            continue
        inputs = handle.inputs_for_batch(size)
        stats = measure_latency(
            lambda inputs=inputs: handle.forward(inputs),
            device=device,
            batch_size=size,
            warmup=1,
            runs=max(3, cfg.runs // 4),
            threads=cfg.threads,
        )
        points.append(ThroughputPoint(size, stats.median, size / float(stats.median), stats.runs, "sweep"))
    achieved = FlopsPerSecond(flops / float(latency.median))
    machine_peak = local.peak_for(dtype_name(handle.dtype))
    return Measured(
        device=str(device),
        latency=latency,
        throughput=points,
        peak_memory=peak.peak,
        peak_memory_kind=peak.kind,
        achieved_flops_per_second=achieved,
        machine_peak_flops_per_second=machine_peak,
        efficiency=float(achieved) / float(machine_peak) if machine_peak else 0.0,
    )


def _efficiency(hw: HardwareSpec, compute: Compute, measured: Measured | None, dtype: str) -> float | None:
    """On the machine that was measured, the efficiency that makes the projection equal the
    measured median; elsewhere None (the verdict's stated default)."""
    if measured is None or not hw.measured:
        return None
    floor = roofline(float(compute.total_flops), float(compute.bytes_moved), hw, dtype).latency_floor
    if float(floor) <= 0:  # nothing counted (a runtime session the FLOP counter cannot see into)
        return None
    return float(floor) / float(measured.latency.median)


def _input_description(handle: ModelHandle) -> InputDescription:
    shapes = {k: list(v.shape) for k, v in _named_inputs(handle).items()}
    seq = image = None
    if isinstance(handle.inputs, dict) and "input_ids" in handle.inputs:
        seq = int(handle.inputs["input_ids"].shape[1])
    if isinstance(handle.inputs, dict) and "pixel_values" in handle.inputs:
        image = int(handle.inputs["pixel_values"].shape[-1])
    return InputDescription(batch_size=handle.batch_size, shapes=shapes, seq_len=seq, image_size=image)


def profile(handle: ModelHandle, cfg: ProfileConfig | None = None) -> CostReport:
    """Weigh ``handle``: parameters, storage, compute, memory, and on real weights, measurements."""
    cfg = cfg or ProfileConfig()
    hardware = parse_hardware_list(",".join(cfg.hardware)) if cfg.hardware else []
    generation = None  # first: a request the model cannot hold fails before anything is timed
    if cfg.generation is not None and cfg.generation.new_tokens > 0:
        generation = profile_generation(handle, cfg.generation, hardware, measure=cfg.measure,
                                        causal_attention=cfg.causal_attention, require_fit=True, threads=cfg.threads)
    result = count(handle, cfg.causal_attention)
    compute = compute_section(result, cfg.breakdown_depth, cfg.top_n)
    weighed = weigh(handle.module, handle.weights_files)
    params = weighed.parameters
    if handle.config is not None:
        params.active = active_parameters(handle.module, handle.config, params.total)
    memory = memory_section(handle, result, cfg, weighed)
    dtype = dtype_name(handle.dtype)
    assumptions = [
        compute.convention,
        "FLOPs are matrix-class work (matmul, conv, attention); elementwise, normalisation and softmax "
        "are counted per element in 'other FLOPs'",
        "causal attention counted over the "
        + ("full score matrix" if cfg.causal_attention == "full" else "visible (unmasked) part of the score matrix"),
        "bytes moved: every op reads its inputs and writes its outputs once (no fusion): an upper bound",
        f"training memory: {cfg.optimizer}, {cfg.training_precision} precision, activations saved for backward as "
        "traced on this batch"
        if memory.training is not None
        else f"training memory: unknown, {memory.training_unknown or 'not traced'}",
        _dtype_assumption(handle),
        *_moe_assumption(handle, params),
        *_cache_assumptions(handle),
        *compression_assumptions(handle.module),
        *(
            ["compute counted by the model itself, which runs outside torch (an ONNX Runtime session prices its "
             "saved ONNX graph at these input shapes; quantize / dequantize steps are listed as uncounted); peak "
             "activations are not traced (0 shown)"]
            if isinstance(handle.module, CountsItself)
            else []
        ),
        *cfg.extra_assumptions,
    ]
    measured = energy = None
    if cfg.measure and not handle.on_meta:
        with fixed_threads(cfg.threads):  # this machine as the runs use it: the cores in use set its power
            local = detect_local(measure=True)
        measured = measure(handle, float(compute.total_flops), cfg, local)
        energy = measure_energy(
            handle.forward,
            device=handle.device,
            runs=max(3, cfg.runs // 2),
            median_latency=float(measured.latency.median),
            hardware=local,
            batch_size=handle.batch_size,
        )
    elif handle.on_meta:
        assumptions.append("config only (meta device): nothing was timed; latency is projected from the roofline")
    verdicts = [
        verdict(
            hw,
            params=params.total,
            dtype=dtype,
            compute=compute,
            memory=memory,
            batch_size=handle.batch_size,
            efficiency=_efficiency(hw, compute, measured, dtype),
            measured_latency=measured.latency.median if measured is not None and hw.measured else None,
            measured_energy=energy if hw.measured else None,
        )
        for hw in hardware
    ]
    needs = None
    if handle.task in ("causal-lm", "feature-extraction", "text-classification") and "input_ids" in (
        handle.inputs if isinstance(handle.inputs, dict) else {}
    ):
        needs = data_needs(params.total, [hw for hw in hardware if hw.kind == "gpu"] or hardware, cfg.utilization)
    return CostReport(
        model=handle.name,
        source_kind=handle.source_kind,
        task=handle.task,
        dtype=dtype,
        on_meta=handle.on_meta,
        input=_input_description(handle),
        parameters=params,
        storage=weighed.storage,
        compute=compute,
        memory=memory,
        hardware=verdicts,
        environment=current_environment(str(handle.device) if not handle.on_meta else "meta"),
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        assumptions=assumptions,
        measured=measured,
        energy=energy,
        data_needs=needs,
        generation=generation,
    )
