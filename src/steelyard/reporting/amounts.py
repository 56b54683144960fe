"""Small amounts without scientific notation: dollars per inference, millijoules, short device times."""

from __future__ import annotations

import math

from steelyard.reporting.formatting import fmt_amount, fmt_seconds

__all__ = ["hours", "joules", "small", "usd"]


def small(x: float | None, prefix: str = "", suffix: str = "") -> str:
    """Like fmt_amount, but tiny amounts in plain decimals with three significant digits (no 1e-06)."""
    if x is None:
        return "—"
    x = float(x)
    if x == 0 or abs(x) >= 0.001:
        return fmt_amount(x, prefix=prefix, suffix=suffix)
    decimals = -math.floor(math.log10(abs(x))) + 2
    return f"{prefix}{x:.{decimals}f}{suffix}"


def usd(x: float | None) -> str:
    return small(x, prefix="$")


def joules(x: float | None) -> str:
    if x is None:
        return "—"
    x = float(x)
    for scale, unit in ((1.0, "J"), (1e-3, "mJ"), (1e-6, "µJ")):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x / 1e-9:.3g} nJ" if x else "0 J"


def hours(x: float | None) -> str:
    """Device time: hours when long, a duration when short."""
    if x is None:
        return "—"
    seconds = x * 3600
    if x >= 2:
        return fmt_amount(x, suffix=" h")
    if seconds >= 120:
        return f"{seconds / 60:.3g} min"
    return fmt_seconds(seconds)
