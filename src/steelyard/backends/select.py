"""The uncompressed model in every runtime, timed side by side; the fastest is chosen by measurement.

Each candidate (backend × precision) is built, its outputs checked against torch fp32 eager
(:mod:`.check`), then all that passed are timed together with :func:`time_interleaved`, torch fp32
eager first, so every ratio is to it and carries the bootstrap interval over rounds. A backend
missing from the machine is skipped with a note, unless it was asked for by name (then the
one-line "not installed" error, exit 2). A candidate that fails to build or disagrees with torch
is a failed row with its error, never a speedup.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from steelyard.backends.base import Backend, Calibration, RuntimeMismatchError, run_module
from steelyard.backends.check import check_outputs
from steelyard.errors import SteelyardError
from steelyard.profiling.interleaved import InterleavedTiming, Speedup, time_interleaved
from steelyard.profiling.report import LatencyStats

BASELINE = "torch fp32"

#: Every backend × precision ``--backend all`` tries, in table order (torch fp32 eager first).
ALL_CANDIDATES: tuple[tuple[str, str], ...] = (
    ("torch", "fp32"), ("torch", "bf16"), ("torch", "int8-dynamic"),
    ("torch-compile", "fp32"), ("torch-compile", "bf16"),
    ("onnxruntime", "fp32"), ("onnxruntime", "int8-dynamic"), ("onnxruntime", "int8-static"),
    ("openvino", "fp32"), ("openvino", "bf16"), ("openvino", "int8"),
)
CALIBRATED = ("int8-static", "int8")


@dataclass
class RuntimeRow:
    """One candidate: timed (with its stats and speedup over torch fp32), skipped or failed."""

    label: str
    backend: str
    precision: str
    status: str  # "timed", "skipped", "failed"
    note: str = ""
    stats: LatencyStats | None = None
    speedup: Speedup | None = None
    sqnr_db: float | None = None
    agreement: float | None = None
    model: nn.Module | None = field(default=None, repr=False)


@dataclass
class RuntimeTable:
    rows: list[RuntimeRow]
    fastest: str
    timing: InterleavedTiming

    def row(self, label: str) -> RuntimeRow:
        return next(r for r in self.rows if r.label == label)

    def to_dict(self) -> dict[str, Any]:
        from steelyard.serialize import to_dict

        rows = [{k: v for k, v in r.__dict__.items() if k != "model"} for r in self.rows]
        return {"baseline": BASELINE, "fastest": self.fastest, "rows": to_dict(rows)}


def label_of(backend: str, precision: str) -> str:
    return f"{backend} {precision}"


def fastest(timing: InterleavedTiming) -> str:
    """The candidate with the largest measured speedup over the baseline (ties: the earlier one)."""
    return max(timing.speedups, key=lambda name: (timing.speedups[name].ratio, -list(timing.speedups).index(name)))


def candidates_for(names: Sequence[str]) -> tuple[list[tuple[str, str]], set[str]]:
    """``["all"]`` → every candidate; otherwise the named backends (``openvino`` or ``openvino:int8``).

    Returns the (backend, precision) pairs and the backends the user named (which must be installed).
    """
    from steelyard.backends.registry import get_backend

    if list(names) in (["all"], []):
        return list(ALL_CANDIDATES), set()
    pairs: list[tuple[str, str]] = []
    for name in names:
        backend, _, precision = name.partition(":")
        get_backend(backend)  # unknown names fail here, with the list of known ones
        pairs += [(backend, precision)] if precision else [(b, p) for b, p in ALL_CANDIDATES if b == backend]
    if ("torch", "fp32") not in pairs:
        pairs.insert(0, ("torch", "fp32"))
    return pairs, {n.partition(":")[0] for n in names}


def _build(backend: Backend, precision: str, module: nn.Module, inputs: Mapping[str, torch.Tensor],
           calibration: Calibration | None, threads: int | None, task: str, reference: Any, row: RuntimeRow) -> None:
    supported = backend.supports(precision)
    if not supported:
        row.status, row.note = "skipped", supported.reason
        return
    if precision in CALIBRATED and (calibration is None or not calibration.batches):
        row.status, row.note = "skipped", "needs calibration data (--data)"
        return
    try:
        model = backend.compile(module, inputs, precision, calibration, threads)
        fidelity = check_outputs(reference, run_module(model, inputs), precision, task, row.label)
    except (SteelyardError, RuntimeMismatchError) as exc:
        row.status, row.note = "failed", str(exc).splitlines()[0]
        return
    except Exception as exc:  # a runtime's own exception: the candidate failed, the table goes on
        row.status, row.note = "failed", f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
        return
    row.model, row.sqnr_db, row.agreement = model, fidelity.sqnr_db, fidelity.agreement


def runtime_table(module: nn.Module, inputs: Mapping[str, torch.Tensor], *,
                  candidates: Sequence[tuple[str | Backend, str]] = ALL_CANDIDATES, required: set[str] = frozenset(),
                  calibration: Calibration | None = None, task: str = "text-classification",
                  threads: int | None = None, rounds: int = 10, warmup: int = 3,
                  extra: Mapping[str, nn.Module] | None = None) -> RuntimeTable:
    """Build, check and time ``candidates`` (backend name or object, precision) on ``inputs``.

    ``extra`` models (label → a model already built and checked elsewhere, e.g. ``optimize``'s winner as
    served) are timed in the same interleaved rounds, so each can be set against every runtime alone
    (:func:`versus`). They are not compared with torch's outputs: a compressed model computes others.
    """
    from steelyard.backends.registry import require_backend

    module = module.eval()
    reference = run_module(module, inputs)
    rows: list[RuntimeRow] = []
    for spec, precision in candidates:
        backend = spec if not isinstance(spec, str) else None
        name = spec if isinstance(spec, str) else spec.name
        row = RuntimeRow(label_of(name, precision), name, precision, "timed")
        rows.append(row)
        if backend is None:
            from steelyard.backends.registry import get_backend

            backend = get_backend(name)
            ok = backend.available()
            if not ok:
                if name in required:
                    require_backend(name)  # raises the one-line "not available" error
                row.status, row.note = "skipped", ok.reason
                continue
        if (name, precision) == ("torch", "fp32"):
            row.model = module
            continue
        _build(backend, precision, module, inputs, calibration, threads, task, reference, row)
    for label, model in (extra or {}).items():
        rows.append(RuntimeRow(label, "given", "", "timed", note="built and checked by its own run", model=model))
    timed = [r for r in rows if r.model is not None]
    if not timed or timed[0].label != BASELINE:
        raise SteelyardError("the runtime table needs torch fp32 eager as its first candidate (the baseline)")
    batch = next(iter(inputs.values())).shape[0]
    timing = time_interleaved({r.label: _caller(r.model, inputs) for r in timed}, batch_size=int(batch),
                              warmup=warmup, rounds=rounds, threads=threads)
    for r in timed:
        r.stats, r.speedup = timing.stats[r.label], timing.speedups[r.label]
    return RuntimeTable(rows, fastest(timing), timing)


def versus(table: RuntimeTable, label: str) -> list[Speedup]:
    """``label``'s speedup over every other timed row (each runtime alone), from the same interleaved
    rounds: a percentile bootstrap over paired rounds, as for the speedups over torch fp32 eager."""
    from steelyard.profiling.interleaved import paired_speedup

    samples = {r.label: r.stats.samples for r in table.rows if r.stats is not None}
    return [paired_speedup(other, label, samples) for other in samples if other != label]


def _caller(model: nn.Module, inputs: Mapping[str, torch.Tensor]) -> Any:
    def call() -> Any:
        return run_module(model, inputs)

    return call
