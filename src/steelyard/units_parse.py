"""Parse user-typed quantities (``50ms``, ``4GB``, ``90%``, ``$0.01``, ``10k``, ``6mo``) into typed values.

Units are explicit: ``GB`` is 10^9 bytes and ``GiB`` 2^30 bytes; a latency needs a unit (``50`` alone
could be seconds or milliseconds). An unknown unit raises :class:`ConfigError` naming the option, what
was typed and every valid unit, on one line.
"""

from __future__ import annotations

import re

from steelyard.errors import ConfigError
from steelyard.units import Bytes, Seconds, Usd

_NUMBER = re.compile(r"^\s*([-+]?(?:\d[\d_,]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")

DURATION_UNITS: dict[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "min": 60.0,
    "h": 3600.0,
}
BYTE_UNITS: dict[str, float] = {
    "b": 1.0,
    "kb": 1e3,
    "mb": 1e6,
    "gb": 1e9,
    "tb": 1e12,
    "kib": 2.0**10,
    "mib": 2.0**20,
    "gib": 2.0**30,
    "tib": 2.0**40,
}
_BYTE_NAMES = "B, kB, MB, GB, TB (powers of 1000), KiB, MiB, GiB, TiB (powers of 1024)"
COUNT_SUFFIXES: dict[str, float] = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}
DAY_UNITS: dict[str, float] = {
    "": 1.0,
    "d": 1.0,
    "day": 1.0,
    "days": 1.0,
    "w": 7.0,
    "wk": 7.0,
    "week": 7.0,
    "weeks": 7.0,
    "mo": 30.4375,
    "month": 30.4375,
    "months": 30.4375,
    "y": 365.25,
    "yr": 365.25,
    "year": 365.25,
    "years": 365.25,
}


def _split(text: str, option: str, example: str) -> tuple[float, str]:
    match = _NUMBER.match(str(text))
    if not match:
        raise ConfigError(f"{option} must be a number with a unit such as {example}, got '{text}'")
    raw = match.group(1).replace("_", "").replace(",", "")
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{option} must be a number with a unit such as {example}, got '{text}'") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ConfigError(f"{option} must be a finite number, got '{text}'")
    return value, match.group(2)


def _non_negative(value: float, option: str, text: str) -> None:
    if value < 0:
        raise ConfigError(f"{option} cannot be negative, got '{text}'")


def parse_duration(text: str, option: str = "--max-latency") -> Seconds:
    """``50ms`` → 0.05 s; ``2 s``, ``300us``, ``1.5min``. A bare number is refused (which unit?)."""
    value, unit = _split(text, option, "50ms")
    valid = "ns, us (µs), ms, s, min, h"
    if not unit:
        raise ConfigError(f"{option} '{text}' has no unit; write it as e.g. {text.strip()}ms or {text.strip()}s "
                          f"(valid units: {valid})")
    key = unit if unit in DURATION_UNITS else unit.lower()
    key = {"secs": "s", "second": "s", "seconds": "s", "mins": "min", "minute": "min", "minutes": "min",
           "hr": "h", "hour": "h", "hours": "h", "msec": "ms", "millisecond": "ms", "milliseconds": "ms"}.get(key, key)
    if key not in DURATION_UNITS:
        raise ConfigError(f"{option}: unknown time unit '{unit}' in '{text}'; valid units: {valid}")
    _non_negative(value, option, text)
    return Seconds(value * DURATION_UNITS[key])


def parse_bytes(text: str, option: str = "--max-memory") -> Bytes:
    """``4GB`` → 4e9 bytes, ``4GiB`` → 4·2^30 bytes (case-insensitive; ``B`` is bytes, never bits)."""
    value, unit = _split(text, option, "4GB or 4GiB")
    if not unit:
        raise ConfigError(f"{option} '{text}' has no unit; write it as e.g. {text.strip()}GB or "
                          f"{text.strip()}GiB (valid units: {_BYTE_NAMES})")
    key = unit.lower().replace("bytes", "b").replace("byte", "b")
    if key not in BYTE_UNITS:
        raise ConfigError(f"{option}: unknown memory unit '{unit}' in '{text}'; valid units: {_BYTE_NAMES}")
    _non_negative(value, option, text)
    return Bytes(value * BYTE_UNITS[key])


def parse_fraction(text: str, option: str = "--min-accuracy") -> float:
    """``0.9`` or ``90%`` → 0.9. A bare number above 1 is refused (did you mean a percentage?)."""
    value, unit = _split(text, option, "0.9 or 90%")
    if unit in ("%", "pct", "percent"):
        value /= 100.0
    elif unit:
        raise ConfigError(f"{option}: unknown unit '{unit}' in '{text}'; write a fraction (0.9) or a percentage (90%)")
    elif value > 1:
        raise ConfigError(f"{option} must be a fraction in [0, 1] or a percentage; did you mean {text.strip()}%?")
    if not 0 <= value <= 1:
        raise ConfigError(f"{option} must lie between 0 and 1 (0% and 100%), got '{text}'")
    return value


def parse_usd(text: str, option: str = "--max-cost-per-1k") -> Usd:
    """``0.01``, ``$0.01``, ``0.01 USD``, ``1c`` / ``1 cent`` → dollars."""
    cleaned = str(text).strip()
    if cleaned.startswith("$"):
        cleaned = cleaned[1:]
    value, unit = _split(cleaned, option, "0.01 or $0.01")
    scale = {"": 1.0, "usd": 1.0, "$": 1.0, "c": 0.01, "¢": 0.01, "cent": 0.01, "cents": 0.01}
    if unit.lower() not in scale:
        raise ConfigError(f"{option}: unknown currency unit '{unit}' in '{text}'; valid: USD ($0.01, 0.01 USD) "
                          "or cents (1c)")
    _non_negative(value, option, text)
    return Usd(value * scale[unit.lower()])


def parse_count(text: str, option: str = "--requests-per-day") -> float:
    """``10000``, ``10k``, ``2.5M``, ``1e6``, ``1B`` → a plain number (also ``10k/day``)."""
    cleaned = str(text).strip()
    for tail in ("/day", "/d", " per day"):
        if cleaned.lower().endswith(tail):
            cleaned = cleaned[: -len(tail)]
    value, unit = _split(cleaned, option, "10k or 1e6")
    if unit.lower() not in COUNT_SUFFIXES:
        raise ConfigError(f"{option}: unknown suffix '{unit}' in '{text}'; valid: k (thousand), M (million), "
                          "B/G (billion), T (trillion), or none")
    _non_negative(value, option, text)
    return value * COUNT_SUFFIXES[unit.lower()]


def parse_days(text: str, option: str = "--days") -> float:
    """``365``, ``90d``, ``12w``, ``6mo``, ``1y`` → days (a month is 30.44 days, a year 365.25)."""
    value, unit = _split(text, option, "365, 90d, 6mo or 1y")
    if unit.lower() not in DAY_UNITS:
        raise ConfigError(f"{option}: unknown period unit '{unit}' in '{text}'; valid: d (days), w (weeks), "
                          "mo (months), y (years), or none (days)")
    if value <= 0:
        raise ConfigError(f"{option} must be positive, got '{text}'")
    return value * DAY_UNITS[unit.lower()]
