"""The task commands end to end: finetune, evaluate, compare-optimizers, data-report, data-needs,
and every bad input from the issue as a one-line error with exit code 2 that loses nothing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from steelyard.cli.main import run
from steelyard.store import open_store
from tiny_configs import save_tiny_resnet

pytestmark = pytest.mark.usefixtures("one_thread")


def steelyard(*args: str) -> int:
    return run([str(a) for a in args])


@pytest.fixture(scope="module")
def tiny_resnet(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny-resnet-cli")
    save_tiny_resnet(path)
    return path


def one_line_error(capsys, *words: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    for word in words:
        assert word in err, err
    return err


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_finetune_then_evaluate_saves_model_json_and_store_rows(tiny_resnet, tmp_path, capsys):
    out, js = tmp_path / "model", tmp_path / "ft.json"
    code = steelyard("finetune", tiny_resnet, "--data", "digits", "--output", out, "--epochs", "2", "--lr", "3e-3",
                     "--batch-size", "32", "--target-metric", "accuracy=0.8", "--json", js)
    assert code == 0
    text = capsys.readouterr().out
    assert "Validation during training" in text and f"model saved to {out.resolve()}" in text
    data = json.loads(js.read_text())
    assert data["target"]["reached"] and data["target"]["flops"] > 0 and data["test"]["accuracy"]["value"] > 0.7
    assert data["cost_card"]["parameters"]["total"] > 0
    assert (out / "config.json").is_file() and (out / "training_result.json").is_file()
    run_row = open_store().list_runs(kind="finetune")[0]
    assert run_row.metrics["accuracy"][0] == pytest.approx(data["test"]["accuracy"]["value"])
    assert run_row.config["FinetuneConfig"]["target"] == "accuracy=0.8"
    assert run_row.config["DataOptions"]["source"] == "digits"
    assert "cost_card" in run_row.payload and run_row.environment["torch"]

    ev = tmp_path / "ev.json"
    assert steelyard("evaluate", out, "--data", "digits", "--metrics", "accuracy,f1,auc", "--json", ev) == 0
    result = json.loads(ev.read_text())
    assert result["metrics"]["accuracy"]["value"] == pytest.approx(data["test"]["accuracy"]["value"])
    assert set(result["metrics"]) == {"accuracy", "macro_f1", "roc_auc"}
    row = open_store().list_runs(kind="evaluate")[0]
    assert row.metrics["accuracy"][0] == pytest.approx(result["metrics"]["accuracy"]["value"])
    assert row.metrics["accuracy.ci_low"][0] <= row.metrics["accuracy"][0] <= row.metrics["accuracy.ci_high"][0]
    assert row.config["EvaluateOptions"]["metrics"] == ["accuracy", "f1", "auc"]


def test_compare_optimizers_and_data_needs_commands(tiny_resnet, tmp_path, capsys):
    js = tmp_path / "cmp.json"
    code = steelyard("compare-optimizers", tiny_resnet, "--data", "digits", "--optimizers", "adamw,sgd",
                     "--lrs", "adamw=3e-3,sgd=1e-7", "--target-metric", "accuracy=0.5", "--epochs", "1",
                     "--batch-size", "32", "--json", js)
    assert code == 0
    assert "Cost to reach the target" in capsys.readouterr().out
    rows = {r["optimizer"]: r for r in json.loads(js.read_text())["rows"]}
    assert rows["adamw"]["reached"] and not rows["sgd"]["reached"]
    assert open_store().list_runs(kind="compare-optimizers")[0].metrics["adamw.reached"][0] == 1.0

    js = tmp_path / "needs.json"
    code = steelyard("data-needs", tiny_resnet, "--data", "digits", "--target-metric", "accuracy=0.95", "--full",
                     "--sizes", "60,120,240,480", "--epochs", "2", "--lr", "3e-3", "--batch-size", "32", "--json", js)
    assert code == 0
    assert "Learning curve" in capsys.readouterr().out
    needs = json.loads(js.read_text())
    assert [p["size"] for p in needs["points"]] == [60, 120, 240, 480] and needs["fit"] is not None
    assert open_store().list_runs(kind="data-needs")[0].payload["result"]["metric"] == "accuracy"


def test_data_report_with_clean(tmp_path, capsys):
    csv = tmp_path / "d.csv"
    csv.write_text("text,label\nsame words here,a\nsame words here,b\nfine one,a\nfine one,a\n ,b\n"
                   + "".join(f"unique text {i},{'ab'[i % 2]}\n" for i in range(20)))
    js = tmp_path / "r.json"
    assert steelyard("data-report", "--data", csv, "--clean", "--json", js) == 0
    out = capsys.readouterr().out
    assert "Same input, different labels" in out and "--clean drops" in out
    data = json.loads(js.read_text())
    assert data["drops"]["conflicting"] == 2 and data["drops"]["empty"] == 1
    assert sum(data["cleaned_sizes"].values()) < sum(data["report"]["counts"].values())


def test_data_report_shows_the_split_a_wider_val_fraction_makes(tmp_path):
    """--val-fraction moves examples from train to validation; the report (and every command) sees that split."""
    csv = tmp_path / "d.csv"
    csv.write_text("text,label\n" + "".join(f"text number {i},{'ab'[i % 2]}\n" for i in range(100)))
    sizes = {}
    for share in ("0.1", "0.3"):
        js = tmp_path / f"r{share}.json"
        assert steelyard("data-report", "--data", csv, "--val-fraction", share, "--json", js) == 0
        sizes[share] = json.loads(js.read_text())["report"]["counts"]
    assert sizes["0.1"]["validation"] == 10 and sizes["0.3"]["validation"] == 30
    assert sizes["0.1"]["test"] == sizes["0.3"]["test"] == 20


# --- bad input: one line, exit 2, nothing lost ---------------------------------------------------


def test_misspelt_column_names_the_columns(tiny_resnet, tmp_path, capsys):
    csv = tmp_path / "d.csv"
    csv.write_text("review,label\ngood,pos\nbad,neg\n")
    before = open_store().count()
    assert steelyard("evaluate", tiny_resnet, "--data", csv, "--task", "text-classification",
                     "--text-column", "reviw") == 2
    one_line_error(capsys, "'reviw'", "'review'", "'label'")
    assert open_store().count() == before


def test_empty_dataset(tiny_resnet, tmp_path, capsys):
    csv = tmp_path / "empty.csv"
    csv.write_text("text,label\n")
    assert steelyard("finetune", tiny_resnet, "--data", csv, "--output", tmp_path / "o",
                     "--task", "text-classification") == 2
    one_line_error(capsys, "empty")
    assert not (tmp_path / "o").exists()


def test_labels_not_matching_the_head(tiny_resnet, tmp_path, capsys):
    from PIL import Image

    for label in ("cat", "dog", "eel"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(4):
            Image.new("L", (8, 8), color=40 * i).save(tmp_path / "imgs" / label / f"{i}.png")
    assert steelyard("evaluate", tiny_resnet, "--data", tmp_path / "imgs", "--split", "all") == 2
    one_line_error(capsys, "predicts 10 classes but the data has 3")


def test_non_utf8_text(tiny_resnet, tmp_path, capsys):
    (tmp_path / "txt" / "a").mkdir(parents=True)
    (tmp_path / "txt" / "a" / "1.txt").write_bytes("caf\xe9".encode("latin-1"))
    assert steelyard("data-report", "--data", tmp_path / "txt") == 2
    one_line_error(capsys, "not UTF-8")


def test_image_that_does_not_decode(tiny_resnet, tmp_path, capsys):
    from PIL import Image

    (tmp_path / "imgs" / "a").mkdir(parents=True)
    Image.new("L", (8, 8)).save(tmp_path / "imgs" / "a" / "ok.png")
    (tmp_path / "imgs" / "a" / "bad.png").write_bytes(b"not a png")
    assert steelyard("evaluate", tiny_resnet, "--data", tmp_path / "imgs") == 2
    one_line_error(capsys, "bad.png", "cannot decode")


def test_target_metric_the_task_does_not_have(tiny_resnet, tmp_path, capsys):
    assert steelyard("finetune", tiny_resnet, "--data", "digits", "--output", tmp_path / "o",
                     "--target-metric", "perplexity=20") == 2
    one_line_error(capsys, "valid metrics", "accuracy")


def test_nproc_too_large(tiny_resnet, tmp_path, capsys):
    assert steelyard("finetune", tiny_resnet, "--data", "digits", "--output", tmp_path / "o", "--nproc", "999") == 2
    one_line_error(capsys, "--nproc 999", "CPU cores")


def test_unknown_optimizer(tiny_resnet, tmp_path, capsys):
    assert steelyard("compare-optimizers", tiny_resnet, "--data", "digits", "--optimizers", "adamw,lion",
                     "--target-metric", "accuracy=0.9") == 2
    one_line_error(capsys, "'lion'")


def test_failed_run_keeps_existing_model_folder_and_store(tiny_resnet, tmp_path, capsys):
    out = tmp_path / "model"
    assert steelyard("finetune", tiny_resnet, "--data", "digits", "--output", out, "--epochs", "1",
                     "--max-steps", "2") == 0
    capsys.readouterr()
    before, runs = digest(out), open_store().count()
    assert steelyard("finetune", tiny_resnet, "--data", "digits", "--output", out, "--overwrite", "--target-metric",
                     "f1=1.5") == 2
    one_line_error(capsys, "f1=1.5")
    assert digest(out) == before and open_store().count() == runs
    leftovers = [p.name for p in tmp_path.iterdir() if not p.name.startswith("steelyard-test.db")]
    assert leftovers == ["model"]  # nothing half-written beside it


def test_output_folder_holding_other_files_is_not_touched(tiny_resnet, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    assert steelyard("finetune", tiny_resnet, "--data", "digits", "--output", out) == 2
    one_line_error(capsys, "already exists")
    assert steelyard("finetune", tiny_resnet, "--data", "digits", "--output", out, "--overwrite") == 2
    one_line_error(capsys, "holds no model")
    assert (out / "thesis.tex").read_text() == "precious" and len(list(out.iterdir())) == 1
