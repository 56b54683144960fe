"""Readable model names and run titles (``runs list``'s model column, report titles)."""

from __future__ import annotations

import pytest

from steelyard.reporting.names import model_label, run_title
from steelyard.store.runs import RunRecord


@pytest.mark.parametrize(("model", "label"), [
    ("/tmp/tmpk3j2x9/minilm-int8", "minilm-int8"),
    ("/tmp/tmpk3j2x9/minilm-int8/", "minilm-int8"),
    ("~/models/bert-pruned", "bert-pruned"),
    ("./out/student", "student"),
    ("/home/u/.cache/huggingface/hub/models--sentence-transformers--all-MiniLM-L6-v2/snapshots/"
     "8b3219a92973c328a8e22fadcfa821b5dc75636a", "sentence-transformers/all-MiniLM-L6-v2"),
    ("/work/exports/bert/model.onnx", "bert/model.onnx"),
    ("/work/exports/bert-int8.onnx", "bert-int8.onnx"),
    ("sentence-transformers/all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"),
    ("gpt2", "gpt2"),
    ("my_pkg.models:build_tiny", "my_pkg.models:build_tiny"),
    ("/tmp/a/teacher → layers=2", "teacher → layers=2"),
    ("gpt2 vs /tmp/x/distil", "gpt2 vs distil"),
])
def test_model_labels_are_names_not_paths(model, label):
    assert model_label(model) == label


def test_a_relative_folder_here_is_its_basename(tmp_path, monkeypatch):
    (tmp_path / "runs" / "tiny").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert model_label("runs/tiny") == "tiny"
    assert model_label("org/tiny") == "org/tiny"  # not a folder here: a hub id


def test_a_run_title_is_its_name_else_kind_and_model():
    record = RunRecord(1, "profile", "/tmp/tmpab/minilm", None, "ok", {}, {}, {}, {})
    assert run_title(record, kind=True) == "profile · minilm" and run_title(record) == "minilm"
    assert run_title(RunRecord(1, "profile", "/tmp/tmpab/minilm", None, "ok", {}, {}, {}, {}, name="base")) == "base"
