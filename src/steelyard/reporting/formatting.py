"""Human-readable numbers with SI (or binary, for bytes) prefixes and their unit."""

from __future__ import annotations

import math

from steelyard.units import Bytes, Quantity, Seconds

_SI = ["", "k", "M", "G", "T", "P", "E"]
_BINARY = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]


def human(value: float | None, unit: str = "", *, base: int = 1000, digits: int = 3) -> str:
    """``human(2.5e9, "FLOP")`` → ``'2.50 GFLOP'``; ``human(3*2**30, "B", base=1024)`` → ``'3.00 GiB'``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    prefixes = _BINARY if base == 1024 else _SI
    magnitude = abs(float(value))
    index = 0
    while magnitude >= base and index < len(prefixes) - 1:
        magnitude /= base
        index += 1
    scaled = float(value) / (base**index)
    # Three significant digits, keeping trailing zeros (2.50, not 2.5) so columns line up.
    decimals = max(0, digits - len(str(int(abs(scaled)))))
    text = f"{scaled:.{decimals}f}"
    return f"{text} {prefixes[index]}{unit}".rstrip()


def fmt(q: float | None) -> str:
    """Format a typed quantity by its own unit (seconds in ms/µs, bytes in binary units)."""
    if q is None:
        return "—"
    if isinstance(q, Seconds):
        return fmt_seconds(float(q))
    if isinstance(q, Bytes):
        return human(float(q), "B", base=1024)
    if isinstance(q, Quantity):
        return human(float(q), q.unit, base=q.base)
    return human(float(q))


def fmt_seconds(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.3g} h"
    if seconds >= 100:
        return f"{seconds / 60:.3g} min"
    if seconds >= 1:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def fmt_count(n: float | None) -> str:
    """Parameter-style counts: 6.74 B, 22.7 M."""
    if n is None:
        return "—"
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.3g} {suffix}"
    return f"{n:.0f}"


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def fmt_amount(x: float | None, prefix: str = "", suffix: str = "") -> str:
    """Thousands separators for large amounts, three significant digits for small ones."""
    if x is None:
        return "—"
    body = f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"
    return f"{prefix}{body}{suffix}"
