"""A model and its compressed copy projected onto catalog devices, the way ``profile`` projects one model.

``compress --hardware t4,...`` times both models here (the measured table) and, for each catalog
device, profiles both at the timing batch without timing them (one counted forward each) and reads
the same :func:`~steelyard.profiling.accessibility.verdict` a profile shows: roofline floor over an
assumed efficiency, energy at the wall, dollars per 1,000 samples. The ratio of two projections is a
ratio of counted work and bytes on that device's roofline, not a measurement, and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from steelyard.hardware import LOCAL_NAME, parse_hardware_list
from steelyard.models.handle import ModelHandle
from steelyard.profiling.report import HardwareVerdict


@dataclass
class ProjectedPair:
    """One device: the original's and the compressed model's verdicts at the same batch."""

    hardware: str
    batch_size: int
    before: HardwareVerdict
    after: HardwareVerdict
    #: before / after projected latency per batch (> 1: the compressed model is projected faster).
    projected_speedup: float | None
    note: str = "projected (roofline floor / assumed efficiency), not measured"


def catalog_devices(hardware: Sequence[str]) -> list[str]:
    """The catalog names in ``hardware`` (checked now, so a typo fails before any work); ``local`` left out."""
    specs = parse_hardware_list(",".join(hardware)) if hardware else []
    return [spec.name for spec in specs if spec.name != LOCAL_NAME]


def project_pair(original: ModelHandle, compressed: ModelHandle, hardware: Sequence[str],
                 batch_size: int) -> list[ProjectedPair]:
    """Both models profiled (not timed) at ``batch_size`` and projected onto each catalog device in ``hardware``."""
    from steelyard.profiling.profile import ProfileConfig, profile

    names = tuple(catalog_devices(hardware))
    if not names:
        return []
    cfg = ProfileConfig(hardware=names, measure=False)
    cards = [profile(h.with_inputs(h.inputs_for_batch(batch_size)), cfg) for h in (original, compressed)]
    pairs = []
    for before, after in zip(cards[0].hardware, cards[1].hardware, strict=True):
        slow, fast = float(before.projected_latency_per_batch), float(after.projected_latency_per_batch)
        pairs.append(ProjectedPair(before.hardware, batch_size, before, after, slow / fast if fast > 0 else None))
    return pairs
