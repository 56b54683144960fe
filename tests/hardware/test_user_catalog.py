"""Your own hardware and prices: a user catalog merged over the built-in one, and single-figure overrides.

A device added in a user file shows in ``steelyard hardware list`` and profiles project onto it; an entry
for a built-in device changes only what it gives; ``--grid-intensity``, ``--pue`` and ``--price`` move
the numbers exactly as the formulas say; a bad file is one line naming the file and the field, exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_helpers import one_line_error, steelyard
from steelyard.errors import HardwareError
from steelyard.hardware import HardwareSettings, catalog_defaults, configure, get_hardware, load_catalog

LAB_GPU = """
devices:
  lab-gpu:
    display_name: "Lab GPU"
    kind: gpu
    memory_gb: 24
    memory_bandwidth_gbps: 1000
    peak_tflops: {float32: 80, float16: 160}
    power_w: 300
    price_per_hour_usd: 0.5
    sources:
      memory_gb: "our spec sheet"
      memory_bandwidth_gbps: "our spec sheet"
      peak_tflops: "our spec sheet"
      power_w: "our spec sheet"
      price_per_hour_usd: "our contract"
  t4:
    price_per_hour_usd: 0.2
    sources: {price_per_hour_usd: "our contract"}
"""


@pytest.fixture(autouse=True)
def _fresh_catalog(monkeypatch):
    monkeypatch.delenv("STEELYARD_CATALOG", raising=False)
    configure()
    yield
    configure()


@pytest.fixture
def lab_catalog(tmp_path) -> Path:
    path = tmp_path / "lab.yaml"
    path.write_text(LAB_GPU)
    return path


def test_user_entries_are_added_and_win(lab_catalog, monkeypatch):
    builtin_t4 = get_hardware("t4")
    assert "lab-gpu" not in load_catalog()
    monkeypatch.setenv("STEELYARD_CATALOG", str(lab_catalog))
    lab = get_hardware("lab-gpu")
    assert lab.memory == 24 * 2**30 and lab.peak_for("float16") == 160e12 and lab.power == 300
    assert lab.source_for("power_w") == "our spec sheet"
    t4 = get_hardware("t4")
    assert t4.price_per_hour == 0.2 and t4.source_for("price_per_hour_usd") == "our contract"
    # only the price changed: the rest (and its sources) are the built-in entry's
    assert t4.memory_bandwidth == builtin_t4.memory_bandwidth and t4.peak_flops == builtin_t4.peak_flops
    assert t4.source_for("power_w") == builtin_t4.source_for("power_w")
    # --catalog wins over the environment variable
    other = lab_catalog.with_name("other.yaml")
    other.write_text(LAB_GPU.replace("lab-gpu", "other-gpu"))
    configure(catalog=other)
    assert "other-gpu" in load_catalog() and "lab-gpu" not in load_catalog()


def test_added_device_is_listed_and_profiles_project_onto_it(lab_catalog, tmp_path, capsys):
    assert steelyard("hardware", "list", "--catalog", lab_catalog, "--json", "-") == 0
    listed = {d["name"]: d for d in json.loads(capsys.readouterr().out)["devices"]}
    assert listed["lab-gpu"]["display_name"] == "Lab GPU" and listed["t4"]["price_per_hour"] == 0.2
    out = tmp_path / "card.json"
    code = steelyard("profile", "gpt2", "--config-only", "--seq-len", "32", "--hardware", "lab-gpu,t4",
                     "--catalog", lab_catalog, "--json", out, "--no-save")
    assert code == 0
    rows = {v["hardware"]: v for v in json.loads(out.read_text())["hardware"]}
    lab = rows["lab-gpu"]
    assert lab["display_name"] == "Lab GPU"
    assert lab["energy_per_batch"] == pytest.approx(lab["projected_latency_per_batch"] * 300 * catalog_defaults().pue)
    assert lab["cost_per_1k_samples"] == pytest.approx(0.5 * lab["projected_latency_per_batch"] / 3600 * 1000)
    assert rows["t4"]["cost_per_1k_samples"] == pytest.approx(0.2 * rows["t4"]["projected_latency_per_batch"] / 3.6)


def _card(tmp_path: Path, name: str, *extra: str) -> dict:
    out = tmp_path / f"{name}.json"
    assert steelyard("profile", "gpt2", "--config-only", "--seq-len", "32", "--hardware", "t4", "--json", out,
                     "--no-save", *extra) == 0
    return json.loads(out.read_text())


def test_overrides_move_the_numbers_as_the_formulas_say(tmp_path):
    base = _card(tmp_path, "base")
    moved = _card(tmp_path, "moved", "--pue", "2.4", "--price", "3.58", "--grid-intensity", "120")
    b, m = base["hardware"][0], moved["hardware"][0]
    assert m["projected_latency_per_batch"] == b["projected_latency_per_batch"]  # time does not change
    assert m["pue"] == 2.4 and m["energy_per_batch"] == pytest.approx(b["energy_per_batch"] * 2.4 / b["pue"])
    t4_price = 0.35  # the built-in T4 price
    assert m["cost_per_1k_samples"] == pytest.approx(b["cost_per_1k_samples"] * 3.58 / t4_price)
    b_row, m_row = base["data_needs"]["training"]["rows"][0], moved["data_needs"]["training"]["rows"][0]
    # CO2 = kWh × intensity; kWh carries the PUE
    assert m_row["energy"] == pytest.approx(b_row["energy"] * 2.4 / b["pue"])
    assert m_row["co2"] == pytest.approx(m_row["energy"] * 0.120)
    assert m_row["cost"] == pytest.approx(b_row["cost"] * 3.58 / t4_price)
    # the next command starts from the catalog again
    assert _card(tmp_path, "again")["hardware"][0]["pue"] == b["pue"]


def test_estimate_takes_the_same_overrides(tmp_path):
    out = tmp_path / "e.json"
    assert steelyard("estimate", "gpt2", "--tokens", "1M", "--seq-len", "64", "--hardware", "a100-80gb", "--price",
                     "a100-80gb=2", "--grid-intensity", "0", "--json", out, "--no-save") == 0
    data = json.loads(out.read_text())
    row = data["rows"][0]
    assert row["cost"] == pytest.approx(2 * row["device_hours"]) and row["co2"] == 0
    said = " ".join(data["assumptions"])
    assert "steelyard estimate" in said and "--grid-intensity" in said and "a100-80gb user override (--price)" in said


def test_settings_parse_prices():
    assert HardwareSettings(price="t4=0.3, a100-80gb=1.5").prices(["t4", "a100-80gb"]) == {"t4": 0.3,
                                                                                          "a100-80gb": 1.5}
    assert HardwareSettings(price="0.3").prices(["t4"]) == {"t4": 0.3}
    with pytest.raises(HardwareError, match="name the device"):
        HardwareSettings(price="0.3").prices(["t4", "l4"])
    with pytest.raises(HardwareError, match="not a number"):
        HardwareSettings(price="t4=cheap").prices(["t4"])


@pytest.mark.parametrize(("text", "words"), [
    ("devices:\n  x: [1, 2\n", ["not valid YAML", "line"]),
    ("devices:\n  t4:\n    power_w: 60\n", ["devices.t4.sources.power_w", "source"]),
    ("devices:\n  x:\n    kind: gpu\n    memroy_gb: 3\n", ["devices.x.memroy_gb", "unknown field"]),
    ("devices:\n  t4:\n    power_w: lots\n    sources: {power_w: me}\n", ["devices.t4.power_w", "not a number"]),
    ("devices:\n  x:\n    kind: tpu\n", ["devices.x.kind", "'tpu'"]),
    ("defaults:\n  pue: 0.5\n  sources: {pue: me}\n", ["defaults.pue", "at least 1"]),
    ("- just a list\n", ["mapping"]),
])
def test_bad_catalog_is_one_line_naming_file_and_field(tmp_path, capsys, text, words):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    assert steelyard("hardware", "list", "--catalog", bad) == 2
    one_line_error(capsys, str(bad), *words)


@pytest.mark.parametrize(("args", "words"), [
    (["--pue", "0.5"], ["--pue", "at least 1"]),
    (["--grid-intensity", "-3"], ["--grid-intensity"]),
    (["--price", "nope=3"], ["--price", "unknown hardware 'nope'"]),
])
def test_bad_overrides_are_one_line(capsys, args, words):
    assert steelyard("profile", "gpt2", "--config-only", "--hardware", "t4", "--no-save", *args) == 2
    one_line_error(capsys, *words)
