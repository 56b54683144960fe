"""Exported runs name their schema and carry UTC offsets; one metric has one name in every run kind."""

from __future__ import annotations

import csv
import io
import json

from steelyard.serialize import SCHEMA_VERSION
from steelyard.store import open_store
from steelyard.store.export import runs_to_csv, runs_to_json
from steelyard.store.record import METRIC_NAMES, metric_name, named


def test_runs_csv_and_json_name_their_schema_and_write_utc(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    a = store.save_run("profile", "m", config={}, environment={}, payload={},
                       metrics={"latency_median_s": (0.01, "s"), "id": (7.0, None)})
    b = store.save_run("compression", "m", config={}, environment={}, payload={},
                       metrics={"latency_median_s": (10.0, "ms")})
    records = store.find_runs(ids=[a, b], oldest_first=True)
    assert all(r.created_at.tzinfo is not None for r in records)
    rows = list(csv.reader(io.StringIO(runs_to_csv(records))))
    header = rows[0]
    assert header[:6] == ["schema_version", "id", "kind", "model", "created_at", "status"]
    assert rows[1][0] == SCHEMA_VERSION and rows[1][4].endswith("+00:00")
    assert "metric:id" in header and header.count("id") == 1  # a metric named like a base column
    # a unit that differs between runs gets its own column instead of mixing s and ms
    assert {"latency_median_s [s]", "latency_median_s [ms]"} <= set(header)
    data = json.loads(runs_to_json(records))
    assert data["schema_version"] == SCHEMA_VERSION and data["runs"][0]["created_at"].endswith("+00:00")


def test_one_name_per_quantity():
    assert metric_name("best.params") == "best.parameters"
    assert metric_name("gpt2.latency_interleaved_s") == "gpt2.latency_median_s"
    assert metric_name("params_before") == "before.parameters"
    assert metric_name("accuracy.ci_low") == "accuracy.ci_low"
    rows = named({"parameters": (5.0, None), "params": (6.0, None), "usd_per_day": (1.0, "USD"),
                  "best.size": (10.0, None)})
    assert rows == {"parameters": (5.0, None), "usd_per_day": (1.0, "$"), "best.weights_bytes": (10.0, "B")}
    assert all(metric_name(name) == name for name in METRIC_NAMES)  # the table's names are their own
