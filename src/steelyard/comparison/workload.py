"""Serving recommendation: which model, precision, device and batch meet a TTFT / TPOT / cost target at a load.

A workload is ``prompt=P,output=N,rps=R`` (requests per second). Each candidate (a model at a
precision, with its :class:`~steelyard.profiling.generation_report.GenerationReport`) gives one
:class:`ServingOption` per device and batch: a replica (one device, or a tensor-parallel group)
serves ``batch / e2e`` requests per second with static batching, so the load needs
``ceil(R / that)`` replicas. The recommendation is the feasible option with the lowest $ per day
(fewest devices on a tie); when none is feasible, :class:`Shortfall` entries say, per limit, the best
any option reaches and where, which is what would have to give. Structured data only: rendering
lives in ``reporting/``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from steelyard.errors import ConfigError
from steelyard.profiling.generation_report import GenerationReport
from steelyard.units import Seconds, Usd

_KEYS = {"prompt": "prompt", "prompt_len": "prompt", "input": "prompt", "output": "output", "new_tokens": "output",
         "rps": "rps"}
_COUNT = re.compile(r"^(\d+(?:\.\d+)?)\s*([kKmM]?)$")


@dataclass(frozen=True)
class ServingWorkload:
    """Every request has ``prompt`` tokens in and ``output`` tokens out; ``rps`` arrive per second."""

    prompt: int
    output: int
    rps: float

    def __post_init__(self) -> None:
        if self.prompt < 1 or self.output < 1 or not self.rps > 0:
            raise ConfigError(f"--workload needs prompt >= 1, output >= 1 and rps > 0, got {self}")


def _tokens(key: str, text: str) -> int:
    match = _COUNT.match(text.strip())
    if not match:
        raise ConfigError(f"--workload {key}={text}: expected a token count such as 1024 or 4k")
    scale = {"": 1, "k": 1e3, "m": 1e6}[match.group(2).lower()]
    return int(float(match.group(1)) * scale)


def _rate(text: str) -> float:
    value = text.strip().lower().removesuffix("/s").removesuffix("rps").strip()
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"--workload rps={text}: expected requests per second such as 5 or 0.5/s") from None


def parse_workload(text: str) -> ServingWorkload:
    """``"prompt=1024,output=256,rps=5"`` → :class:`ServingWorkload`; unknown keys or units: one clear error."""
    values: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        key, sep, value = part.partition("=")
        name = _KEYS.get(key.strip().lower())
        if not sep or name is None:
            raise ConfigError(f"--workload: unknown key {key.strip()!r}; expected prompt=, output=, rps= "
                              "(e.g. prompt=1024,output=256,rps=5)")
        values[name] = value
    missing = [k for k in ("prompt", "output", "rps") if k not in values]
    if missing:
        raise ConfigError(f"--workload is missing {', '.join(missing)} (e.g. prompt=1024,output=256,rps=5)")
    return ServingWorkload(_tokens("prompt", values["prompt"]), _tokens("output", values["output"]),
                           _rate(values["rps"]))


@dataclass(frozen=True)
class ServingLimits:
    max_ttft: Seconds | None = None
    max_tpot: Seconds | None = None
    max_cost_per_1m: Usd | None = None  # $ per 1M output tokens

    def checks(self) -> list[tuple[str, float]]:
        return [(name, float(v)) for name, v in (("ttft", self.max_ttft), ("tpot", self.max_tpot),
                                                 ("cost_per_1m", self.max_cost_per_1m)) if v is not None]


@dataclass(frozen=True)
class ServingOption:
    """One way to serve the workload: a model at a precision, on a device type, at a batch size."""

    model: str
    dtype: str
    hardware: str
    batch: int
    devices_per_replica: int
    replicas: int
    ttft: Seconds
    tpot: Seconds
    cost_per_1m: Usd | None  # $ per 1M output tokens at this batch (None: the device has no price)
    usd_per_day: Usd | None

    @property
    def devices(self) -> int:
        return self.devices_per_replica * self.replicas

    def value(self, check: str) -> float:
        raw = {"ttft": self.ttft, "tpot": self.tpot, "cost_per_1m": self.cost_per_1m}[check]
        return math.inf if raw is None else float(raw)


@dataclass(frozen=True)
class Shortfall:
    """A limit no option meets: the best any option reaches, and which option that is."""

    check: str
    limit: float
    best: float
    option: ServingOption


@dataclass
class Recommendation:
    workload: ServingWorkload
    limits: ServingLimits
    best: ServingOption | None
    feasible: list[ServingOption]
    considered: int
    shortfalls: list[Shortfall] = field(default_factory=list)
    #: When every limit is reachable alone but not together: the option nearest to meeting all of them.
    closest: ServingOption | None = None


def serving_options(report: GenerationReport, workload: ServingWorkload) -> list[ServingOption]:
    """Every (device, batch) of ``report`` that fits in memory, sized for ``workload.rps``."""
    out = []
    for row in report.hardware:
        for b in [*row.batches, *([row.max_batch_projection] if row.max_batch_projection else [])]:
            if not b.fits or not float(b.e2e) > 0:
                continue
            per_replica = b.batch / float(b.e2e)
            replicas = max(1, math.ceil(workload.rps / per_replica))
            price = None if row.price_per_hour is None else float(row.price_per_hour)
            devices = replicas * row.devices
            out.append(ServingOption(
                model=report.model, dtype=report.dtype, hardware=row.hardware, batch=b.batch,
                devices_per_replica=row.devices, replicas=replicas, ttft=b.ttft, tpot=b.tpot,
                cost_per_1m=b.cost_per_1m_output, usd_per_day=None if price is None else Usd(devices * price * 24)))
    return list(dict.fromkeys(out))


def _meets(option: ServingOption, limits: ServingLimits) -> bool:
    return all(option.value(check) <= limit for check, limit in limits.checks())


def recommend(workload: ServingWorkload, limits: ServingLimits, options: Iterable[ServingOption]) -> Recommendation:
    """The cheapest option per day meeting every limit, or what would have to give when none does."""
    options = list(options)
    feasible = sorted((o for o in options if _meets(o, limits)),
                      key=lambda o: (math.inf if o.usd_per_day is None else float(o.usd_per_day), o.devices,
                                     float(o.tpot)))
    rec = Recommendation(workload, limits, feasible[0] if feasible else None, feasible, len(options))
    if feasible or not options:
        return rec
    for check, limit in limits.checks():
        nearest = min(options, key=lambda o, check=check: o.value(check))
        if nearest.value(check) > limit:
            rec.shortfalls.append(Shortfall(check, limit, nearest.value(check), nearest))
    if not rec.shortfalls:
        rec.closest = min(options, key=lambda o: max(o.value(c) / lim if lim else math.inf
                                                     for c, lim in limits.checks()))
    return rec
