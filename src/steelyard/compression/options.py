"""Helpers for the frozen config dataclasses of compression methods (no heavy imports)."""

from __future__ import annotations

from dataclasses import field
from typing import Any

from steelyard.errors import ConfigError


def option(default: Any, help: str) -> Any:
    """A config field with its help text, shown by ``list_methods`` and in error messages."""
    return field(default=default, metadata={"help": help})


def check_fraction(method: str, name: str, value: float, *, allow_zero: bool = False) -> None:
    """Refuse a fraction outside (0, 1) ([0, 1) when ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{method}: {name} must be a number in (0, 1), got {value!r}")
    low_ok = value >= 0 if allow_zero else value > 0
    if not (low_ok and value < 1):
        interval = "[0, 1)" if allow_zero else "(0, 1)"
        raise ConfigError(f"{method}: {name} must be in {interval}, got {value}")


def check_choice(method: str, name: str, value: Any, choices: tuple[Any, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{method}: {name} must be one of {', '.join(map(str, choices))}; got {value!r}")


def check_positive_int(method: str, name: str, value: int, *, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{method}: {name} must be an integer >= {minimum}, got {value!r}")
