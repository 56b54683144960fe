"""Warnings where the numbers are made: test inputs also in train (finetune, evaluate, compress), a
fine-tune too short to learn; and the built-in sets cleaned by default (``--no-clean`` opts out)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from cli_helpers import steelyard
from steelyard.store import open_store
from text_toys import tiny_bert

pytestmark = pytest.mark.usefixtures("one_thread")

WORDS = ("good", "great", "fine", "bad", "awful", "poor")


def overlapping_csv(path: Path, shared: int) -> Path:
    """Train, validation and test rows of distinct texts, except ``shared`` test rows copied from train."""
    rows = []
    for i in range(40):
        rows.append(("train", f"{WORDS[i % 6]} train item {i}", i % 2))
    for i in range(10):
        rows.append(("validation", f"{WORDS[i % 6]} validation item {i}", i % 2))
    for i in range(12):
        text, label = (rows[i][1], rows[i][2]) if i < shared else (f"{WORDS[i % 6]} test item {i}", i % 2)
        rows.append(("test", text, label))
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["split", "text", "label"])
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> Path:
    return tiny_bert(tmp_path_factory.mktemp("bert-warn"), layers=1, hidden=16, max_positions=32)


def test_evaluate_warns_with_the_count_of_test_examples_also_in_train(bert, tmp_path, capsys):
    data, js = overlapping_csv(tmp_path / "leaky.csv", shared=3), tmp_path / "eval.json"
    assert steelyard("evaluate", bert, "--data", data, "--max-length", "16", "--resamples", "10",
                     "--json", js) == 0
    out = capsys.readouterr().out
    line = "3 test examples also appear in train: test accuracy is optimistic; use --clean"
    assert f"warning: {line}" in " ".join(out.split())
    payload = json.loads(js.read_text())
    assert payload["warnings"] == [line]
    assert payload["leakage"] == [{"split": "test", "other": "train", "count": 3, "total": 12}]
    stored = open_store().find_runs(kind="evaluate")[0]
    assert stored.payload["result"]["leakage"][0]["count"] == 3
    # --clean drops the copies from train: no warning, and the stored config says so.
    assert steelyard("evaluate", bert, "--data", data, "--max-length", "16", "--resamples", "10", "--clean",
                     "--json", js) == 0
    assert "warning:" not in capsys.readouterr().out
    assert json.loads(js.read_text())["warnings"] == []
    assert open_store().find_runs(kind="evaluate")[0].config["DataOptions"]["clean"] is True


def test_finetune_warns_of_leakage_and_of_too_few_steps(bert, tmp_path, capsys):
    data, js = overlapping_csv(tmp_path / "leaky.csv", shared=2), tmp_path / "ft.json"
    assert steelyard("finetune", bert, "--data", data, "--output", tmp_path / "m", "--epochs", "1",
                     "--batch-size", "8", "--max-length", "16", "--json", js) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "warning: 2 test examples also appear in train: test accuracy is optimistic; use --clean" in out
    assert "warning: only 5 optimizer steps (fewer than 50)" in out
    payload = json.loads(js.read_text())
    assert payload["leakage"][0]["count"] == 2 and len(payload["warnings"]) == 2
    assert open_store().find_runs(kind="finetune")[0].payload["result"]["leakage"][0]["count"] == 2


def test_compress_warns_of_leakage(bert, tmp_path, capsys):
    data, js = overlapping_csv(tmp_path / "leaky.csv", shared=4), tmp_path / "c.json"
    assert steelyard("compress", bert, "--recipe", "quantize:int8-dynamic", "--data", data, "--max-length", "16",
                     "--rounds", "1", "--batch-size", "4", "--json", js) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "warning: 4 test examples also appear in train: test accuracy is optimistic; use --clean" in out
    assert json.loads(js.read_text())["leakage"][0]["count"] == 4


def test_builtin_data_is_clean_by_default_and_no_clean_opts_out(tmp_path, capsys):
    names = ["business", "entertainment", "politics", "sport", "tech"]
    bbc = tiny_bert(tmp_path / "bbc-bert", layers=1, hidden=16, max_positions=32, labels=names)
    js = tmp_path / "e.json"
    assert steelyard("evaluate", bbc, "--data", "bbc-news", "--max-length", "8", "--resamples", "10",
                     "--json", js) == 0
    assert "warning:" not in capsys.readouterr().out
    assert json.loads(js.read_text())["leakage"] == []
    assert open_store().find_runs(kind="evaluate")[0].config["DataOptions"]["clean"] is True
    assert steelyard("evaluate", bbc, "--data", "bbc-news", "--max-length", "8", "--resamples", "10", "--no-clean",
                     "--json", js) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "warning: 30 test examples also appear in train: test accuracy is optimistic; use --clean" in out
    assert "warning: 4 test examples also appear in validation" in out
