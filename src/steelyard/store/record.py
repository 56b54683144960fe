"""Turn typed results into store rows (config, environment, payload, headline metrics)."""

from __future__ import annotations

import dataclasses
from typing import Any

from steelyard.profiling.report import CostReport, TrainingEstimate
from steelyard.serialize import to_dict
from steelyard.store.runs import open_store


def _config_dict(*configs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for cfg in configs:
        out[type(cfg).__name__] = to_dict(cfg) if dataclasses.is_dataclass(cfg) else cfg
    return out


def profile_metrics(report: CostReport) -> dict[str, tuple[float | None, str | None]]:
    m: dict[str, tuple[float | None, str | None]] = {
        "parameters": (float(report.parameters.total), None),
        "flops": (float(report.compute.flops), "FLOP"),
        "macs": (float(report.compute.macs), "MAC"),
        "other_flops": (float(report.compute.other_flops), "FLOP"),
        "bytes_moved": (float(report.compute.bytes_moved), "B"),
        "weights_bytes": (float(report.memory.weights), "B"),
        "peak_activation_bytes": (float(report.memory.peak_activations), "B"),
    }
    if report.memory.training is not None:
        m["training_memory_bytes"] = (float(report.memory.training.total), "B")
    if report.measured is not None:
        lat = report.measured.latency
        m["latency_median_s"] = (float(lat.median), "s")
        m["latency_p90_s"] = (float(lat.p90), "s")
        m["latency_cv"] = (lat.cv, None)
        m["peak_memory_bytes"] = (float(report.measured.peak_memory), "B")
        best = max(report.measured.throughput, key=lambda p: p.samples_per_second)
        m["throughput_samples_per_s"] = (best.samples_per_second, "1/s")
    if report.energy is not None:
        m["energy_per_batch_j"] = (float(report.energy.joules_per_inference), "J")
    return m


def record_profile(report: CostReport, configs: list[Any], store_url: str | None = None) -> tuple[int, str]:
    """Save a profile; returns the run id and the store URL it went to."""
    store = open_store(store_url)
    run_id = store.save_run(
        "profile",
        report.model,
        config=_config_dict(*configs),
        environment=to_dict(report.environment),
        payload=report.to_dict(),
        metrics=profile_metrics(report),
    )
    return run_id, store.url


def record_estimate(
    model: str, est: TrainingEstimate, configs: list[Any], store_url: str | None = None
) -> tuple[int, str]:
    from steelyard.environment import current_environment

    store = open_store(store_url)
    metrics: dict[str, tuple[float | None, str | None]] = {
        f"{r.hardware}.device_hours": (r.device_hours, "h") for r in est.rows
    }
    metrics["total_flops"] = (float(est.total_flops), "FLOP")
    run_id = store.save_run(
        "estimate",
        model,
        config=_config_dict(*configs),
        environment=to_dict(current_environment()),
        payload=to_dict(est),
        metrics=metrics,
    )
    return run_id, store.url
