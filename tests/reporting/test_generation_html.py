"""The generation card in the HTML report (charts per device, the per-position curve), the store and CSV."""

from __future__ import annotations

import json
import re

import pytest

from steelyard.cli.main import run
from steelyard.models.loading import LoadConfig, load_model
from steelyard.models.tasks import InputSpec
from steelyard.profiling.generation_config import GenerationWorkload
from steelyard.profiling.profile import ProfileConfig, profile
from steelyard.reporting.files import to_csv
from steelyard.reporting.html import render_html, report_document
from steelyard.store.record import record_profile

TINY = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 32, "intermediate_size": 64,
        "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 64, "max_position_embeddings": 128}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    path = tmp_path_factory.mktemp("gen") / "tiny.json"
    path.write_text(json.dumps(TINY))
    load = LoadConfig(config_only=True, inputs=InputSpec(seq_len=16))
    cfg = ProfileConfig(hardware=("a100-80gb", "l4"),
                        generation=GenerationWorkload(prompt_len=16, new_tokens=33, batch_sizes=(1, 4),
                                                      decode_samples=3))
    return profile(load_model(str(path), load), cfg), load, cfg


def _specs(html: str) -> list[dict]:
    blocks = re.findall(r'<script type="application/json" id="fig-\d+-data">(.*?)</script>', html, flags=re.S)
    return [json.loads(b) for b in blocks]


def _charts(html: str) -> dict[str, dict]:
    return {spec["layout"]["title"]["text"]: spec for spec in _specs(html)}


def _check(charts: dict[str, dict], report) -> None:
    gen = report.generation
    for row in gen.hardware:
        title = next(t for t in charts if t.startswith("TTFT and TPOT vs batch") and f" on {row.hardware} " in t)
        chart = charts[title]
        ttft, tpot = chart["data"][:2]
        batches = sorted({1, 4, row.max_batch})
        assert ttft["x"] == batches and tpot["x"] == batches
        assert ttft["y"][0] == pytest.approx(1e3 * float(row.batches[0].ttft))
        assert tpot["y"][1] == pytest.approx(1e3 * float(row.batches[1].tpot))
        assert chart["layout"]["xaxis"]["title"]["text"] == "batch size (sequences)"
        assert chart["layout"]["yaxis"]["title"]["text"].startswith("ms")
    curve = charts[next(t for t in charts if t.startswith("Decode cost per position"))]
    contexts = [p.context for p in gen.positions]
    assert contexts[0] == 16 and contexts[-1] == 16 + 33 - 2
    weights, kv, flops = curve["data"]
    assert weights["x"] == contexts and flops["x"] == contexts
    assert kv["y"] == sorted(kv["y"]) and kv["y"][-1] > kv["y"][0]  # the KV read grows along the generation
    assert flops["y"][-1] > flops["y"][0]
    layout = curve["layout"]
    assert layout["yaxis"]["title"]["text"].startswith("bytes moved") and layout["yaxis2"]["title"]["text"]
    assert "context length" in layout["xaxis2"]["title"]["text"]


def test_the_profile_part_draws_the_generation_charts(generated):
    report, _, _ = generated
    html = render_html(report_document([("profile", report, None)]))
    assert "Generation: a prompt of 16 tokens → 33 new tokens (batch 1, 4)" in html
    _check(_charts(html), report)


def test_the_stored_generation_card_is_reported_and_in_the_csv(generated, tmp_path):
    report, load, cfg = generated
    run_id, _ = record_profile(report, [load, cfg])
    out = tmp_path / "r.html"
    assert run(["report", str(run_id), "--html", str(out)]) == 0
    _check(_charts(out.read_text(encoding="utf-8")), report)
    rows = dict(line.split(",", 1) for line in to_csv(report.to_dict()).splitlines()[1:])
    assert rows["generation.positions.0.context"] == "16"
    assert float(rows["generation.hardware.l4.batches.0.ttft"]) == pytest.approx(float(report.generation.on("l4")
                                                                                     .batches[0].ttft))
