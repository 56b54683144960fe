"""What one device can do: memory, bandwidth, peak throughput per dtype, power and price.

A :class:`HardwareSpec` is the same type whether it comes from the catalog (datasheet numbers)
or from measuring this machine (``measured=True``), so every estimate downstream treats both
alike and can still say which one it used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from steelyard.errors import HardwareError
from steelyard.units import Bytes, BytesPerSecond, FlopsPerSecond, Usd, Watts

#: The dtypes a spec may carry a peak for. int8 peaks are integer operations per second (TOPS).
DTYPES: tuple[str, ...] = ("float32", "float16", "bfloat16", "int8")

#: Device kinds the catalog knows.
KINDS: tuple[str, ...] = ("cpu", "gpu", "phone", "edge")

_ALIASES: dict[str, str] = {
    "fp32": "float32",
    "float": "float32",
    "f32": "float32",
    "fp16": "float16",
    "half": "float16",
    "f16": "float16",
    "bf16": "bfloat16",
    "i8": "int8",
    "qint8": "int8",
    "quint8": "int8",
}

# Where to look when a device has no figure for the requested dtype. A device without a
# bfloat16 path usually runs bf16 work at its float16 rate (or emulates it in float32); int8
# work without integer units runs no faster than the fastest float path it is lowered to.
_FALLBACKS: dict[str, tuple[str, ...]] = {
    "float32": (),
    "float16": ("bfloat16", "float32"),
    "bfloat16": ("float16", "float32"),
    "int8": ("float16", "bfloat16", "float32"),
}


def normalize_dtype(dtype: object) -> str:
    """Map ``"fp16"``, ``"half"``, ``torch.bfloat16``, ``"torch.int8"`` ... to a name in :data:`DTYPES`.

    Accepting torch dtypes and common spellings lets callers pass whatever they hold without
    importing torch here.
    """
    text = str(dtype).strip().lower().removeprefix("torch.")
    text = _ALIASES.get(text, text)
    if text not in DTYPES:
        raise HardwareError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    return text


class PeakLookup(NamedTuple):
    """The answer to "how fast is this device at dtype X", with the dtype actually used."""

    requested: str
    used: str
    flops: FlopsPerSecond
    note: str


@dataclass(frozen=True)
class HardwareSpec:
    """One device. All quantities are in SI base units (bytes, B/s, FLOP/s, W, USD per hour).

    ``sources`` maps each numeric catalog field (``memory_gb``, ``memory_bandwidth_gbps``,
    ``peak_tflops`` or ``peak_tflops.<dtype>``, ``power_w``, ``price_per_hour_usd``) to where
    the number comes from, so a report can print its provenance next to it.
    """

    name: str
    display_name: str
    kind: str
    memory: Bytes
    memory_bandwidth: BytesPerSecond
    peak_flops: dict[str, FlopsPerSecond]
    power: Watts
    price_per_hour: Usd | None = None
    sources: dict[str, str] = field(default_factory=dict)
    measured: bool = False
    notes: str = ""

    def resolve_peak(self, dtype: object) -> PeakLookup:
        """Find the peak for ``dtype``, falling back to a related dtype and saying so in ``note``."""
        wanted = normalize_dtype(dtype)
        if wanted in self.peak_flops:
            return PeakLookup(wanted, wanted, FlopsPerSecond(self.peak_flops[wanted]), "")
        for alt in _FALLBACKS[wanted]:
            if alt in self.peak_flops:
                note = f"{self.name} has no {wanted} peak; using its {alt} peak instead"
                return PeakLookup(wanted, alt, FlopsPerSecond(self.peak_flops[alt]), note)
        known = ", ".join(sorted(self.peak_flops)) or "none"
        raise HardwareError(f"{self.name} has no peak throughput for {wanted} (known: {known})")

    def peak_for(self, dtype: object) -> FlopsPerSecond:
        """Peak dense FLOP/s (int8: OP/s) for ``dtype``; bfloat16→float16→float32 fallback.

        Raises :class:`HardwareError` only when no usable figure exists. Use
        :meth:`resolve_peak` to learn whether a fallback was taken.
        """
        return self.resolve_peak(dtype).flops

    def source_for(self, field_name: str) -> str | None:
        """Where a number comes from; ``"peak_tflops.float16"`` falls back to ``"peak_tflops"``."""
        if field_name in self.sources:
            return self.sources[field_name]
        if field_name.startswith("peak_tflops."):
            return self.sources.get("peak_tflops")
        return None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (plain floats, SI base units) that :meth:`from_dict` reads back."""
        return {
            "name": self.name,
            "display_name": self.display_name,
            "kind": self.kind,
            "memory": float(self.memory),
            "memory_bandwidth": float(self.memory_bandwidth),
            "peak_flops": {k: float(v) for k, v in self.peak_flops.items()},
            "power": float(self.power),
            "price_per_hour": None if self.price_per_hour is None else float(self.price_per_hour),
            "sources": dict(self.sources),
            "measured": self.measured,
            "notes": self.notes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HardwareSpec:
        """Rebuild a spec from :meth:`to_dict` output, with a clear error for a malformed dict."""
        try:
            price = data.get("price_per_hour")
            spec = cls(
                name=str(data["name"]),
                display_name=str(data.get("display_name", data["name"])),
                kind=str(data["kind"]),
                memory=Bytes(data["memory"]),
                memory_bandwidth=BytesPerSecond(data["memory_bandwidth"]),
                peak_flops={normalize_dtype(k): FlopsPerSecond(v) for k, v in data["peak_flops"].items()},
                power=Watts(data["power"]),
                price_per_hour=None if price is None else Usd(price),
                sources={str(k): str(v) for k, v in (data.get("sources") or {}).items()},
                measured=bool(data.get("measured", False)),
                notes=str(data.get("notes", "")),
            )
        except KeyError as exc:
            raise HardwareError(f"hardware dict is missing field {exc.args[0]!r}") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise HardwareError(f"hardware dict has a bad value: {exc}") from None
        spec.validate()
        return spec

    def validate(self) -> None:
        """Reject values that would make every estimate downstream wrong or infinite."""
        if self.kind not in KINDS:
            raise HardwareError(f"{self.name}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        numbers: dict[str, float] = {"memory": self.memory, "memory_bandwidth": self.memory_bandwidth}
        numbers.update({f"peak_flops[{k}]": v for k, v in self.peak_flops.items()})
        numbers["power"] = self.power
        for label, value in numbers.items():
            if not math.isfinite(value) or value < 0:
                raise HardwareError(f"{self.name}: {label} must be a finite non-negative number, got {value}")
        if self.price_per_hour is not None and (not math.isfinite(self.price_per_hour) or self.price_per_hour < 0):
            raise HardwareError(f"{self.name}: price_per_hour must be non-negative, got {self.price_per_hour}")
        for key in self.peak_flops:
            if key not in DTYPES:
                raise HardwareError(f"{self.name}: unknown dtype {key!r} in peak_flops")
