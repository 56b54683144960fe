"""Tests of steelyard.hardware: catalog provenance, lookup, spec round trip, roofline, local detection."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from importlib import resources

import psutil
import pytest
import yaml

from steelyard.errors import HardwareError
from steelyard.hardware import (
    DTYPES,
    HardwareSpec,
    RooflineBound,
    catalog_defaults,
    detect_local,
    get_hardware,
    load_catalog,
    parse_hardware_list,
    roofline,
)
from steelyard.hardware.catalog import missing_sources
from steelyard.units import Bytes, BytesPerSecond, FlopsPerSecond, Seconds, Usd, Watts

EXPECTED_NAMES = {
    "laptop-cpu",
    "server-cpu",
    "t4",
    "v100",
    "a10g",
    "l4",
    "a100-40gb",
    "a100-80gb",
    "h100-sxm",
    "h100-pcie",
    "h200",
    "rtx-4090",
    "phone",
    "raspberry-pi-5",
    "apple-m2",
}
NUMERIC_FIELDS = ("memory_gb", "memory_bandwidth_gbps", "power_w", "price_per_hour_usd")


def _raw_yaml() -> dict:
    text = resources.files("steelyard.hardware").joinpath("catalog.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _spec(**overrides: object) -> HardwareSpec:
    fields: dict = {
        "name": "toy",
        "display_name": "Toy device",
        "kind": "gpu",
        "memory": Bytes(8 * 1024**3),
        "memory_bandwidth": BytesPerSecond(100e9),
        "peak_flops": {"float32": FlopsPerSecond(10e12)},
        "power": Watts(100.0),
        "price_per_hour": Usd(1.25),
        "sources": {"memory_gb": "made up for a test"},
        "measured": False,
        "notes": "test device",
    }
    fields.update(overrides)
    return HardwareSpec(**fields)


# ------------------------------------------------------------------------------- catalog


def test_catalog_has_the_expected_devices() -> None:
    catalog = load_catalog()
    assert set(catalog) == EXPECTED_NAMES
    for name, spec in catalog.items():
        assert spec.name == name
        assert spec.kind in {"cpu", "gpu", "phone", "edge"}
        assert not spec.measured
        assert spec.memory > 0 and spec.memory_bandwidth > 0 and spec.power > 0
        assert spec.peak_flops and set(spec.peak_flops) <= set(DTYPES)
        assert isinstance(spec.memory, Bytes) and isinstance(spec.power, Watts)


def test_every_numeric_field_in_the_yaml_has_a_source() -> None:
    raw = _raw_yaml()
    for name, entry in raw["devices"].items():
        sources = entry["sources"]
        for field in NUMERIC_FIELDS:
            if entry.get(field) is not None:
                assert sources.get(field), f"{name}: no source for {field}"
        for dtype in entry["peak_tflops"]:
            assert sources.get(f"peak_tflops.{dtype}") or sources.get("peak_tflops"), f"{name}: {dtype}"
        # Every source names where it comes from: a URL or an explicit estimate/derivation.
        for key, text in sources.items():
            assert "http" in text or any(w in text.lower() for w in ("estimate", "derived", "link above")), (
                f"{name}.{key}: {text!r}"
            )
        assert missing_sources(entry) == []
    for key in ("grid_kg_co2_per_kwh", "pue", "usable_memory_fraction"):
        assert raw["defaults"]["sources"][key]


def test_loaded_specs_expose_a_source_for_every_number() -> None:
    for spec in load_catalog().values():
        for field in ("memory_gb", "memory_bandwidth_gbps", "power_w"):
            assert spec.source_for(field), (spec.name, field)
        for dtype in spec.peak_flops:
            assert spec.source_for(f"peak_tflops.{dtype}"), (spec.name, dtype)
        if spec.price_per_hour is not None:
            assert "2024–2025" in (spec.source_for("price_per_hour_usd") or "")


def test_missing_source_is_detected() -> None:
    entry = {"memory_gb": 1, "peak_tflops": {"float32": 1.0, "int8": 2.0}, "sources": {"peak_tflops.float32": "x"}}
    assert missing_sources(entry) == ["memory_gb", "peak_tflops.int8"]


def test_catalog_numbers_are_dense_datasheet_figures_in_si_units() -> None:
    a100 = get_hardware("a100-80gb")
    assert a100.memory == 80 * 1024**3  # memory is sold in GiB
    assert a100.memory_bandwidth == pytest.approx(2039e9)
    assert a100.peak_for("bfloat16") == pytest.approx(312e12)  # dense, not the 624 sparse figure
    assert a100.peak_for("int8") == pytest.approx(624e12)
    assert get_hardware("h100-sxm").peak_for("bfloat16") == pytest.approx(989.5e12)
    assert get_hardware("h200").memory_bandwidth > get_hardware("h100-sxm").memory_bandwidth
    # Turing and Volta have no bfloat16: the catalog omits it rather than inventing a figure.
    for name in ("t4", "v100"):
        assert "bfloat16" not in get_hardware(name).peak_flops
    # Tensor cores beat the FP32 pipes on every NVIDIA datacenter GPU.
    for name in ("t4", "v100", "a10g", "l4", "a100-40gb", "h100-pcie", "h200"):
        spec = get_hardware(name)
        assert spec.peak_for("float16") > spec.peak_for("float32")
    for name in ("laptop-cpu", "phone", "raspberry-pi-5", "apple-m2"):
        assert get_hardware(name).price_per_hour is None
    assert get_hardware("t4").price_per_hour is not None


def test_catalog_defaults() -> None:
    d = catalog_defaults()
    assert 0.2 < d.grid_kg_co2_per_kwh < 0.8
    assert 1.0 <= d.pue <= 1.6
    assert 0 < d.usable_memory_fraction <= 1
    assert set(d.sources) >= {"grid_kg_co2_per_kwh", "pue", "usable_memory_fraction"}
    assert "ember" in d.sources["grid_kg_co2_per_kwh"].lower()


# -------------------------------------------------------------------------------- lookup


@pytest.mark.parametrize("name", ["A100-80GB", " a100-80gb ", "A100_80GB"])
def test_lookup_is_case_and_separator_insensitive(name: str) -> None:
    assert get_hardware(name) is load_catalog()["a100-80gb"]


def test_unknown_name_suggests_the_closest_and_lists_valid_ones() -> None:
    with pytest.raises(HardwareError) as info:
        get_hardware("a100")
    message = str(info.value)
    assert "\n" not in message
    hint, _, valid = message.partition("valid names:")
    # Both A100 variants are suggested first, before any looser spelling match such as v100.
    assert hint.split("did you mean ")[1].startswith("a100-40gb or a100-80gb")
    for name in EXPECTED_NAMES | {"local"}:
        assert name in valid

    with pytest.raises(HardwareError) as info:
        get_hardware("t5")
    hint = str(info.value).partition("valid names:")[0]
    assert hint.split("did you mean ")[1].startswith("t4")


def test_unknown_name_with_nothing_close_still_lists_valid_names() -> None:
    with pytest.raises(HardwareError, match=r"unknown hardware 'zzzz'; valid names: laptop-cpu"):
        get_hardware("zzzz")


def test_parse_hardware_list_keeps_order_and_drops_repeats() -> None:
    specs = parse_hardware_list("t4, A100-80GB,,t4 ,h100-sxm")
    assert [s.name for s in specs] == ["t4", "a100-80gb", "h100-sxm"]
    with pytest.raises(HardwareError):
        parse_hardware_list(" , ")
    with pytest.raises(HardwareError, match="t4"):
        parse_hardware_list("t4,t5")


# ---------------------------------------------------------------------------------- spec


def test_spec_dict_round_trip_through_json() -> None:
    for spec in [*load_catalog().values(), _spec(price_per_hour=None, measured=True)]:
        data = json.loads(json.dumps(spec.to_dict()))
        back = HardwareSpec.from_dict(data)
        assert back == spec
        assert isinstance(back.memory, Bytes)
        assert isinstance(back.memory_bandwidth, BytesPerSecond)
        assert all(isinstance(v, FlopsPerSecond) for v in back.peak_flops.values())
        assert back.price_per_hour is None or isinstance(back.price_per_hour, Usd)


def test_from_dict_rejects_malformed_input() -> None:
    data = _spec().to_dict()
    del data["memory"]
    with pytest.raises(HardwareError, match="memory"):
        HardwareSpec.from_dict(data)
    bad = _spec().to_dict() | {"kind": "toaster"}
    with pytest.raises(HardwareError, match="kind"):
        HardwareSpec.from_dict(bad)
    negative = _spec().to_dict() | {"power": -5}
    with pytest.raises(HardwareError, match="power"):
        HardwareSpec.from_dict(negative)


def test_peak_for_falls_back_and_says_so() -> None:
    fp32_only = _spec()
    assert fp32_only.peak_for("float32") == 10e12
    for dtype in ("bfloat16", "float16", "int8"):
        assert fp32_only.peak_for(dtype) == 10e12
    lookup = fp32_only.resolve_peak("bf16")
    assert (lookup.requested, lookup.used) == ("bfloat16", "float32")
    assert "no bfloat16 peak" in lookup.note

    half = _spec(peak_flops={"float32": FlopsPerSecond(1e12), "float16": FlopsPerSecond(8e12)})
    assert half.resolve_peak("bfloat16").used == "float16"
    assert half.peak_for("torch.bfloat16") == 8e12
    assert half.resolve_peak("float16").note == ""

    t4 = get_hardware("t4")
    assert t4.peak_for("bfloat16") == t4.peak_for("float16") == pytest.approx(65e12)


def test_peak_for_raises_only_when_nothing_fits() -> None:
    empty = _spec(peak_flops={})
    with pytest.raises(HardwareError, match="no peak throughput"):
        empty.peak_for("float32")
    int8_only = _spec(peak_flops={"int8": FlopsPerSecond(1e12)})
    with pytest.raises(HardwareError):  # integer units cannot stand in for float math
        int8_only.peak_for("float32")
    with pytest.raises(HardwareError, match="unknown dtype"):
        _spec().peak_for("float8")


def test_peak_for_accepts_torch_dtypes() -> None:
    torch = pytest.importorskip("torch")
    a100 = get_hardware("a100-40gb")
    assert a100.peak_for(torch.bfloat16) == a100.peak_for("bfloat16")
    assert a100.peak_for(torch.float32) == pytest.approx(19.5e12)


# ------------------------------------------------------------------------------ roofline

A100_BF16_PEAK = 312e12
A100_80_BW = 2039e9
A100_BF16_RIDGE = A100_BF16_PEAK / A100_80_BW  # ≈ 153 FLOP/byte


def test_roofline_memory_bound_below_the_ridge() -> None:
    hw = get_hardware("a100-80gb")
    flops, nbytes = 2e12, 1e11  # intensity 20 FLOP/B, far below ~153
    r = roofline(flops, nbytes, hw, "bfloat16")
    assert isinstance(r, RooflineBound)
    assert r.bound == "memory"
    assert r.arithmetic_intensity == pytest.approx(20.0)
    assert r.ridge_point == pytest.approx(A100_BF16_RIDGE)
    assert r.memory_time == pytest.approx(nbytes / A100_80_BW)
    assert r.compute_time == pytest.approx(flops / A100_BF16_PEAK)
    assert r.latency_floor == pytest.approx(nbytes / A100_80_BW)  # 49.04 ms
    assert r.attainable_flops == pytest.approx(20.0 * A100_80_BW)
    assert isinstance(r.latency_floor, Seconds)


def test_roofline_compute_bound_above_the_ridge() -> None:
    hw = get_hardware("a100-80gb")
    flops, nbytes = 2e12, 1e9  # intensity 2000 FLOP/B
    r = roofline(flops, nbytes, hw, "bfloat16")
    assert r.bound == "compute"
    assert r.latency_floor == pytest.approx(flops / A100_BF16_PEAK)  # 6.41 ms
    assert r.latency_floor == r.compute_time > r.memory_time
    assert r.attainable_flops == pytest.approx(A100_BF16_PEAK)


def test_roofline_switches_bound_at_the_ridge_point() -> None:
    hw = get_hardware("a100-80gb")
    nbytes = 1e9
    at_ridge = roofline(A100_BF16_RIDGE * nbytes, nbytes, hw, "bfloat16")
    assert at_ridge.compute_time == pytest.approx(at_ridge.memory_time)
    assert roofline(0.99 * A100_BF16_RIDGE * nbytes, nbytes, hw, "bfloat16").bound == "memory"
    assert roofline(1.01 * A100_BF16_RIDGE * nbytes, nbytes, hw, "bfloat16").bound == "compute"
    # float32 has a far lower roof, so the ridge moves left: 19.5e12 / 2039e9 ≈ 9.56 FLOP/B.
    fp32 = roofline(20 * nbytes, nbytes, hw, "float32")
    assert fp32.ridge_point == pytest.approx(19.5e12 / A100_80_BW)
    assert fp32.bound == "compute"


def test_roofline_edge_cases_and_fallback_note() -> None:
    hw = get_hardware("a100-80gb")
    no_bytes = roofline(1e12, 0, hw)
    assert math.isinf(no_bytes.arithmetic_intensity) and no_bytes.bound == "compute"
    nothing = roofline(0, 0, hw)
    assert nothing.latency_floor == 0
    with pytest.raises(HardwareError):
        roofline(-1, 1, hw)
    with pytest.raises(HardwareError):
        roofline(1, math.nan, hw)
    t4 = roofline(1e9, 1e6, get_hardware("t4"), "bf16")
    assert t4.dtype == "bfloat16" and t4.peak_flops == pytest.approx(65e12)
    assert "float16" in t4.note
    with pytest.raises(HardwareError, match="measure=False"):
        roofline(1, 1, _spec(memory_bandwidth=BytesPerSecond(0)))


# --------------------------------------------------------------------------------- local


def test_detect_local_measures_this_machine() -> None:
    spec = detect_local()
    assert spec.measured and spec.name == "local"
    assert spec.peak_for("float32") > 1e8  # even a Pi core does > 0.1 GFLOP/s
    assert spec.peak_for("float32") < 1e16
    assert spec.memory_bandwidth > 1e8
    assert spec.power > 0 and spec.price_per_hour is None
    assert "Measured" in spec.sources["peak_tflops.float32"]
    assert "Measured" in spec.sources["memory_bandwidth_gbps"]
    if spec.kind == "cpu":
        assert spec.memory == psutil.virtual_memory().total
    else:
        import torch

        assert spec.memory == torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
    assert detect_local() is spec  # cached for the process
    assert get_hardware("LOCAL") is spec
    assert [s.name for s in parse_hardware_list("local,t4")] == ["local", "t4"]
    r = roofline(1e9, 1e6, spec)
    assert r.latency_floor > 0 and r.hardware == "local"


def test_detect_local_without_measuring() -> None:
    spec = detect_local(measure=False)
    assert not spec.measured
    assert spec.peak_flops == {}
    assert spec.memory > 0
    assert any(word in spec.sources["power_w"] for word in ("Assumption", "RAPL", "NVML"))


def test_importing_hardware_does_not_import_torch() -> None:
    code = "import sys, steelyard.hardware; assert 'torch' not in sys.modules; assert 'yaml' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
