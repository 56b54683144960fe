"""The results store: round trip, concurrent writers, clear errors."""

from __future__ import annotations

import multiprocessing as mp

import pytest

from steelyard.errors import StoreError
from steelyard.store import open_store


def test_round_trip(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/s.db")
    run_id = store.save_run("profile", "m", config={"a": 1}, environment={"cpu": "x"}, payload={"n": [1, 2]},
                            metrics={"flops": (2.0e9, "FLOP"), "cv": (0.1, None)})
    rec = store.get_run(run_id)
    assert rec.kind == "profile" and rec.model == "m" and rec.config == {"a": 1} and rec.payload == {"n": [1, 2]}
    assert rec.metrics == {"flops": (2.0e9, "FLOP"), "cv": (0.1, None)}
    assert [r.id for r in store.list_runs(kind="profile")] == [run_id]
    assert store.list_runs(kind="evaluate") == []


def test_missing_run_is_clear(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/s.db")
    with pytest.raises(StoreError, match="no run with id 42"):
        store.get_run(42)


def _write_many(url: str, n: int, tag: str) -> None:
    store = open_store(url)
    for i in range(n):
        store.save_run("profile", f"{tag}-{i}", config={}, environment={}, payload={}, metrics={"i": (i, None)})


def test_two_processes_write_without_losing_rows(tmp_path):
    url = f"sqlite:///{tmp_path}/shared.db"
    open_store(url)  # create the schema first, as the CLI does
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(url, 40, tag)) for tag in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = open_store(url)
    assert store.count() == 80
    assert {r.model for r in store.list_runs(limit=100)} == {f"{t}-{i}" for t in "ab" for i in range(40)}


def test_unreachable_postgres_url_is_clear():
    with pytest.raises(StoreError, match="cannot open the results store"):
        open_store("postgresql://user:secret@127.0.0.1:1/none")
