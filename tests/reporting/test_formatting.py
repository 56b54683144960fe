"""The one number formatter: edge cases (0, negatives, tiny, huge, NaN / None) and no exponents anywhere."""

from __future__ import annotations

import math
import re

import pytest

from steelyard.reporting.formatting import (
    MISSING,
    fmt,
    fmt_amount,
    fmt_bytes,
    fmt_count,
    fmt_flops,
    fmt_hours,
    fmt_joules,
    fmt_number,
    fmt_seconds,
    fmt_unit,
    fmt_usd,
    human,
    pct,
)
from steelyard.units import Bytes, Flops, Joules, KgCO2, KilowattHours, Seconds, Usd

EXPONENT = re.compile(r"\d[eE][-+]?\d")


@pytest.mark.parametrize(("value", "text"), [
    (0, "0"), (0.0, "0"), (1, "1"), (12.34, "12.3"), (-12.34, "-12.3"), (999.6, "1,000"), (9.996, "10"),
    (0.000412, "0.000412"), (-0.000412, "-0.000412"), (1.45329e8, "145,329,000"), (2.5, "2.5"),
    (float("inf"), "∞"), (float("-inf"), "-∞"),
])
def test_plain_numbers_keep_three_significant_digits_without_exponents(value, text):
    assert fmt_number(value) == text


@pytest.mark.parametrize("formatter", [fmt_number, fmt_seconds, fmt_bytes, fmt_flops, fmt_joules, fmt_usd,
                                       fmt_hours, fmt_count, fmt_amount, pct, human, fmt])
def test_missing_and_nan_print_a_dash(formatter):
    assert formatter(None) == MISSING and formatter(float("nan")) == MISSING


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0 s"), (0.15, "150 ms"), (-0.15, "-150 ms"), (1.5, "1.5 s"), (-1.5, "-1.5 s"), (150, "2.5 min"),
    (3 * 3600, "3 h"), (5e6, "1,389 h"), (12.3e-6, "12.3 µs"), (850e-9, "850 ns"), (0.99996, "1 s"),
    (0.0009999, "1 ms"),
])
def test_durations_scale_and_keep_their_sign(seconds, text):
    assert fmt_seconds(seconds) == text


@pytest.mark.parametrize(("n", "text"), [
    (0, "0 B"), (512, "512 B"), (1536, "1.5 KiB"), (1.45329e8, "139 MiB"), (13.5 * 2**30, "13.5 GiB"),
    (-2**20, "-1 MiB"), (1023.9, "1 KiB"), (3 * 2**50, "3 PiB"),
])
def test_bytes_use_binary_prefixes(n, text):
    assert fmt_bytes(n) == text
    assert fmt(Bytes(n)) == text


@pytest.mark.parametrize(("joules", "text"), [
    (0, "0 J"), (2.99, "2.99 J"), (0.0032, "3.2 mJ"), (4.1e-6, "4.1 µJ"), (4100, "4.1 kJ"), (1.2e7, "12 MJ"),
    (-2500, "-2.5 kJ"), (0.9997, "1 J"),
])
def test_energy_in_j_kj_mj(joules, text):
    assert fmt_joules(joules) == text
    assert fmt(Joules(joules)) == text


@pytest.mark.parametrize(("usd", "text"), [
    (0, "$0"), (0.0004, "$0.0004"), (0.000412, "$0.000412"), (1.234, "$1.23"), (12345.6, "$12,346"),
    (-1.5, "-$1.5"),
])
def test_small_dollar_amounts_never_round_to_zero(usd, text):
    assert fmt_usd(usd) == text
    assert fmt(Usd(usd)) == text


def test_flops_and_counts_carry_their_units():
    assert fmt_flops(2.5e9) == "2.5 GFLOP" and fmt(Flops(1.45329e8)) == "145 MFLOP"
    assert fmt_flops(3e12, "FLOP/s") == "3 TFLOP/s" and fmt_flops(0) == "0 FLOP"
    assert fmt_count(22_713_216) == "22.7 M" and fmt_count(6.74e9) == "6.74 B" and fmt_count(950) == "950"
    assert human(999_700, "FLOP") == "1 MFLOP"  # rounds up to the next prefix, not "1,000 kFLOP"


def test_units_without_prefixes_are_not_prefixed():
    assert fmt(KilowattHours(1234.5)) == "1,235 kWh" and fmt(KgCO2(0.0042)) == "0.0042 kg CO2e"


def test_hours_and_percentages():
    assert fmt_hours(12.0) == "12 h" and fmt_hours(0.5) == "30 min" and fmt_hours(1e-4) == "360 ms"
    assert pct(0.9123) == "91.2%" and pct(-0.05) == "-5.0%" and pct(0) == "0.0%"


def test_stored_metric_units_pick_their_formatter():
    assert fmt_unit(1.45329e8, "B") == "139 MiB" and fmt_unit(0.004, "s") == "4 ms"
    assert fmt_unit(124_439_808, None) == "124,439,808" and fmt_unit(1.4, None) == "1.4"
    assert fmt_unit(0.0004, "$") == "$0.0004" and fmt_unit(3.59, "J") == "3.59 J"
    assert fmt_unit(0.91234, "") == "0.9123" and fmt_unit(None, "s") == MISSING


@pytest.mark.parametrize("value", [0, 1e-12, -1e-12, 3.3e-7, 1.45329e8, 1e30, -4.2e21, math.pi])
def test_no_formatter_writes_an_exponent(value):
    texts = [fmt_number(value), fmt_seconds(value), fmt_bytes(value), fmt_flops(value), fmt_joules(value),
             fmt_usd(value), fmt_hours(value), fmt_count(value), fmt_amount(value), human(value),
             fmt(Seconds(value)), fmt_unit(value, None)]
    assert not [t for t in texts if EXPONENT.search(t)], texts


def test_reporting_has_no_exponent_format_specs():
    """``:e`` / ``:g`` format specs write ``1.45329e+08``: reporting formats through the formatter instead."""
    from pathlib import Path

    import steelyard.reporting as reporting

    spec = re.compile(r"(?<!%)\{[^{}%]+:[,.0-9]*[eEgG]\}")
    hits = [f"{p.name}: {line.strip()}" for p in Path(reporting.__file__).parent.glob("*.py")
            if p.name != "commands.py"  # reproduce commands write CLI arguments, not numbers for people
            for line in p.read_text(encoding="utf-8").splitlines() if spec.search(line)]
    assert hits == []


def test_no_exponent_in_the_text_of_a_report():
    """Markdown and the HTML outside its scripts (the charts' data is JSON, not text) show no 1.45329e+08."""
    from compare_fakes import fake_comparison, fake_report
    from steelyard.comparison.config import Constraints
    from steelyard.reporting.html import render_html, render_markdown, report_document

    doc = report_document([("comparison", fake_comparison(Constraints(max_latency=Seconds(0.05))), 1),
                           ("profile", fake_report("huge", 1.45329e8, 2.0, 1.45329e11, measured_ms=0.0004), 2)])
    html = re.sub(r"(?s)<script.*?</script>|<style.*?</style>", "", render_html(doc))
    assert not EXPONENT.findall(html) and not EXPONENT.findall(render_markdown(doc))
