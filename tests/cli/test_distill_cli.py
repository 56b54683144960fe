"""`steelyard distill` end to end on a tiny local teacher, every bad input as a one-line error with
exit code 2, and the run under DDP with two gloo processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_helpers import one_line_error, steelyard
from distill_toys import MAX_LENGTH, tiny_bert, toy_dataset, trained_teacher, write_csv
from steelyard.store import open_store
from steelyard.training.launch import available_cpus

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("distill-cli")
    return trained_teacher(root), write_csv(root / "reviews.csv")


def test_distill_command_saves_student_json_and_run(assets, tmp_path, capsys):
    teacher, data = assets
    out, js = tmp_path / "student", tmp_path / "d.json"
    code = steelyard("distill", "--teacher", teacher, "--student", "layers=2", "--data", data, "--output", out,
                     "--alpha", "0.5", "--temperature", "4", "--epochs", "2", "--lr", "2e-3", "--batch-size", "16",
                     "--max-length", MAX_LENGTH, "--json", js)
    assert code == 0
    text = capsys.readouterr().out
    assert "Teacher vs student" in text and "the student keeps" in text
    assert f"student saved to {out.resolve()}" in text and "saved as run" in text
    data_out = json.loads(js.read_text())
    assert data_out["student_cost"]["layers"] == 2 and data_out["teacher_cost"]["layers"] == 4
    assert 0.45 < data_out["flops_ratio"] < 0.55
    retained = data_out["retained"]
    assert retained == pytest.approx(data_out["student_test"]["accuracy"]["value"]
                                     / data_out["teacher_test"]["accuracy"]["value"])
    for name in ("config.json", "model.safetensors", "tokenizer.json", "distill_result.json"):
        assert (out / name).is_file(), name
    row = open_store().list_runs(kind="distill")[0]
    assert row.metrics["accuracy"][0] == pytest.approx(data_out["student_test"]["accuracy"]["value"])
    assert row.metrics["teacher.accuracy"][0] == pytest.approx(data_out["teacher_test"]["accuracy"]["value"])
    assert row.metrics["retained"][0] == pytest.approx(retained)
    assert row.config["DistillConfig"]["alpha"] == 0.5 and row.config["DistillConfig"]["train"]["epochs"] == 2
    assert row.model.endswith("→ layers=2")
    assert steelyard("runs", "list", "--kind", "distill") == 0
    assert "distill" in capsys.readouterr().out

    # the saved student is an ordinary model folder: `steelyard evaluate` scores it the same
    ev = tmp_path / "ev.json"
    assert steelyard("evaluate", out, "--data", data, "--max-length", MAX_LENGTH, "--json", ev) == 0
    scored = json.loads(ev.read_text())["metrics"]["accuracy"]["value"]
    assert scored == pytest.approx(data_out["student_test"]["accuracy"]["value"])


@pytest.mark.parametrize(("args", "words"), [
    (("--student", "layers=0"), ("layers= must be at least 1",)),
    (("--student", "layers=9"), ("more than the teacher's 4 layers",)),
    (("--student", "hidden=15"), ("not divisible by the 2 attention heads",)),
    (("--student", "depth=2"), ("unknown student spec key",)),
    (("--student", "layers=2", "--alpha", "1.5"), ("alpha must be in [0, 1]",)),
    (("--student", "layers=2", "--temperature", "0"), ("temperature must be a positive number",)),
    (("--student", "layers=2", "--nproc", "64"), ("--nproc 64",)),
    (("--student", "no/such/model"), ("not found",)),
])
def test_bad_input_is_one_line_exit_2(assets, tmp_path, capsys, args, words):
    teacher, data = assets
    code = steelyard("distill", "--teacher", teacher, "--data", data, "--output", tmp_path / "o",
                     "--max-length", MAX_LENGTH, "--epochs", "1", *args)
    assert code == 2
    one_line_error(capsys, *words)
    assert not (tmp_path / "o").exists()


def test_mismatched_labels_and_bad_output_exit_2(assets, tmp_path, capsys):
    teacher, data = assets
    three = tiny_bert(tmp_path / "three", layers=1, labels=["a", "b", "c"])
    code = steelyard("distill", "--teacher", teacher, "--student", three, "--data", data, "--output", tmp_path / "o",
                     "--max-length", MAX_LENGTH)
    assert code == 2
    one_line_error(capsys, "label sets differ", "3 classes")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    code = steelyard("distill", "--teacher", teacher, "--student", "layers=2", "--data", data, "--output",
                     tmp_path / "taken")
    assert code == 2
    one_line_error(capsys, "already exists")
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"


@pytest.mark.skipif(available_cpus() < 2, reason="needs 2 CPU cores")
def test_two_gloo_processes_distil_to_identical_weights(assets, tmp_path):
    from steelyard.distill import DistillConfig, distill
    from steelyard.evaluation import evaluate
    from steelyard.models import load_model
    from steelyard.training import FinetuneConfig

    teacher, _ = assets
    ds = toy_dataset()
    cfg = DistillConfig(train=FinetuneConfig(epochs=2, lr=2e-3, batch_size=16, max_length=MAX_LENGTH, nproc=2))
    result = distill(str(teacher), "layers=2", ds, cfg, output=tmp_path / "ddp")
    info = result.distributed
    assert info.world_size == 2 and info.backend == "gloo" and info.per_process_batch == 8
    assert len(info.weight_digests) == 2 and info.weight_digests[0] == info.weight_digests[1]
    assert result.training.steps == 2 * 10 and result.training.samples_seen == 2 * len(ds.train)
    saved = load_model(str(tmp_path / "ddp"))
    again = evaluate(saved, ds, max_length=MAX_LENGTH)
    assert again.metrics["accuracy"].value == pytest.approx(result.student_test["accuracy"].value)
    assert result.student_test["accuracy"].value >= 0.9
