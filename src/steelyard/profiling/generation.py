"""``profile_generation``: the generation card of a causal LM (prefill, decode, serving).

Counts the phases (:mod:`.generation_count`), projects them on each requested device
(:mod:`.generation_project`), and on real weights times the real ``generate()``
(:mod:`.generation_measure`) with the `local` projection beside it.
"""

from __future__ import annotations

from collections.abc import Sequence

from steelyard.errors import ConfigError
from steelyard.hardware import HardwareSpec, catalog_defaults, detect_local
from steelyard.models.handle import ModelHandle
from steelyard.profiling.generation_config import GenerationWorkload
from steelyard.profiling.generation_count import count_generation, total_weight_bytes
from steelyard.profiling.generation_kv import check_kv_request, compare_kv_caches
from steelyard.profiling.generation_measure import measure_generation
from steelyard.profiling.generation_project import project
from steelyard.profiling.generation_report import GenerationCount, GenerationReport, MeasuredBatch, PositionCost
from steelyard.profiling.weigh import dtype_name

#: Points of the per-position decode curve kept in the report (for the chart).
CURVE_POINTS = 16


def positions(count: GenerationCount) -> list[PositionCost]:
    contexts = list(count.contexts())
    if not contexts:
        return []
    step = max(1, len(contexts) // (CURVE_POINTS - 1))
    picked = sorted({*contexts[::step], contexts[-1]})
    return [PositionCost(c, count.decode_at(c).total_flops, count.decode_at(c).bytes_moved) for c in picked]


def check_fits(report: GenerationReport) -> None:
    """A requested batch that no device group holds: one line naming the largest that fits."""
    for row in report.hardware:
        for b in row.batches:
            if not b.fits:
                where = f"{row.devices}× {row.hardware}" if row.devices > 1 else row.hardware
                raise ConfigError(
                    f"batch {b.batch} does not fit on {where} at {report.workload.total_tokens} tokens of context "
                    f"(weights + KV cache need {float(b.memory) / 2**30:.1f} GiB); the largest batch that fits is "
                    f"{row.max_batch}"
                )


def _with_projection(measured: list[MeasuredBatch], report: GenerationReport) -> None:
    local = report.local_projection
    if local is None:
        return
    by_batch = {b.batch: b for b in local.batches}
    for m in measured:
        if m.batch in by_batch:
            m.projected_ttft = by_batch[m.batch].ttft
            m.projected_tpot = by_batch[m.batch].tpot


def profile_generation(handle: ModelHandle, workload: GenerationWorkload, hardware: Sequence[HardwareSpec],
                       *, measure: bool = True, causal_attention: str = "full",
                       require_fit: bool = False, threads: int | None = None) -> GenerationReport:
    """Count, project and (on real weights, with ``measure``) time ``workload`` on ``handle``.

    With ``workload.kv_cache`` other than float, the float and the quantized KV cache are also
    measured side by side (:func:`~steelyard.profiling.generation_kv.compare_kv_caches`).
    """
    check_kv_request(handle, workload, measure)  # before counting: a missing backend fails at once
    count = count_generation(handle, workload, causal_attention)
    dtype = dtype_name(handle.dtype)
    weights = total_weight_bytes(handle.module)
    rows = [project(count, hw, dtype, workload.batch_sizes, weights, workload.compute_efficiency,
                    workload.memory_efficiency) for hw in hardware]
    defaults = catalog_defaults()
    assumptions = [
        f"roofline at {workload.compute_efficiency:.0%} of peak FLOP/s and {workload.memory_efficiency:.0%} of "
        "memory bandwidth; each phase takes the longer of its compute and memory time",
        "a decode step reads every weight once (the input embedding table only for the rows it looks up), the KV "
        "cache of its context, and writes one position per sequence; sizes from the model's own cache tensors",
        f"decode counted at context lengths {', '.join(str(p.context) for p in count.decode)} (batch 1) and "
        "interpolated linearly between them; FLOPs and KV scale with the batch, weights are read once",
        "TTFT is the prefill (it yields the first token); TPOT the mean decode step; prompt tokens are priced by "
        "the prefill's device time, output tokens by the decode's",
        f"memory fit: weights + KV cache ({float(count.kv_bytes_per_sequence) / 2**20:.1f} MiB per sequence at its "
        f"last position) within "
        f"{defaults.usable_memory_fraction:.0%} of device memory (activations not included)",
    ]
    if count.encoder is not None:
        assumptions.append(
            f"encoder-decoder: the encoder runs once over {count.encoder_tokens} positions and the decoder's first "
            "forward (the start token) projects its output into every layer's cross-attention K/V, both in TTFT; "
            f"each decode step reads the decoder's weights (cross-attention K/V projections included), its "
            f"self-attention KV and the {float(count.cross_kv_bytes) / 2**20:.1f} MiB of cross-attention KV")
    if count.moe is not None:
        assumptions.append(
            f"mixture of experts: {count.moe.per_token} of {count.moe.experts} experts per token, routing taken "
            "as uniform, so a step of T tokens reads a fraction 1 - (1 - k/E)^T of the expert weights")
    report = GenerationReport(
        model=handle.name, dtype=dtype, workload=workload, count=count,
        total_weight_bytes=weights, hardware=rows, positions=positions(count), assumptions=assumptions,
    )
    if require_fit:
        check_fits(report)
    if measure and not handle.on_meta and workload.new_tokens > 0:
        local = detect_local(measure=True)
        report.local_projection = project(count, local, dtype, workload.batch_sizes, weights,
                                          workload.compute_efficiency, workload.memory_efficiency)
        report.measured = measure_generation(handle, workload)
        _with_projection(report.measured, report)
        if workload.kv_cache != "float":
            report.kv_cache = compare_kv_caches(handle, workload, threads=threads)
    return report


__all__ = ["check_fits", "profile_generation"]
