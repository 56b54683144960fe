"""Hand-made cost reports and comparisons with fixed numbers (no model runs, no catalog lookups),
shared by the tests, so snapshots change only when rendering or ranking does."""

from __future__ import annotations

from steelyard.comparison.compare import assemble
from steelyard.comparison.config import CompareConfig, Constraints
from steelyard.comparison.result import CandidateResult, Comparison
from steelyard.metrics import MetricValue
from steelyard.models.tasks import InputSpec
from steelyard.profiling.report import (
    Compute,
    CostReport,
    Energy,
    Environment,
    HardwareVerdict,
    InputDescription,
    LatencyStats,
    Measured,
    Memory,
    ModuleRow,
    ParameterCount,
    Storage,
    ThroughputPoint,
    TrainingCostRow,
    TrainingEstimate,
    TrainingMemory,
)
from steelyard.units import Bytes, Flops, FlopsPerSecond, Joules, KgCO2, KilowattHours, Macs, Seconds, Usd, Watts

HARDWARE = ("laptop-cpu", "t4", "a100-80gb")
#: name → (usable memory bytes, effective FLOP/s, board watts, $ per hour)
SPECS = {
    "laptop-cpu": (14.4 * 2**30, 0.45e12, 28.0, None),
    "t4": (14.4 * 2**30, 4.0e12, 70.0, 0.35),
    "a100-80gb": (72.0 * 2**30, 10.0e12, 400.0, 1.8),
}


def fake_verdict(hw: str, flops: float, memory: Memory) -> HardwareVerdict:
    usable, speed, watts, price = SPECS[hw]
    need, tune = float(memory.inference_total), float(memory.training.total)  # type: ignore[union-attr]
    latency = Seconds(flops / speed)
    return HardwareVerdict(
        hardware=hw, display_name=hw.upper(), dtype="float32", device_memory=Bytes(usable / 0.9),
        usable_memory=Bytes(usable), inference_memory=Bytes(need), finetune_memory=Bytes(tune),
        fits_inference=need <= usable, fits_finetune=tune <= usable, devices_for_inference=-(-int(need) // int(usable)),
        devices_for_finetune=-(-int(tune) // int(usable)), bound="compute", arithmetic_intensity=100.0,
        latency_floor_per_batch=Seconds(latency / 2), projected_latency_per_batch=latency, efficiency_assumed=0.5,
        efficiency_source="assumed", energy_per_batch=Joules(float(latency) * watts * 1.2),
        energy_per_sample=Joules(float(latency) * watts * 1.2),
        cost_per_1k_samples=None if price is None else Usd(price * float(latency) / 3600 * 1000),
        suggestions=[] if need <= usable else [f"or shard the weights over 2× {hw}"],
    )

ENV = Environment(
    hostname="test-host", platform="Linux-test", python="3.11.0", cpu_model="Test CPU", physical_cores=8,
    logical_cores=16, threads=4, ram=Bytes(32 * 2**30), torch="2.13.0", transformers="5.0.0", device="cpu",
    device_name="Test CPU", steelyard="0.1.0",
)


def fake_report(name: str, params: int, gflops: float, weights: float, measured_ms: float | None = None,
                hardware: tuple[str, ...] = HARDWARE) -> CostReport:
    """A text-classification cost card: ``params`` float32 weights, ``gflops`` per forward at batch 1."""
    flops = gflops * 1e9
    moved = weights + 4e6
    rows = [
        ModuleRow("encoder.layer", Macs(0.45 * flops), Flops(0.9 * flops), Flops(0.02 * flops), Bytes(0.8 * moved),
                  0.9),
        ModuleRow("classifier", Macs(0.05 * flops), Flops(0.1 * flops), Flops(0.0), Bytes(0.2 * moved), 0.08),
    ]
    compute = Compute(
        macs=Macs(flops / 2), flops=Flops(flops), other_flops=Flops(0.02 * flops),
        macs_by_category={"matmul": Macs(flops / 2)}, other_flops_by_category={"elementwise": Flops(0.02 * flops)},
        uncounted_ops={}, causal_attention="full", bytes_moved=Bytes(moved),
        arithmetic_intensity=1.02 * flops / moved, top_modules=rows, breakdown_depth=2,
    )
    training = TrainingMemory("adamw", "mixed", Bytes(weights), Bytes(weights), Bytes(2 * weights), Bytes(8e6),
                              Bytes(4 * weights + 8e6), 1)
    memory = Memory(weights=Bytes(weights), peak_activations=Bytes(4e6), inference_total=Bytes(weights + 4e6),
                    kv_cache_per_token=None, kv_cache_per_sequence=None, training=training)
    verdicts = [fake_verdict(h, flops, memory) for h in hardware]
    measured = energy = None
    if measured_ms is not None:
        lat = Seconds(measured_ms / 1e3)
        measured = Measured(
            device="cpu",
            latency=LatencyStats(1, 3, 20, 4, "perf_counter", lat, Seconds(1.1 * lat), Seconds(1.2 * lat),
                                 Seconds(1.02 * lat), Seconds(0.05 * lat), 0.05, Seconds(0.95 * lat),
                                 Seconds(1.3 * lat)),
            throughput=[ThroughputPoint(1, lat, 1 / lat), ThroughputPoint(2, Seconds(1.6 * lat), 2 / (1.6 * lat))],
            peak_memory=Bytes(weights + 2e8), peak_memory_kind="rss",
            achieved_flops_per_second=FlopsPerSecond(flops / lat),
            machine_peak_flops_per_second=FlopsPerSecond(5e11), efficiency=flops / lat / 5e11,
        )
        energy = Energy(Joules(30 * lat), Joules(30 * lat), Joules(30 * lat), 1.0, "estimated", Watts(30), "test")
    return CostReport(
        model=name, source_kind="config", task="text-classification", dtype="float32", on_meta=measured is None,
        input=InputDescription(1, {"input_ids": [1, 128]}, seq_len=128),
        parameters=ParameterCount(params, params, None, 0, {"float32": params}),
        storage=Storage({"float32": Bytes(weights)}, Bytes(weights), Bytes(0)),
        compute=compute, memory=memory, hardware=verdicts, environment=ENV, created_at="2026-01-01T00:00:00+00:00",
        assumptions=["test"], measured=measured, energy=energy,
    )


def fake_training(params: int, hardware: tuple[str, ...] = HARDWARE, tokens: float = 10e6) -> TrainingEstimate:
    rows = []
    for h in hardware:
        _, speed, watts, per_hour = SPECS[h]
        hours = 6 * params * tokens / (speed * 4 * 0.4) / 3600
        price = None if per_hour is None else Usd(hours * per_hour)
        kwh = hours * watts / 1000
        rows.append(TrainingCostRow(h, FlopsPerSecond(4 * speed), 0.4, hours, price, KilowattHours(kwh),
                                    KgCO2(0.5 * kwh)))
    return TrainingEstimate(tokens, tokens / 128, Flops(6 * params * 128), Flops(6 * params * tokens), "6ND",
                            Flops(6 * params * tokens), rows, ["test"])


#: (label, params, GFLOPs per forward, weight bytes, accuracy, CI half-width)
CANDIDATES = (
    ("tiny", 10_000_000, 2.0, 40e6, 0.82),
    ("base", 110_000_000, 22.0, 440e6, 0.90),
    ("huge", 5_000_000_000, 1000.0, 20 * 2**30, 0.93),
)


def fake_candidates(with_scores: bool = True, measured: bool = False) -> list[CandidateResult]:
    out = []
    for label, params, gflops, weights, acc in CANDIDATES:
        report = fake_report(label, params, gflops, weights, measured_ms=gflops * 4 if measured else None)
        scores = [MetricValue("accuracy", acc, acc - 0.03, acc + 0.03, 1000)] if with_scores else []
        out.append(CandidateResult(label=label, model=f"models/{label}", report=report, scores=scores,
                                   training=fake_training(params)))
    return out


def fake_config(constraints: Constraints | None = None, with_data: bool = True, **kw) -> CompareConfig:
    return CompareConfig(hardware=HARDWARE, config_only=not with_data, inputs=InputSpec(seq_len=128),
                         data="data.csv" if with_data else None, constraints=constraints or Constraints(),
                         threads=4, **kw)


def fake_comparison(constraints: Constraints | None = None, with_data: bool = True, **kw) -> Comparison:
    cands = fake_candidates(with_scores=with_data)
    cfg = fake_config(constraints, with_data, **kw)
    return assemble([c.model for c in cands], cands, list(HARDWARE), cfg, ENV, threads=4,
                    created_at="2026-01-01T00:00:00+00:00")
