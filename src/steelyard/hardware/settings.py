"""Your own hardware and prices: a user catalog file and single-figure overrides, as one config.

Every command that projects onto hardware (``profile``, ``estimate``, ``compare``, ``compress``,
``hardware list``) takes these options from this one dataclass (``cli/options.py`` generates
them) and applies them with :meth:`HardwareSettings.apply` before any estimate is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from steelyard.errors import HardwareError


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class HardwareSettings:
    """A user catalog and the grid intensity, PUE and hourly prices that override the catalog's."""

    catalog: Path | None = field(default=None, metadata=_help(
        "your hardware catalog (YAML, the built-in schema with a source per number: 'devices' and/or 'defaults'), "
        "merged over the built-in one; default $STEELYARD_CATALOG"))
    grid_intensity: float | None = field(default=None, metadata=_help(
        "grid carbon intensity in gCO2e/kWh (default: the catalog's world average)"))
    pue: float | None = field(default=None, metadata=_help(
        "data-centre PUE (>= 1) that multiplies device energy (default: the catalog's)"))
    price: str | None = field(default=None, metadata=_help(
        "$ per device-hour: NAME=USD[,NAME=USD...], or one number when --hardware names one device"))

    def prices(self, hardware: Sequence[str] = ()) -> dict[str, float]:
        """``--price`` as device → $ per hour; a bare number needs exactly one device in ``hardware``."""
        if not self.price or not self.price.strip():
            return {}
        out: dict[str, float] = {}
        for part in (p.strip() for p in self.price.split(",")):
            if not part:
                continue
            name, sep, value = part.rpartition("=")
            if not sep:
                names = list(dict.fromkeys(h.strip().lower() for h in hardware if h.strip()))
                if len(names) != 1:
                    raise HardwareError(f"--price {part}: name the device (NAME=USD) when --hardware lists "
                                        f"{len(names) or 'no'} devices")
                name = names[0]
            try:
                out[name.strip()] = float(value)
            except ValueError:
                raise HardwareError(f"--price {part!r}: not a number of $ per hour") from None
        return out

    def apply(self, hardware: Sequence[str] = ()) -> None:
        """Make these the process's catalog and overrides (:func:`steelyard.hardware.configure`)."""
        from steelyard.hardware.catalog import configure

        configure(catalog=self.catalog, grid_g_co2_per_kwh=self.grid_intensity, pue=self.pue,
                  prices=self.prices(hardware))
