"""`steelyard runs list|show|diff|export` over a store filled by real commands; bad ids and bad stores."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from steelyard.cli.main import run


@pytest.fixture(scope="module")
def filled_store(tmp_path_factory) -> str:
    """Two identical config-only profiles of gpt2 and one training estimate (runs 1, 2, 3)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('runs') / 'store.db'}"
    for _ in range(2):
        assert run(["--store", url, "profile", "gpt2", "--config-only", "--seq-len", "32"]) == 0
    assert run(["--store", url, "estimate", "gpt2", "--tokens", "1M", "--seq-len", "32", "--hardware", "t4"]) == 0
    return url


@pytest.fixture
def store(filled_store, tmp_path) -> str:
    """A private copy per test, so no test sees another's writes."""
    src = Path(filled_store.removeprefix("sqlite:///"))
    dst = tmp_path / "copy.db"
    shutil.copy(src, dst)
    for suffix in ("-wal", "-shm"):
        if Path(f"{src}{suffix}").exists():
            shutil.copy(f"{src}{suffix}", f"{dst}{suffix}")
    return f"sqlite:///{dst}"


def sy(store: str, *args: str) -> int:
    return run(["--store", store, *args])


def test_list_newest_first_with_kind_filter_and_json(store, capsys):
    assert sy(store, "runs", "list") == 0
    text = capsys.readouterr().out
    assert "profile" in text and "estimate" in text and "parameters 124,439,808" in text
    assert sy(store, "runs", "list", "--json", "-") == 0
    rows = json.loads(capsys.readouterr().out)["runs"]
    assert [r["id"] for r in rows] == [3, 2, 1]
    assert [r["kind"] for r in rows] == ["estimate", "profile", "profile"]
    assert rows[1]["metrics"]["parameters"] == {"value": 124_439_808, "unit": None}
    assert sy(store, "runs", "list", "--kind", "profile", "--json", "-") == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)["runs"]] == [2, 1]
    assert sy(store, "runs", "list", "--kind", "comparison") == 0
    assert "no runs of kind comparison" in capsys.readouterr().out


def test_show_prints_numbers_config_and_the_cost_card(store, capsys):
    assert sy(store, "runs", "show", "1") == 0
    text = capsys.readouterr().out
    assert "run 1 · profile · gpt2" in text
    assert "Headline numbers" in text and "LoadConfig.inputs.seq_len" in text
    assert "1 multiply-add = 2 FLOPs = 1 MAC" in text  # the full card, rebuilt from the stored payload
    assert sy(store, "runs", "show", "1", "--json", "-") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["payload"]["parameters"]["total"] == 124_439_808
    assert data["config"]["LoadConfig"]["inputs"]["seq_len"] == 32


def test_diff_identical_profiles_and_different_kinds(store, capsys):
    assert sy(store, "runs", "diff", "1", "2") == 0
    text = capsys.readouterr().out
    assert "headline numbers: identical" in text and "config: identical" in text
    assert sy(store, "runs", "diff", "1", "2", "--all", "--json", "-") == 0
    diff = json.loads(capsys.readouterr().out)
    params = next(r for r in diff["metrics"] if r["metric"] == "parameters")
    assert params["a"] == params["b"] == 124_439_808 and params["delta"] == 0 and params["ratio"] == 1
    assert diff["config"] == []
    assert sy(store, "runs", "diff", "2", "3") == 0
    text = capsys.readouterr().out
    assert "different kinds (profile vs estimate)" in text and "Config that differs" in text


def test_export_csv_and_json(store, tmp_path, capsys):
    out = tmp_path / "runs.csv"
    assert sy(store, "runs", "export", "--format", "csv", "--output", str(out)) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["id"] for r in rows] == ["1", "2", "3"]
    assert float(rows[0]["parameters"]) == 124_439_808 and rows[2]["parameters"] == ""
    assert "flops [FLOP]" in rows[0] and float(rows[0]["flops [FLOP]"]) == float(rows[1]["flops [FLOP]"]) > 0
    assert sy(store, "runs", "export", "--format", "json", "--ids", "1,3", "--no-payload") == 0
    data = json.loads(capsys.readouterr().out)["runs"]
    assert [r["id"] for r in data] == [1, 3] and "payload" not in data[0]
    assert data[1]["kind"] == "estimate" and data[1]["metrics"]["total_flops"]["unit"] == "FLOP"
    assert sy(store, "runs", "export", "--format", "json", "--kind", "profile") == 0
    assert [r["payload"]["model"] for r in json.loads(capsys.readouterr().out)["runs"]] == ["gpt2", "gpt2"]
    assert sy(store, "runs", "export", "--format", "csv") == 0
    header = next(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert header[:6] == ["schema_version", "id", "kind", "model", "created_at", "status"]


@pytest.mark.parametrize(("args", "message"), [
    (["runs", "show", "99"], "no run with id 99 in sqlite:///"),
    (["runs", "diff", "1", "99"], "no run with id 99"),
    (["runs", "export", "--ids", "1,99"], "no run with id 99"),
    (["runs", "export", "--ids", "one"], "--ids must be comma-separated run ids"),
    (["runs", "export", "--format", "xml"], "unknown export format 'xml'; choose csv, json, mlflow or tensorboard"),
    (["report", "42", "--html", "r.html"], "no run with id 42"),
])
def test_bad_ids_and_options_are_clear_errors(store, args, message, capsys):
    assert sy(store, *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_store_is_a_clear_error_and_is_left_as_it_was(store, damage, capsys):
    path = Path(store.removeprefix("sqlite:///"))
    assert sy(store, "runs", "list") == 0  # checkpoint the WAL into the main file first
    capsys.readouterr()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    data = path.read_bytes()
    path.write_bytes(b"this is not a database" * 100 if damage == "garbage" else data[: len(data) // 3])
    before = path.read_bytes()
    for args in (["runs", "list"], ["runs", "show", "1"], ["report", "1", "--html", str(path.parent / "r.html")]):
        assert sy(store, *args) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: cannot open the results store") or err.startswith(
            "error: cannot read the results store"), err
        assert "malformed" in err or "not a database" in err
    assert path.read_bytes() == before


def test_mlflow_and_tensorboard_exports_are_optional(store, tmp_path, capsys):
    try:
        import mlflow  # noqa: F401
    except ImportError:
        assert sy(store, "runs", "export", "--format", "mlflow") == 2
        assert "pip install mlflow" in capsys.readouterr().err
    else:
        uri = f"file://{tmp_path / 'mlruns'}"
        assert sy(store, "runs", "export", "--format", "mlflow", "--output", uri) == 0
        assert (tmp_path / "mlruns").exists()
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        assert sy(store, "runs", "export", "--format", "tensorboard", "--output", str(tmp_path / "tb")) == 2
        assert "pip install tensorboard" in capsys.readouterr().err
    else:
        assert sy(store, "runs", "export", "--format", "tensorboard", "--output", str(tmp_path / "tb")) == 0
        assert len(list((tmp_path / "tb").iterdir())) == 3
