"""Constraint and volume parsing: explicit units, clear errors listing the valid ones."""

from __future__ import annotations

import pytest

from steelyard.comparison.config import CompareConfig, Constraints, objective_name
from steelyard.errors import ConfigError
from steelyard.units import Bytes, Seconds, Usd
from steelyard.units_parse import parse_bytes, parse_count, parse_days, parse_duration, parse_fraction, parse_usd


@pytest.mark.parametrize(("text", "seconds"), [
    ("50ms", 0.05), ("50 ms", 0.05), ("0.2s", 0.2), ("2 s", 2.0), ("300us", 300e-6), ("300µs", 300e-6),
    ("1.5min", 90.0), ("1h", 3600.0), ("250 milliseconds", 0.25), ("1e3 ns", 1e-6), ("50MS", 0.05),
])
def test_durations(text, seconds):
    value = parse_duration(text)
    assert isinstance(value, Seconds)
    assert float(value) == pytest.approx(seconds)


@pytest.mark.parametrize(("text", "n_bytes"), [
    ("4GB", 4e9), ("4 GB", 4e9), ("4GiB", 4 * 2**30), ("4gib", 4 * 2**30), ("512MiB", 512 * 2**20),
    ("512MB", 512e6), ("1.5TB", 1.5e12), ("100 bytes", 100), ("2kB", 2000), ("2KiB", 2048),
])
def test_bytes_gb_vs_gib_is_explicit(text, n_bytes):
    value = parse_bytes(text)
    assert isinstance(value, Bytes)
    assert float(value) == pytest.approx(n_bytes)


def test_fractions_and_percentages():
    assert parse_fraction("0.9") == pytest.approx(0.9)
    assert parse_fraction("90%") == pytest.approx(0.9)
    assert parse_fraction("87.5 %") == pytest.approx(0.875)
    with pytest.raises(ConfigError, match="did you mean 90%"):
        parse_fraction("90")
    with pytest.raises(ConfigError, match="between 0 and 1"):
        parse_fraction("120%")


def test_money_counts_and_periods():
    assert float(parse_usd("0.01")) == pytest.approx(0.01)
    assert isinstance(parse_usd("$0.01"), Usd)
    assert float(parse_usd("$0.01")) == pytest.approx(0.01)
    assert float(parse_usd("0.5 USD")) == pytest.approx(0.5)
    assert float(parse_usd("1c")) == pytest.approx(0.01)
    assert parse_count("10k") == 10_000 and parse_count("2.5M") == 2.5e6 and parse_count("1e6") == 1e6
    assert parse_count("1,000,000") == 1e6 and parse_count("10k/day") == 10_000 and parse_count("1B") == 1e9
    assert parse_days("365") == 365 and parse_days("90d") == 90 and parse_days("2w") == 14
    assert parse_days("1y") == pytest.approx(365.25) and parse_days("6mo") == pytest.approx(182.625)


@pytest.mark.parametrize(("parser", "text", "fragment"), [
    (parse_duration, "50 parsecs", "unknown time unit 'parsecs' in '50 parsecs'; valid units: ns, us (µs), ms, s"),
    (parse_duration, "50", "has no unit"),
    (parse_duration, "fast", "must be a number with a unit"),
    (parse_duration, "-5ms", "cannot be negative"),
    (parse_bytes, "4 parsecs", "unknown memory unit 'parsecs'"),
    (parse_bytes, "4", "has no unit"),
    (parse_bytes, "4Gb/s", "unknown memory unit"),
    (parse_usd, "3 euros", "unknown currency unit 'euros'"),
    (parse_count, "10 dozen", "unknown suffix 'dozen'"),
    (parse_days, "3 fortnights", "unknown period unit 'fortnights'"),
    (parse_days, "0", "must be positive"),
    (parse_fraction, "0.9 parsecs", "unknown unit 'parsecs'"),
])
def test_bad_units_name_the_valid_ones(parser, text, fragment):
    with pytest.raises(ConfigError) as info:
        parser(text)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_unit_lists_valid_byte_units():
    with pytest.raises(ConfigError, match=r"valid units: B, kB, MB, GB, TB \(powers of 1000\), KiB, MiB, GiB"):
        parse_bytes("4 parsecs", "--max-memory")
    with pytest.raises(ConfigError, match=r"^--max-memory"):
        parse_bytes("4 parsecs", "--max-memory")


def test_constraints_and_config_validation():
    k = Constraints(max_latency=Seconds(0.05), max_memory=Bytes(4e9), max_cost_per_1k=Usd(0.01))
    assert [c[0] for c in k.as_list()] == ["latency", "memory", "cost_per_1k"]
    with pytest.raises(ConfigError, match="needs --data"):
        CompareConfig(constraints=Constraints(min_accuracy=0.9))
    with pytest.raises(ConfigError, match="drop --config-only"):
        CompareConfig(data="bbc-news", config_only=True)
    with pytest.raises(ConfigError, match="unknown objective 'speed'"):
        CompareConfig(objectives=("accuracy", "speed"))
    assert objective_name("cost") == "cost_per_1k" and objective_name("Lifetime") == "lifetime_cost"
