"""One profile never contradicts itself: each quantity is computed once and names its unit of work.

The headline latency at batch b is the throughput sweep's point at b; energy is power × time × PUE
with the PUE applied once (the measured row and the local projection agree); dollars are per 1,000
samples from the per-batch time; every energy, latency and cost key and console header says whether
it is per batch, per sample or per 1,000 samples.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from cli_helpers import steelyard
from steelyard.hardware import catalog_defaults, get_hardware
from steelyard.profiling.report import CostReport
from tiny_configs import save_tiny_bert

pytestmark = pytest.mark.usefixtures("one_thread")

BATCH = 2


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny-bert-units")
    return save_tiny_bert(path, max_positions=64)


@pytest.fixture(scope="module")
def card(tiny_bert, tmp_path_factory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("units") / "card.json"
    capture = pytest.MonkeyPatch()
    import sys

    buffer = io.StringIO()
    capture.setattr(sys, "stdout", buffer)
    try:
        code = steelyard("profile", tiny_bert, "--batch-size", BATCH, "--seq-len", "16", "--runs", "6", "--warmup",
                         "1", "--threads", "1", "--hardware", "local,t4", "--json", out, "--no-save")
    finally:
        capture.undo()
    assert code == 0
    return json.loads(out.read_text()), buffer.getvalue()


def test_headline_latency_is_the_sweep_point_at_its_batch(card):
    data, _ = card
    median = data["measured"]["latency"]["median"]
    assert data["measured"]["latency"]["batch_size"] == BATCH
    point = next(p for p in data["measured"]["throughput"] if p["batch_size"] == BATCH)
    assert point["latency_per_batch"] == median and point["source"] == "headline"
    assert point["runs"] == data["measured"]["latency"]["runs"] == 6
    assert point["samples_per_second"] == pytest.approx(BATCH / median)
    # the local projection is the measured median itself, not a second figure for the same batch
    local = next(v for v in data["hardware"] if v["hardware"] == "local")
    assert local["projected_latency_per_batch"] == median


def test_energy_is_power_times_time_times_pue_once(card):
    data, _ = card
    pue = catalog_defaults().pue
    energy = data["energy"]
    assert energy["method"] == "estimated"  # no RAPL counter on this machine
    assert energy["pue"] == pue
    assert energy["device_joules_per_batch"] == pytest.approx(data["measured"]["latency"]["median"] * energy["power"])
    assert energy["joules_per_batch"] == pytest.approx(energy["device_joules_per_batch"] * pue)
    # the power of the cores the runs used (--threads 1), not of every core
    from steelyard.hardware import detect_local
    from steelyard.profiling.latency import fixed_threads

    with fixed_threads(1):
        assert energy["power"] == float(detect_local(measure=False).power)
    assert energy["joules_per_sample"] == pytest.approx(energy["joules_per_batch"] / BATCH)
    rows = {v["hardware"]: v for v in data["hardware"]}
    # the measured machine's row states the measured energy, PUE included once (2.99 J vs 3.59 J before)
    assert rows["local"]["energy_per_batch"] == pytest.approx(energy["joules_per_batch"])
    t4 = rows["t4"]
    watts = float(get_hardware("t4").power)
    assert t4["pue"] == pue
    assert t4["energy_per_batch"] == pytest.approx(t4["projected_latency_per_batch"] * watts * pue)
    assert t4["energy_per_sample"] == pytest.approx(t4["energy_per_batch"] / BATCH)


def test_dollars_are_per_thousand_samples_from_the_batch_time(card):
    data, _ = card
    t4 = next(v for v in data["hardware"] if v["hardware"] == "t4")
    price = float(get_hardware("t4").price_per_hour)
    per_batch = price * t4["projected_latency_per_batch"] / 3600
    assert t4["cost_per_1k_samples"] == pytest.approx(per_batch / BATCH * 1000)


def test_every_key_and_header_names_its_unit_of_work(card):
    data, _ = card
    units = ("per_batch", "per_sample", "per_1k_samples", "per_second")
    for row in data["hardware"]:
        for key in row:
            if key.startswith(("energy", "cost", "latency", "projected")):
                assert key.endswith(units), key
    for key in data["energy"]:
        if "joules" in key:
            assert key.endswith(units), key
    for point in data["measured"]["throughput"]:
        assert set(point) >= {"latency_per_batch", "samples_per_second"}
    from rich.console import Console

    from steelyard.reporting.console import render_cost_report

    wide = Console(width=400, record=True, file=io.StringIO())
    render_cost_report(CostReport.from_dict(data), wide)
    flat = " ".join(wide.export_text().split())
    for header in ("energy / batch", "energy / sample", "$ / 1k samples", "projected / batch",
                   "latency per batch (median)", "energy per batch (estimated", "energy per sample (estimated",
                   "steelyard estimate"):
        assert header in flat, header
    assert "$ / 1k " not in flat.replace("$ / 1k samples", "")


def test_cards_saved_with_the_old_keys_still_load(card):
    data, _ = card
    old = json.loads(json.dumps(data))
    energy = old["energy"]
    old["energy"] = {"joules_per_inference": energy["joules_per_batch"], "method": energy["method"],
                     "power": energy["power"], "note": energy["note"]}
    for point in old["measured"]["throughput"]:
        point["median_latency"] = point.pop("latency_per_batch")
        del point["runs"], point["source"]
    for row in old["hardware"]:
        row["latency_floor"] = row.pop("latency_floor_per_batch")
        row["projected_latency"] = row.pop("projected_latency_per_batch")
        row["energy_per_inference"] = row.pop("energy_per_batch")
        row["cost_per_1k_inferences"] = row.pop("cost_per_1k_samples")
        del row["energy_per_sample"], row["pue"]
    report = CostReport.from_dict(old)
    assert float(report.energy.joules_per_sample) == pytest.approx(energy["joules_per_batch"] / BATCH)
    t4 = next(v for v in report.hardware if v.hardware == "t4")
    assert float(t4.energy_per_sample) == pytest.approx(float(t4.energy_per_batch) / BATCH)
    assert report.measured.throughput[0].latency_per_batch > 0


def test_a_counter_reading_gets_the_pue_once_and_says_it_was_measured(tmp_path, monkeypatch):
    from steelyard.profiling import energy as energy_mod

    zone = tmp_path / "intel-rapl:0"
    zone.mkdir()
    (zone / "energy_uj").write_text("0")
    readings = iter([0, 0, 3_000_000])  # a probe, then 3 J over the three runs: 1 J per batch
    monkeypatch.setattr(energy_mod, "_RAPL", tmp_path)
    monkeypatch.setattr(energy_mod, "_read_rapl", lambda counters: next(readings))
    card = energy_mod.measure_energy(lambda: None, device="cpu", runs=3, median_latency=0.01,
                                     hardware=get_hardware("t4"), batch_size=4)
    pue = catalog_defaults().pue
    assert card.method == "measured-rapl" and "RAPL" in card.estimator
    assert float(card.device_joules_per_batch) == pytest.approx(1.0)
    assert float(card.joules_per_batch) == pytest.approx(pue)
    assert float(card.joules_per_sample) == pytest.approx(pue / 4)
