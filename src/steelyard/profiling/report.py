"""The cost card: typed results of a profile. Rendering lives in steelyard.reporting."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from steelyard.profiling.generation_report import GenerationReport
from steelyard.serialize import from_dict, to_dict
from steelyard.units import (
    Bytes,
    Flops,
    FlopsPerSecond,
    Joules,
    KgCO2,
    KilowattHours,
    Macs,
    Seconds,
    Usd,
    Watts,
)

MAC_CONVENTION = "1 multiply-add = 2 FLOPs = 1 MAC"


@dataclass
class ParameterCount:
    total: int
    trainable: int
    #: None on the meta device, where there are no values to inspect.
    nonzero: int | None
    #: Parameters that appear under more than one name (tied weights), counted once in total.
    tied: int
    by_dtype: dict[str, int]
    #: Mixture of experts: parameters one token uses (top-k routed experts, shared experts, the rest
    #: whole); None for a model without routed experts.
    active: int | None = None

    @property
    def sparsity(self) -> float | None:
        return None if self.nonzero is None or not self.total else 1 - self.nonzero / self.total


@dataclass
class Storage:
    """Bytes of parameters and persistent buffers, and of the weight files when there are files."""

    bytes_by_dtype: dict[str, Bytes]
    parameters: Bytes
    buffers: Bytes
    on_disk: Bytes | None = None
    files: list[str] = field(default_factory=list)
    #: Tensor bytes per dtype in the weight files, where their format says (safetensors headers).
    on_disk_by_dtype: dict[str, Bytes] = field(default_factory=dict)


@dataclass
class ModuleRow:
    name: str
    macs: Macs
    flops: Flops
    other_flops: Flops
    bytes_moved: Bytes
    share: float  # of total (matrix + other) FLOPs


@dataclass
class Compute:
    """Per-forward work. ``flops`` = 2 × ``macs`` (matrix-class); elementwise work is separate."""

    macs: Macs
    flops: Flops
    other_flops: Flops
    macs_by_category: dict[str, Macs]
    other_flops_by_category: dict[str, Flops]
    uncounted_ops: dict[str, int]
    causal_attention: str
    bytes_moved: Bytes
    arithmetic_intensity: float
    top_modules: list[ModuleRow]
    breakdown_depth: int
    convention: str = MAC_CONVENTION

    @property
    def total_flops(self) -> Flops:
        return Flops(self.flops + self.other_flops)


@dataclass
class TrainingMemory:
    optimizer: str
    precision: str
    weights: Bytes
    gradients: Bytes
    optimizer_states: Bytes
    activations: Bytes
    total: Bytes
    batch_size: int


@dataclass
class Memory:
    weights: Bytes
    peak_activations: Bytes
    inference_total: Bytes
    kv_cache_per_token: Bytes | None
    kv_cache_per_sequence: Bytes | None
    training: TrainingMemory | None
    #: State-space models: the fixed recurrent state of one sequence (instead of a KV cache).
    recurrent_state_per_sequence: Bytes | None = None
    #: Why ``training`` is None (the trace failed): shown as "unknown: <why>", never as a verdict.
    training_unknown: str | None = None


@dataclass
class LatencyStats:
    batch_size: int
    warmup: int
    runs: int
    threads: int
    timer: str
    median: Seconds
    p90: Seconds
    p99: Seconds
    mean: Seconds
    std: Seconds
    cv: float
    minimum: Seconds
    maximum: Seconds
    #: The timed runs themselves, seconds each, in the order they ran (distributions, intervals).
    samples: list[float] = field(default_factory=list)
    #: Too spread to trust as one number (:func:`steelyard.profiling.latency.noise_reasons`), and why:
    #: ``"cv"`` (coefficient of variation above 10%), ``"tail"`` (p90 above 1.5 × the median).
    noisy: bool = False
    noisy_because: list[str] = field(default_factory=list)


@dataclass
class ThroughputPoint:
    """One batch size of the throughput sweep. At the profile's own batch size the point *is* the
    headline measurement (``source="headline"``), so the card never states two latencies for one batch."""

    batch_size: int
    #: Median seconds for one forward of the whole batch.
    latency_per_batch: Seconds
    samples_per_second: float
    runs: int = 0
    source: str = "sweep"  # "headline" (the profile's timed runs) | "sweep" (a shorter run of its own)


@dataclass
class Measured:
    device: str
    latency: LatencyStats
    throughput: list[ThroughputPoint]
    peak_memory: Bytes
    peak_memory_kind: str  # "rss" (process resident set, CPU) or "cuda" (allocator peak)
    achieved_flops_per_second: FlopsPerSecond
    machine_peak_flops_per_second: FlopsPerSecond
    efficiency: float


@dataclass
class Energy:
    """Energy of one forward of the profiled batch. ``joules_per_batch`` is at the wall: the device's
    energy × the PUE (:func:`steelyard.profiling.energy.at_the_wall`, the one place it is applied)."""

    joules_per_batch: Joules
    joules_per_sample: Joules
    device_joules_per_batch: Joules
    pue: float
    method: str  # "measured-rapl" | "measured-nvml" | "estimated"
    power: Watts
    note: str
    #: Who produced the figure: "steelyard estimate", or steelyard reading a RAPL / NVML counter (codecarbon is
    #: not used).
    estimator: str = "steelyard estimate"


@dataclass
class HardwareVerdict:
    hardware: str
    display_name: str
    dtype: str
    device_memory: Bytes
    usable_memory: Bytes
    inference_memory: Bytes
    finetune_memory: Bytes
    fits_inference: bool
    fits_finetune: bool
    devices_for_inference: int
    #: None when this batch's activations alone exceed one device (sharding cannot help).
    devices_for_finetune: int | None
    bound: str
    arithmetic_intensity: float
    #: Seconds for one forward of the whole batch (``batch_size`` samples).
    latency_floor_per_batch: Seconds
    projected_latency_per_batch: Seconds
    efficiency_assumed: float
    #: "measured" (this machine, from the timed runs) or "assumed" (DEFAULT_EFFICIENCY).
    efficiency_source: str
    #: At the wall (device energy × PUE), for one forward of the batch and per sample.
    energy_per_batch: Joules
    energy_per_sample: Joules
    #: Dollars for 1,000 samples (not batches) at the device's hourly price; None without a price.
    cost_per_1k_samples: Usd | None
    suggestions: list[str]
    #: Set when the training memory is not known: fits_finetune is then no verdict at all.
    finetune_unknown: str | None = None
    #: The PUE in ``energy_per_batch`` (device energy × PUE); None on cards saved before it was recorded.
    pue: float | None = None


@dataclass
class TrainingCostRow:
    hardware: str
    peak_flops_per_second: FlopsPerSecond
    utilization: float
    device_hours: float
    cost: Usd | None
    energy: KilowattHours
    co2: KgCO2


@dataclass
class TrainingEstimate:
    tokens: float
    samples: float
    flops_per_sample: Flops
    total_flops: Flops
    method: str  # "counted" | "6ND" | "measured-step"
    six_nd_flops: Flops
    rows: list[TrainingCostRow]
    assumptions: list[str]
    measured_step_time: Seconds | None = None


@dataclass
class DataNeeds:
    """Compute-optimal pretraining data (Chinchilla: ~20 tokens per parameter) and its cost."""

    parameters: int
    tokens_per_parameter: float
    compute_optimal_tokens: float
    training: TrainingEstimate | None


@dataclass
class Environment:
    hostname: str
    platform: str
    python: str
    cpu_model: str
    physical_cores: int
    logical_cores: int
    threads: int
    ram: Bytes
    torch: str
    transformers: str | None
    device: str
    device_name: str
    steelyard: str


@dataclass
class InputDescription:
    batch_size: int
    shapes: dict[str, list[int]]
    seq_len: int | None = None
    image_size: int | None = None


@dataclass
class CostReport:
    model: str
    source_kind: str
    task: str
    dtype: str
    on_meta: bool
    input: InputDescription
    parameters: ParameterCount
    storage: Storage
    compute: Compute
    memory: Memory
    hardware: list[HardwareVerdict]
    environment: Environment
    created_at: str
    assumptions: list[str]
    measured: Measured | None = None
    energy: Energy | None = None
    data_needs: DataNeeds | None = None
    generation: GenerationReport | None = None  # prefill, decode and serving (with --new-tokens)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CostReport:
        return from_dict(cls, _upgrade(data))


#: Keys renamed when every figure came to name its unit of work: (section, old key) → new key.
_RENAMED = {
    ("throughput", "median_latency"): "latency_per_batch",
    ("energy", "joules_per_inference"): "joules_per_batch",
    ("hardware", "latency_floor"): "latency_floor_per_batch",
    ("hardware", "projected_latency"): "projected_latency_per_batch",
    ("hardware", "energy_per_inference"): "energy_per_batch",
}


def _renamed(section: str, row: dict[str, Any]) -> dict[str, Any]:
    return {_RENAMED.get((section, k), k): v for k, v in row.items()}


def _upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Read a card saved before the unit-of-work names: rename its keys and derive what it lacked
    (per-sample energy from per-batch; an old ``cost_per_1k_inferences`` already was per 1,000 samples)."""
    data = dict(data)
    batch = max(1, int((data.get("input") or {}).get("batch_size") or 1))
    energy = data.get("energy")
    if isinstance(energy, dict) and "joules_per_batch" not in energy:
        energy = _renamed("energy", energy)
        energy.setdefault("device_joules_per_batch", energy["joules_per_batch"])
        energy.setdefault("pue", 1.0)
        energy.setdefault("joules_per_sample", energy["joules_per_batch"] / batch)
        data["energy"] = energy
    measured = data.get("measured")
    if isinstance(measured, dict):
        measured = dict(measured)
        measured["throughput"] = [_renamed("throughput", p) for p in measured.get("throughput") or []]
        data["measured"] = measured
    rows = []
    for row in data.get("hardware") or []:
        row = _renamed("hardware", row)
        if "cost_per_1k_inferences" in row:
            row["cost_per_1k_samples"] = row.pop("cost_per_1k_inferences")
        row.setdefault("energy_per_sample", row["energy_per_batch"] / batch if "energy_per_batch" in row else 0.0)
        rows.append(row)
    data["hardware"] = rows
    return data
