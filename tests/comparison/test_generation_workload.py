"""Serving workloads: parsing, and recommendations on hand-made candidate sets with known answers."""

from __future__ import annotations

import pytest

from steelyard.comparison.workload import (
    ServingLimits,
    ServingOption,
    ServingWorkload,
    parse_workload,
    recommend,
)
from steelyard.errors import ConfigError
from steelyard.units import Seconds, Usd

LOAD = ServingWorkload(prompt=1024, output=256, rps=5)


def option(model: str, hw: str, ttft: float, tpot: float, per_day: float, devices: int = 1,
           cost: float = 1.0) -> ServingOption:
    return ServingOption(model=model, dtype="float16", hardware=hw, batch=8, devices_per_replica=1, replicas=devices,
                         ttft=Seconds(ttft), tpot=Seconds(tpot), cost_per_1m=Usd(cost), usd_per_day=Usd(per_day))


CANDIDATES = [
    option("big", "h100-sxm", 0.20, 0.020, 300.0),
    option("big", "l4", 0.90, 0.080, 60.0),
    option("small", "l4", 0.30, 0.040, 90.0, devices=2),
    option("small", "a100-80gb", 0.25, 0.030, 120.0),
]


def test_parse_workload_and_its_errors():
    assert parse_workload("prompt=1024,output=256,rps=5") == LOAD
    assert parse_workload("prompt=4k, output=0.5k, rps=0.5/s") == ServingWorkload(4000, 500, 0.5)
    with pytest.raises(ConfigError, match="unknown key 'tokens'"):
        parse_workload("prompt=1,tokens=2,rps=1")
    with pytest.raises(ConfigError, match="expected a token count"):
        parse_workload("prompt=1024ms,output=2,rps=1")
    with pytest.raises(ConfigError, match="expected requests per second"):
        parse_workload("prompt=1,output=2,rps=fast")
    with pytest.raises(ConfigError, match="missing rps"):
        parse_workload("prompt=1,output=2")


def test_the_cheapest_option_meeting_every_limit_wins():
    rec = recommend(LOAD, ServingLimits(max_ttft=Seconds(0.5), max_tpot=Seconds(0.05)), CANDIDATES)
    assert rec.best is not None and (rec.best.model, rec.best.hardware) == ("small", "l4")
    assert [o.usd_per_day for o in rec.feasible] == [90.0, 120.0, 300.0]  # the slow L4 fails the TPOT limit
    assert rec.best.devices == 2 and not rec.shortfalls
    tight = recommend(LOAD, ServingLimits(max_tpot=Seconds(0.025)), CANDIDATES)
    assert (tight.best.model, tight.best.hardware) == ("big", "h100-sxm")


def test_a_cost_limit_is_one_more_constraint():
    cheap = [*CANDIDATES[:3], option("small", "a100-80gb", 0.25, 0.030, 120.0, cost=0.1)]
    rec = recommend(LOAD, ServingLimits(max_ttft=Seconds(0.5), max_cost_per_1m=Usd(0.5)), cheap)
    assert rec.best is not None and rec.best.hardware == "a100-80gb"


def test_nothing_fits_says_what_would_have_to_give():
    rec = recommend(LOAD, ServingLimits(max_ttft=Seconds(0.1), max_tpot=Seconds(0.05)), CANDIDATES)
    assert rec.best is None and rec.feasible == []
    (short,) = rec.shortfalls  # TPOT is reachable; no option gets the first token out within 100 ms
    assert short.check == "ttft" and short.limit == 0.1 and short.best == pytest.approx(0.2)
    assert short.option.hardware == "h100-sxm"
    jointly = recommend(LOAD, ServingLimits(max_ttft=Seconds(0.22), max_tpot=Seconds(0.025)),
                        [option("a", "x", 0.20, 0.030, 1.0), option("b", "y", 0.30, 0.020, 1.0)])
    assert jointly.best is None and not jointly.shortfalls  # each limit alone is met, never both
    assert jointly.closest is not None and jointly.closest.model == "a"  # 0.030 / 0.025 = 1.2 < 0.30 / 0.22


def test_compare_workload_recommends_and_bad_input_is_one_line(tmp_path, capsys):
    import json

    from tests.cli_helpers import one_line_error, steelyard

    paths = []
    for layers in (1, 4):
        path = tmp_path / f"llama{layers}.json"
        path.write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 32,
                                    "intermediate_size": 64, "num_hidden_layers": layers, "num_attention_heads": 2,
                                    "vocab_size": 64, "max_position_embeddings": 2048}))
        paths.append(path)
    out = tmp_path / "rec.json"
    assert steelyard("compare", *paths, "--workload", "prompt=256,output=32,rps=5", "--max-ttft", "500ms",
                     "--max-tpot", "50ms", "--hardware", "a100-80gb,l4", "--no-save", "--json", out) == 0
    assert "recommended" in capsys.readouterr().out
    best = json.loads(out.read_text())["best"]
    assert best["model"] == str(paths[0]) and best["hardware"] == "l4"  # the smaller model on the cheaper device
    assert steelyard("compare", *paths, "--workload", "prompt=256,outptu=32,rps=5", "--no-save") == 2
    one_line_error(capsys, "unknown key 'outptu'")
    assert steelyard("compare", *paths, "--max-ttft", "500ms", "--no-save") == 2
    one_line_error(capsys, "need --workload")


def test_compare_workload_writes_html_and_is_stored(tmp_path, capsys):
    import json
    import re

    from tests.cli_helpers import steelyard

    from steelyard.cli.main import run

    path = tmp_path / "llama.json"
    path.write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 32,
                                "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                                "vocab_size": 64, "max_position_embeddings": 2048}))
    html = tmp_path / "serving.html"
    assert steelyard("compare", path, "--workload", "prompt=256,output=32,rps=5", "--max-tpot", "50ms",
                     "--hardware", "l4", "--html", html) == 0
    printed = capsys.readouterr().out
    run_id = int(re.search(r"saved as run (\d+)", printed).group(1))
    text = html.read_text(encoding="utf-8")
    assert "Serving recommendation" in text and "Options meeting every limit" in text
    assert f"Recommended: {path} in float32 on 1× l4" in text
    again = tmp_path / "again.html"
    assert run(["report", str(run_id), "--html", str(again)]) == 0
    assert f"Recommended: {path} in float32 on 1× l4" in again.read_text(encoding="utf-8")
    assert run(["runs", "show", str(run_id)]) == 0
    assert "recommended" in capsys.readouterr().out
