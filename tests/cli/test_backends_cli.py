"""``steelyard runtimes``: every installed runtime timed against torch; artifacts work with other verbs."""

from __future__ import annotations

import json

import pytest

from cli_helpers import one_line_error, steelyard
from text_toys import reviews_csv, tiny_bert

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("runtimes")
    return tiny_bert(root / "bert", layers=2), reviews_csv(root / "reviews.csv", 60)


def test_runtimes_times_each_backend_and_saves_the_fastest(tiny, tmp_path):
    pytest.importorskip("openvino", reason="openvino is the runtimes extra: pip install 'steelyard[runtimes]'")
    pytest.importorskip("nncf", reason="nncf is the runtimes extra: pip install 'steelyard[runtimes]'")
    model, data = tiny
    out, best = tmp_path / "r.json", tmp_path / "best"
    code = steelyard("runtimes", model, "--data", data, "--backend", "onnxruntime:fp32,openvino:fp32",
                     "--backend", "openvino:int8", "--batch-size", "8", "--max-length", "32", "--rounds", "4",
                     "--threads", "1", "--json", out, "--output", best)
    assert code == 0
    d = json.loads(out.read_text())
    labels = [r["label"] for r in d["rows"]]
    assert labels == ["torch fp32", "onnxruntime fp32", "openvino fp32", "openvino int8"]
    timed = {r["label"]: r for r in d["rows"] if r["status"] == "timed"}
    assert set(timed) == set(labels), d["rows"]
    ratios = {k: r["speedup"]["ratio"] for k, r in timed.items()}
    assert d["fastest"] == max(ratios, key=ratios.get) and ratios["torch fp32"] == 1.0
    for r in timed.values():
        assert r["speedup"]["ci_low"] <= r["speedup"]["ratio"] <= r["speedup"]["ci_high"]
        assert len(r["stats"]["samples"]) == 4 and r["stats"]["threads"] == 1
    manifest = json.loads((best / "steelyard_compression.json").read_text())
    assert f"{manifest['runtime']['backend']} {manifest['runtime']['precision']}" == d["fastest"]

    # the saved artifact is a model folder like any other for profile, evaluate and compare
    assert steelyard("profile", best, "--seq-len", "16", "--runs", "3", "--warmup", "1", "--no-save") == 0
    ej = tmp_path / "e.json"
    assert steelyard("evaluate", best, "--data", data, "--no-save", "--json", ej) == 0
    assert 0 <= json.loads(ej.read_text())["metrics"]["accuracy"]["value"] <= 1
    assert steelyard("compare", model, best, "--seq-len", "16", "--runs", "3", "--warmup", "1", "--threads", "1",
                     "--hardware", "local", "--no-save") == 0


def test_a_backend_named_but_not_installed_is_one_line_exit_2(tiny, capsys, monkeypatch):
    from steelyard.backends import registry
    from steelyard.backends.base import Availability

    backend = registry.get_backend("openvino")
    reason = "No module named 'openvino': pip install 'steelyard[runtimes]'"
    monkeypatch.setattr(type(backend), "available", lambda self: Availability(False, reason))
    model, _ = tiny
    capsys.readouterr()
    assert steelyard("runtimes", model, "--backend", "openvino") == 2
    one_line_error(capsys, "openvino", "steelyard[runtimes]")


@pytest.mark.parametrize(("args", "words"), [
    (["--backend", "tensorrt"], ["unknown backend 'tensorrt'", "openvino"]),
    (["--max-drop", "1"], ["--max-drop needs --data"]),
])
def test_bad_runtimes_input_is_one_line(tiny, capsys, args, words):
    model, _ = tiny
    capsys.readouterr()
    assert steelyard("runtimes", model, *args) == 2
    one_line_error(capsys, *words)


FAST = ("--batch-size", "8", "--max-length", "32", "--rounds", "3", "--threads", "1", "--no-save")


def test_compress_served_in_openvino_with_nncf_int8(tiny, tmp_path):
    pytest.importorskip("openvino", reason="openvino is the runtimes extra: pip install 'steelyard[runtimes]'")
    pytest.importorskip("nncf", reason="nncf is the runtimes extra: pip install 'steelyard[runtimes]'")
    model, data = tiny
    out, js = tmp_path / "ov", tmp_path / "c.json"
    assert steelyard("compress", model, "--recipe", "prune:structured,amount=0.5; quantize:int8-static",
                     "--backend", "openvino", "--data", data, "--output", out, "--json", js, *FAST) == 0
    d = json.loads(js.read_text())
    assert d["backend"] == "openvino" and d["after"]["latency"]["runs"] == 3
    assert d["after"]["agreement"] >= 0.8 and d["fidelity"]["sqnr_db"] >= 10
    assert d["after"]["flops"] < d["before"]["flops"]  # counted on the pruned torch model it came from
    manifest = json.loads((out / "steelyard_compression.json").read_text())
    assert manifest["runtime"]["precision"] == "int8" and (out / "model.xml").is_file()
    assert (out / "tokenizer.json").is_file()
    ej = tmp_path / "e.json"
    assert steelyard("evaluate", out, "--data", data, "--no-save", "--json", ej) == 0
    assert json.loads(ej.read_text())["metrics"]["accuracy"]["value"] == pytest.approx(
        d["after"]["metrics"]["accuracy"]["value"], abs=1e-9)


def test_compress_served_with_torch_compile_saves_the_torch_model(tiny, tmp_path, capsys):
    model, data = tiny
    out, js = tmp_path / "tc", tmp_path / "c.json"
    assert steelyard("compress", model, "--recipe", "prune:layers,amount=0.5", "--backend", "torch-compile",
                     "--data", data, "--output", out, "--json", js, *FAST) == 0
    d = json.loads(js.read_text())
    assert d["backend"] == "torch-compile" and d["after"]["latency"]["runs"] == 3
    ej = tmp_path / "e.json"
    assert steelyard("evaluate", out, "--data", data, "--no-save", "--json", ej) == 0
    capsys.readouterr()
    assert steelyard("compress", model, "--recipe", "quantize:int8-dynamic", "--backend", "torch-compile") == 2
    one_line_error(capsys, "torch-compile serves float models")


def test_route_puts_the_runtime_where_it_belongs():
    from steelyard.backends.serve import route
    from steelyard.compression.recipe import parse_recipe
    from steelyard.errors import ConfigError

    plain = parse_recipe("prune:layers,amount=0.5")
    quant = parse_recipe("prune:layers,amount=0.5; quantize:int8-dynamic")
    recipe, serve = route(quant, "onnxruntime")
    assert serve is None and recipe.steps[-1].config.backend == "onnxruntime"  # the quantization step's kernels
    assert route(quant, "openvino", check_installed=False) == (quant, "openvino")
    assert route(plain, "onnxruntime", float_onnx=True) == (plain, "onnxruntime")
    with pytest.raises(ConfigError, match="applies to an int8 quantization step"):
        route(plain, "onnxruntime")
    with pytest.raises(ConfigError, match="torch-compile serves float models"):
        route(quant, "torch-compile", check_installed=False)


def test_optimize_searches_the_runtime_as_a_dimension(tiny, tmp_path):
    pytest.importorskip("openvino", reason="openvino is the runtimes extra: pip install 'steelyard[runtimes]'")
    pytest.importorskip("nncf", reason="nncf is the runtimes extra: pip install 'steelyard[runtimes]'")
    model, data = tiny
    js, out = tmp_path / "opt.json", tmp_path / "winner"
    assert steelyard("optimize", model, "--data", data, "--max-drop", "100", "--trials", "2", "--recovery-steps", "2",
                     "--backend", "openvino,torch", "--storage", f"sqlite:///{tmp_path / 's.db'}",
                     "--study", "rt", "--sampler-seed", "0", "--isolation", "inline", "--batch-size", "8",
                     "--max-length", "32", "--rounds", "2", "--no-progress", "--no-save", "--json", js,
                     "--output", out) == 0
    d = json.loads(js.read_text())
    first = next(t for t in d["trials"] if t["number"] == 0)
    # the starting points are served where int8 ran the uncompressed model fastest, measured before trial 0
    starting = d["starting_runtime"]
    assert starting["rounds"] == 5 and starting["uncompressed"]["structure"] == "the uncompressed model"
    for ranking, served in ((starting["uncompressed"], "backend"), (starting["corner"], "corner_backend")):
        assert set(ranking["speedups"]) == {"openvino int8", "torch int8-dynamic"}
        fastest = max(ranking["speedups"], key=ranking["speedups"].get)
        assert ranking["label"] == fastest and fastest.startswith(starting[served] + " ")
        assert ranking["backend"] == starting[served]
    assert starting["corner"]["structure"] == "prune:layers; prune:structured,amount=0.75,heads=0.75"  # 2 → 1 layer
    assert first["params"]["backend"] == starting["backend"] and first["state"] == "complete", first
    corner = next(t for t in d["trials"] if t["number"] == 1)  # the corner, served where its structure ran fastest
    assert corner["params"]["ffn"] == 0.75 and corner["params"]["backend"] == starting["corner_backend"], corner
    assert first["metrics"]["latency"] > 0
    best = next(t for t in d["trials"] if t["number"] == d["best"])
    assert d["final"]["result"]["backend"] == best["params"]["backend"]  # re-run in the runtime it won in
    if best["params"]["backend"] == "openvino":
        assert (out / "model.xml").is_file()
    # the winner against each searched runtime alone on the uncompressed model, in one interleaved run
    versus = d["final"]["versus_runtimes"]
    labels = [r["label"] for r in versus["table"]["rows"]]
    assert labels[0] == "torch fp32" and labels[-1] == versus["winner"] == "optimize winner"
    assert {"openvino fp32", "openvino int8", "torch int8-dynamic"} <= set(labels)
    against = {s["baseline"] for s in versus["speedups"]}
    assert against == {r["label"] for r in versus["table"]["rows"] if r["stats"]} - {"optimize winner"}
    assert versus["best_alone"] in against and versus["best_alone"] != "torch fp32"


def test_too_little_calibration_data_is_one_line(tiny, tmp_path, capsys):
    model, _ = tiny
    few = reviews_csv(tmp_path / "few.csv", 20)  # 14 training examples
    capsys.readouterr()
    assert steelyard("runtimes", model, "--data", few, "--backend", "openvino:int8", "--batch-size", "4",
                     "--max-length", "16", "--rounds", "2") == 2
    one_line_error(capsys, "calibrat", "at least 16")
