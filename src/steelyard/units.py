"""Typed quantities: a number carries its unit in its type, never in a variable name.

Every quantity is a ``float`` subclass, so arithmetic and JSON serialisation work as usual;
the type only says what the number counts. One multiply-add is 2 FLOPs and 1 MAC.
Formatting with SI prefixes happens in :mod:`steelyard.reporting.formatting` only.
"""

from __future__ import annotations

from typing import ClassVar


class Quantity(float):
    """A float that knows its unit symbol."""

    unit: ClassVar[str] = ""
    #: 1000 for decimal prefixes (k, M, G); 1024 for binary ones (KiB, MiB).
    base: ClassVar[int] = 1000
    #: False for units that take no SI prefix when printed ($, kWh, kg CO2e): "1.2 kkWh" means nothing.
    prefixed: ClassVar[bool] = True

    def __repr__(self) -> str:
        return f"{type(self).__name__}({float(self)!r})"


class Flops(Quantity):
    """Floating-point operations (a multiply-add counts 2)."""

    unit = "FLOP"


class Macs(Quantity):
    """Multiply-accumulate operations (1 MAC = 2 FLOPs)."""

    unit = "MAC"


class FlopsPerSecond(Quantity):
    unit = "FLOP/s"


class Bytes(Quantity):
    unit = "B"
    base = 1024


class BytesPerSecond(Quantity):
    unit = "B/s"
    base = 1024


class Seconds(Quantity):
    unit = "s"


class Joules(Quantity):
    unit = "J"


class Watts(Quantity):
    unit = "W"


class KilowattHours(Quantity):
    unit = "kWh"
    prefixed = False


class Usd(Quantity):
    unit = "$"
    prefixed = False


class KgCO2(Quantity):
    unit = "kg CO2e"
    prefixed = False


def macs_to_flops(macs: float) -> Flops:
    """One multiply-add is two floating-point operations."""
    return Flops(2.0 * macs)


def flops_to_macs(flops: float) -> Macs:
    return Macs(flops / 2.0)


def joules_to_kwh(joules: float) -> KilowattHours:
    return KilowattHours(joules / 3.6e6)
