"""The one number formatter: every figure a person reads (console, Markdown, HTML) goes through here.

One rule throughout: three significant digits (``digits=``), plain decimals, never scientific
notation (``1.45329e+08 B`` is ``139 MiB``); trailing zeros dropped (``1.5 s``, ``2 GFLOP``);
amounts of 1,000 and more as whole numbers with thousands separators; a missing or NaN value is
``—``. Bytes use binary prefixes (B, KiB, MiB, GiB: one convention, the one memory sizes use),
everything else decimal SI prefixes (kFLOP, MFLOP, kJ, MJ). Negative values keep their sign and
the prefix of their magnitude (``-150 ms``).
"""

from __future__ import annotations

import math

from steelyard.units import Bytes, Joules, Quantity, Seconds, Usd

__all__ = [
    "MISSING",
    "fmt",
    "fmt_amount",
    "fmt_bytes",
    "fmt_count",
    "fmt_flops",
    "fmt_hours",
    "fmt_joules",
    "fmt_number",
    "fmt_seconds",
    "fmt_unit",
    "fmt_usd",
    "human",
    "pct",
]

#: What a missing (None) or undefined (NaN) value prints as.
MISSING = "—"

_SI = ["", "k", "M", "G", "T", "P", "E", "Z", "Y"]
_SI_SMALL = ["", "m", "µ", "n", "p"]
_BINARY = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"]


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float | int) and math.isnan(float(value)))


def _whole(x: float) -> str:
    """A whole number with separators, halves rounded away from zero (1234.5 → 1,235, as people round)."""
    n = math.floor(abs(x) + 0.5)
    return f"{'-' if x < 0 and n else ''}{n:,}"


def fmt_number(value: float | None, digits: int = 3) -> str:
    """``digits`` significant digits in plain decimals: 0.000412, 12.3, 1,235; ``—`` for None / NaN.

    The building block of every other formatter here; use it for unitless figures (a loss, a
    ratio, a metric value) instead of ``:g`` / ``:e`` format specs, which switch to exponents.
    """
    if _missing(value):
        return MISSING
    x = float(value)  # type: ignore[arg-type]
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if x == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    if magnitude >= digits - 1:
        return _whole(x)
    decimals = digits - 1 - magnitude
    text = f"{x:.{decimals}f}"
    if float(text) != 0 and math.floor(math.log10(abs(float(text)))) > magnitude:  # 9.996 → 10.00: one digit fewer
        text = f"{x:.{max(0, decimals - 1)}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _prefixed(value: float, unit: str, prefixes: list[str], base: int, digits: int,
              small: list[str] | None = None) -> str:
    magnitude = abs(value)
    index = 0
    while magnitude >= base and index < len(prefixes) - 1:
        magnitude /= base
        index += 1
    # a value that rounds up to the next prefix (999.7 → "1,000 k") moves up instead
    if index < len(prefixes) - 1 and float(fmt_number(magnitude, digits).replace(",", "")) >= base:
        magnitude /= base
        index += 1
    prefix = prefixes[index]
    if index == 0 and small and 0 < magnitude < 1:
        step = 0
        while magnitude < 1 and step < len(small) - 1:
            magnitude *= base
            step += 1
        if step and float(fmt_number(magnitude, digits).replace(",", "")) >= base:  # 999.7 mJ reads "1 J"
            magnitude /= base
            step -= 1
        prefix = small[step]
    sign = "-" if value < 0 else ""
    return f"{sign}{fmt_number(magnitude, digits)} {prefix}{unit}".rstrip()


def human(value: float | None, unit: str = "", *, base: int = 1000, digits: int = 3) -> str:
    """``human(2.5e9, "FLOP")`` → ``'2.5 GFLOP'``; ``human(3 * 2**30, "B", base=1024)`` → ``'3 GiB'``."""
    if _missing(value):
        return MISSING
    prefixes = _BINARY if base == 1024 else _SI
    return _prefixed(float(value), unit, prefixes, base, digits)  # type: ignore[arg-type]


def fmt_bytes(value: float | None, digits: int = 3) -> str:
    """Bytes with binary prefixes: ``512 B``, ``1.5 KiB``, ``139 MiB``, ``13.5 GiB``."""
    return human(value, "B", base=1024, digits=digits)


def fmt_flops(value: float | None, unit: str = "FLOP", digits: int = 3) -> str:
    """Operation counts with SI prefixes: ``2.5 GFLOP``; ``unit="FLOP/s"`` or ``"MAC"`` for the others."""
    return human(value, unit, digits=digits)


def fmt_joules(value: float | None, digits: int = 3) -> str:
    """Energy: ``3.2 mJ``, ``2.99 J``, ``4.1 kJ``, ``12 MJ``."""
    if _missing(value):
        return MISSING
    return _prefixed(float(value), "J", _SI, 1000, digits, small=_SI_SMALL)  # type: ignore[arg-type]


def fmt_seconds(value: float | None, digits: int = 3) -> str:
    """A duration: ``850 ns``, ``12.3 µs``, ``150 ms``, ``1.5 s``, ``2.5 min``, ``3.2 h``, ``1,234 h``.

    A negative duration (a saving, a difference) keeps its sign: ``-150 ms``.
    """
    if _missing(value):
        return MISSING
    x = float(value)  # type: ignore[arg-type]
    if math.isinf(x):
        return fmt_number(x)
    sign, s = ("-" if x < 0 else ""), abs(x)
    if s == 0:
        return "0 s"
    for limit, scale, unit in ((3600, 3600, "h"), (100, 60, "min"), (1, 1, "s"), (1e-3, 1e-3, "ms"),
                               (1e-6, 1e-6, "µs")):
        if s >= limit * (1 - 0.5 * 10 ** -(digits - 1)):  # 0.99996 s reads "1 s", not "1,000 ms"
            return f"{sign}{fmt_number(s / scale, digits)} {unit}"
    return f"{sign}{fmt_number(s / 1e-9, digits)} ns"


def fmt_hours(value: float | None, digits: int = 3) -> str:
    """Device time given in hours: hours when long (``12 h``, ``1,234 h``), a duration when short."""
    if _missing(value):
        return MISSING
    x = float(value)  # type: ignore[arg-type]
    if abs(x) >= 2:
        return f"{fmt_number(x, digits)} h"
    return fmt_seconds(x * 3600, digits)


def fmt_amount(value: float | None, prefix: str = "", suffix: str = "", digits: int = 3) -> str:
    """An amount with a fixed unit around it: ``fmt_amount(0.00041, suffix=" kWh")`` → ``'0.00041 kWh'``.

    Large amounts get thousands separators (``12,345``), small ones keep three significant digits in
    plain decimals, so a tiny cost never rounds to zero. A negative amount puts its sign before the
    prefix (``-$1.5``).
    """
    if _missing(value):
        return MISSING
    x = float(value)  # type: ignore[arg-type]
    sign = "-" if x < 0 else ""
    return f"{sign}{prefix}{fmt_number(abs(x), digits)}{suffix}"


def fmt_usd(value: float | None, digits: int = 3) -> str:
    """Dollars: ``$0.0004`` (never ``$0.00``), ``$1.23``, ``$12,345``."""
    return fmt_amount(value, prefix="$", digits=digits)


def fmt_count(value: float | None, digits: int = 3) -> str:
    """Parameter-style counts: ``22.7 M``, ``6.74 B`` (billion), ``950``."""
    if _missing(value):
        return MISSING
    x = float(value)  # type: ignore[arg-type]
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{fmt_number(x / div, digits)} {suffix}"
    return _whole(x) if x.is_integer() else fmt_number(x, digits)


def pct(value: float | None, decimals: int = 1) -> str:
    """A fraction as a percentage: ``0.9123`` → ``'91.2%'``."""
    if _missing(value):
        return MISSING
    return f"{100 * float(value):.{decimals}f}%"  # type: ignore[arg-type]


def fmt(q: float | None) -> str:
    """A typed quantity (:mod:`steelyard.units`) in its own unit; a plain float as a number."""
    if _missing(q):
        return MISSING
    if isinstance(q, Seconds):
        return fmt_seconds(float(q))
    if isinstance(q, Bytes):
        return fmt_bytes(float(q))
    if isinstance(q, Joules):
        return fmt_joules(float(q))
    if isinstance(q, Usd):
        return fmt_usd(float(q))
    if isinstance(q, Quantity):
        if q.prefixed:
            return human(float(q), q.unit, base=q.base)
        return fmt_amount(float(q), suffix=f" {q.unit}")
    return fmt_number(float(q))  # type: ignore[arg-type]


#: Unit strings as runs store them (``metrics={"latency_median_s": (0.004, "s")}``) → a formatter.
_BY_UNIT = {
    "s": fmt_seconds,
    "B": fmt_bytes,
    "FLOP": fmt_flops,
    "MAC": lambda v: fmt_flops(v, "MAC"),
    "FLOP/s": lambda v: fmt_flops(v, "FLOP/s"),
    "B/s": lambda v: human(v, "B/s", base=1024),
    "J": fmt_joules,
    "$": fmt_usd,
    "USD": fmt_usd,
    "h": fmt_hours,
}


def fmt_unit(value: float | None, unit: str | None) -> str:
    """A stored number with its unit string: ``fmt_unit(1.45e8, "B")`` → ``'138 MiB'``.

    Unitless large integers get separators (``124,439,808``), other unitless values four
    significant digits.
    """
    if _missing(value):
        return MISSING
    if unit in _BY_UNIT:
        return _BY_UNIT[unit](value)
    if unit == "1/s":
        return f"{fmt_number(value)}/s"
    if unit == "%":
        return f"{fmt_number(value)}%"
    x = float(value)  # type: ignore[arg-type]
    if not unit and x.is_integer():
        return _whole(x)
    return fmt_number(x, 4) + (f" {unit}" if unit else "")
