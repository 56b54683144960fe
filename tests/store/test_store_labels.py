"""Run names and tags, deleting runs, read-only opening and older stores, and configs stored as used."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from steelyard.errors import ConfigError, StoreError
from steelyard.store import RunLabels, open_store


def save(store, model="m", labels=None, kind="profile"):
    return store.save_run(kind, model, config={}, environment={}, payload={}, metrics={"x": (1.0, None)},
                          labels=labels)


def test_names_and_tags_round_trip_and_tags_filter_with_every_tag(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/s.db")
    a = save(store, labels=RunLabels(name=" baseline ", tags=("int8", "bert", "int8")))
    b = save(store, labels=RunLabels(tags=("int8",)))
    c = save(store)
    rec = store.get_run(a)
    assert rec.name == "baseline" and rec.tags == ("bert", "int8")
    assert store.get_run(c).name is None and store.get_run(c).tags == ()
    assert [r.id for r in store.find_runs(tags=["int8"])] == [b, a]
    assert [r.id for r in store.find_runs(tags=["int8", "bert"])] == [a]
    assert store.find_runs(tags=["nope"]) == []


@pytest.mark.parametrize("labels", [{"name": ""}, {"name": "x" * 201}, {"name": "two\nlines"}, {"tags": ("",)},
                                    {"tags": ("a,b",)}, {"tags": ("t" * 101,)}])
def test_bad_names_and_tags_are_config_errors(labels):
    with pytest.raises(ConfigError, match=r"--name|--tag"):
        RunLabels(**labels)


def test_delete_removes_the_runs_with_their_metrics_and_tags(tmp_path):
    from sqlalchemy import func, select

    from steelyard.store.schema import metrics, tags

    store = open_store(f"sqlite:///{tmp_path}/s.db")
    keep = save(store, labels=RunLabels(tags=("keep",)))
    gone = save(store, labels=RunLabels(tags=("old",)))
    assert store.delete_runs([gone]) == 1
    assert [r.id for r in store.find_runs()] == [keep]
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(metrics)).scalar_one() == 1
        assert conn.execute(select(tags.c.tag)).scalars().all() == ["keep"]
    assert store.delete_runs([]) == 0


def files_under(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def test_read_only_open_creates_nothing_and_refuses_to_write(tmp_path):
    missing = tmp_path / "no" / "such" / "store.db"
    with pytest.raises(StoreError, match=f"no results store at {missing}"):
        open_store(f"sqlite:///{missing}", read_only=True)
    assert list(tmp_path.iterdir()) == []
    url = f"sqlite:///{tmp_path}/s.db"
    run_id = save(open_store(url))
    open_store(url).engine.dispose()
    before = files_under(tmp_path)
    reader = open_store(url, read_only=True)
    assert reader.get_run(run_id).model == "m" and reader.count() == 1 and reader.kinds() == {"profile": 1}
    with pytest.raises(StoreError, match="read-only"):
        save(reader)
    with pytest.raises(StoreError, match="read-only"):
        reader.delete_runs([run_id])
    assert files_under(tmp_path) == before  # no -wal / -shm left, the database untouched


def old_store(path: Path) -> None:
    """A store as the first schema wrote it: no name or provenance column, no tags table."""
    import sqlite3

    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, kind VARCHAR(32) NOT NULL, model TEXT NOT NULL,
            created_at DATETIME NOT NULL, status VARCHAR(16) NOT NULL, config JSON NOT NULL,
            environment JSON NOT NULL, payload JSON NOT NULL);
        CREATE TABLE metrics (run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            name VARCHAR(128) NOT NULL, value FLOAT, unit VARCHAR(32), PRIMARY KEY (run_id, name));
    """)
    conn.execute("INSERT INTO runs (kind, model, created_at, status, config, environment, payload) VALUES "
                 "('profile', 'old-model', ?, 'ok', '{}', '{}', '{}')", (dt.datetime(2026, 1, 1).isoformat(" "),))
    conn.commit()
    conn.close()


def test_an_older_store_is_read_as_it_is_and_upgraded_when_written(tmp_path):
    path = tmp_path / "old.db"
    old_store(path)
    url = f"sqlite:///{path}"
    reader = open_store(url, read_only=True)
    rec = reader.get_run(1)
    assert rec.model == "old-model" and rec.name is None and rec.tags == () and rec.provenance is None
    assert reader.find_runs(tags=["x"]) == []
    writer = open_store(url)
    new = save(writer, labels=RunLabels(name="new", tags=("x",)))
    assert writer.get_run(new).name == "new" and [r.id for r in writer.find_runs(tags=["x"])] == [new]
    assert writer.get_run(1).model == "old-model"


def test_a_file_that_is_no_results_store_is_a_clear_error(tmp_path):
    import sqlite3

    path = tmp_path / "other.db"
    sqlite3.connect(path).execute("CREATE TABLE studies (x)").connection.commit()
    with pytest.raises(StoreError, match="is not a steelyard results store"):
        open_store(f"sqlite:///{path}", read_only=True)


def test_configs_are_stored_as_used_not_with_defaults_left_open():
    from steelyard.data.options import DataOptions
    from steelyard.distill.config import DistillConfig
    from steelyard.store.record import _config_dict
    from steelyard.training.config import DEFAULT_EPOCHS, DEFAULT_LR, FinetuneConfig

    class Result:
        lr, metric, task = 2e-5, "accuracy", "text-classification"

    stored = _config_dict(FinetuneConfig(), DataOptions("bbc-news"), result=Result())
    assert stored["FinetuneConfig"]["epochs"] == DEFAULT_EPOCHS["full"] and stored["FinetuneConfig"]["lr"] == 2e-5
    assert stored["FinetuneConfig"]["metric"] == "accuracy"
    assert stored["DataOptions"]["task"] == "text-classification"
    head = _config_dict(FinetuneConfig(freeze_encoder=True, optimizer="sgd"))["FinetuneConfig"]
    assert head["epochs"] == DEFAULT_EPOCHS["head-only"] and head["lr"] == DEFAULT_LR["head-only"]["sgd"]
    nested = _config_dict(DistillConfig(train=FinetuneConfig(epochs=5)))["DistillConfig"]["train"]
    assert nested["epochs"] == 5 and nested["lr"] == DEFAULT_LR["full"]["adamw"]
    assert None not in (nested["epochs"], nested["lr"])
