"""`steelyard compress` end to end on a tiny BERT with a real tokenizer, and its bad-input cases."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from cli_helpers import one_line_error, steelyard
from steelyard.store import open_store
from text_toys import reviews_csv, tiny_bert

FAST = ["--batch-size", "8", "--max-length", "32", "--rounds", "2"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("compress-cli")
    return tiny_bert(root / "model", layers=2, hidden=32, heads=2), reviews_csv(root / "reviews.csv", 60)


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_compress_saves_model_json_store_row_and_report(tiny, tmp_path, capsys):
    model, data = tiny
    before = digest(model)
    out, js = tmp_path / "light", tmp_path / "c.json"
    code = steelyard("compress", str(model), "--recipe", "prune:structured,amount=0.5; finetune:epochs=1,lr=1e-3; "
                     "quantize:int8-dynamic", "--data", str(data), "--output", str(out), "--json", str(js), *FAST)
    assert code == 0
    text = capsys.readouterr().out
    for words in ("before", "after", "weights in memory", "latency, median (batch 8×", "accuracy (test, 95% CI)",
                  "prune:structured,amount=0.5", "finetune:lr=0.001", "smaller in memory", "saved as run"):
        assert words in text, words
    assert digest(model) == before  # the original files are never written
    assert (out / "config.json").is_file() and (out / "tokenizer.json").is_file()
    d = json.loads(js.read_text())
    assert d["recipe"] == "prune:structured,amount=0.5; finetune:lr=0.001; quantize:int8-dynamic"
    assert d["size_ratio"] > 3 and d["before"]["metrics"]["accuracy"]["n"] == d["after"]["metrics"]["accuracy"]["n"]
    run = open_store().list_runs(kind="compression")[0]
    assert run.metrics["size_ratio"][0] == pytest.approx(d["size_ratio"])
    assert "--recipe" in run.config["command"]
    capsys.readouterr()
    assert steelyard("runs", "show", str(run.id)) == 0  # the kind's console view: before / after and verdicts
    shown = capsys.readouterr().out
    assert "weights in memory" in shown and "smaller in memory" in shown
    html = tmp_path / "r.html"
    assert steelyard("report", str(run.id), "--html", str(html)) == 0
    page = html.read_text()
    assert "Compression: " in page and "Before / after" in page and "weights in memory" in page
    # the saved model (pruned heads that a BERT config cannot describe, int8 layers) evaluates with the
    # ordinary command: load_model recognises a compressed folder, and the tokenizer is next to it
    capsys.readouterr()
    ej = tmp_path / "e.json"
    assert steelyard("evaluate", str(out), "--data", str(data), "--no-save", "--json", str(ej)) == 0
    assert json.loads(ej.read_text())["metrics"]["accuracy"]["value"] == pytest.approx(
        d["after"]["metrics"]["accuracy"]["value"])


def test_hardware_projects_both_models_onto_catalog_devices(tiny, tmp_path, capsys):
    """``--hardware local,t4``: timed here, and both models projected onto the T4 as ``profile`` projects one."""
    from steelyard.hardware import get_hardware

    model, _ = tiny
    js = tmp_path / "p.json"
    code = steelyard("compress", str(model), "--recipe", "prune:layers,amount=0.5", "--hardware", "local,t4",
                     "--price", "t4=0.7", "--json", str(js), "--no-save", *FAST)
    assert code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Projected onto catalog hardware (batch 8" in text and "not measured" in text
    pair = json.loads(js.read_text())["projected"][0]
    before, after = pair["before"], pair["after"]
    assert pair["hardware"] == "t4" and pair["batch_size"] == 8
    # half the layers: less work on the roofline, so a faster projection, and the ratio is the one shown
    assert after["latency_floor_per_batch"] < before["latency_floor_per_batch"]
    assert pair["projected_speedup"] == pytest.approx(before["projected_latency_per_batch"]
                                                      / after["projected_latency_per_batch"]) and pair[
        "projected_speedup"] > 1
    t4 = get_hardware("t4")
    assert after["energy_per_batch"] == pytest.approx(after["projected_latency_per_batch"] * float(t4.power)
                                                      * after["pue"])
    assert after["cost_per_1k_samples"] == pytest.approx(0.7 * after["projected_latency_per_batch"] / 3600 / 8 * 1000)


def test_list_methods(capsys):
    assert steelyard("methods") == 0
    text = capsys.readouterr().out
    assert "prune:structured" in text and "quantize:int8-dynamic" in text and "finetune:" in text and "qat" in text


@pytest.mark.parametrize(("args", "words"), [
    (["--recipe", "prune:sideways"], ["unknown recipe step 'prune:sideways'", "valid steps"]),
    (["--recipe", "prune:structured,amount=1.5"], ["amount must be in [0, 1)"]),
    (["--recipe", "quantize:int8-dynamic; finetune"], ["must be the last step"]),
    (["--recipe", "prune:layers,amount=0.5; finetune"], ["finetune needs data", "--data"]),
    (["--recipe", "quantize:int8-static"], ["needs data"]),
    (["--recipe", "quantize:int8-dynamic", "--backend", "tensorrt"], ["--backend must be", "openvino"]),
    (["--recipe", "prune:layers,amount=0.5", "--backend", "onnxruntime"], ["applies to an int8 quantization step"]),
    (["--recipe", "quantize:int8-dynamic", "--hardware", "t5"], ["unknown hardware 't5'", "did you mean t4"]),
    (["--recipe", "prune:layers,amount=0.5", "--output", "x.onnx"], ["only an onnxruntime-backend model"]),
])
def test_bad_input_is_one_line_and_exit_2(tiny, tmp_path, capsys, args, words):
    model, _ = tiny
    before = digest(model)
    assert steelyard("compress", str(model), *args, *FAST) == 2
    one_line_error(capsys, *words)
    assert digest(model) == before


def test_output_inside_the_original_model_is_refused(tiny, capsys):
    model, _ = tiny
    before = digest(model)
    assert steelyard("compress", str(model), "--recipe", "quantize:int8-dynamic", "--output", str(model)) == 2
    one_line_error(capsys, "would overwrite or contain the input")
    assert digest(model) == before


def test_heads_on_a_cnn_do_not_apply(capsys):
    code = steelyard("compress", "compression_toys:cnn_factory", "--recipe",
                     "prune:layers,amount=0.5", "--rounds", "1")
    assert code == 2
    one_line_error(capsys, "prune:layers")


def test_onnxruntime_backend_saves_an_onnx_file(tiny, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    model, data = tiny
    out, js = tmp_path / "light.onnx", tmp_path / "c.json"
    assert steelyard("compress", str(model), "--recipe", "quantize:int8-dynamic", "--backend", "onnxruntime",
                     "--data", str(data), "--output", str(out), "--json", str(js), "--no-save", *FAST) == 0
    d = json.loads(js.read_text())
    assert out.is_file() and d["backend"] == "onnxruntime" and d["after"]["file_bytes"] == out.stat().st_size
    assert d["after"]["agreement"] >= 0.9


def test_head_only_checkpoint_compresses_and_reloads_as_a_classifier(tiny, tmp_path, capsys):
    from transformers import AutoModel

    model, data = tiny
    encoder = tmp_path / "encoder"
    AutoModel.from_pretrained(model).save_pretrained(encoder)  # a bare embedding model, like MiniLM
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (encoder / name).write_bytes((model / name).read_bytes())
    head = tmp_path / "head"
    assert steelyard("finetune", str(encoder), "--data", str(data), "--output", str(head), "--freeze-encoder",
                     "--epochs", "2", "--no-save") == 0
    out, js, ej = tmp_path / "head-int8", tmp_path / "c.json", tmp_path / "e.json"
    assert steelyard("compress", str(head), "--recipe", "prune:structured,amount=0.5", "--data", str(data),
                     "--output", str(out), "--json", str(js), "--no-save", *FAST) == 0
    d = json.loads(js.read_text())
    assert d["after"]["params"] < d["before"]["params"] and d["after"]["metrics"]["accuracy"]["n"] > 0
    capsys.readouterr()
    assert steelyard("evaluate", str(out), "--data", str(data), "--no-save", "--json", str(ej)) == 0
    assert json.loads(ej.read_text())["metrics"]["accuracy"]["value"] == pytest.approx(
        d["after"]["metrics"]["accuracy"]["value"])
