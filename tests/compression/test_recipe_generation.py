"""The generative rows of a recipe on a causal LM: decode tokens/s interleaved with its interval, TTFT, TPOT,
KV bytes per token, memory and the agreement of greedy generations, both models measured in one run."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest
import torch
from llm_toys import LLAMA, saved_llama, tiny_llama, weather_text

from cli_helpers import one_line_error, steelyard
from steelyard.compression.recipe import RecipeOptions, parse_recipe, run_recipe
from steelyard.compression.recipe.generation import measure_generation_pair, random_prompts, text_prompts
from steelyard.data import load_dataset
from steelyard.errors import ConfigError
from steelyard.models import LoadConfig, load_model
from steelyard.profiling.generation_config import GenerationWorkload
from steelyard.profiling.interleaved import speed_outcome
from steelyard.reporting.compress_view import before_after_rows, verdict_lines
from steelyard.store import open_store
from steelyard.units import Bytes

pytestmark = pytest.mark.usefixtures("one_thread")

WORK = GenerationWorkload(prompt_len=6, new_tokens=5, batch_sizes=(1, 3))
FAST = RecipeOptions(max_length=16, batch_size=4, eval_batch_size=16, n_resamples=50, rounds=3, warmup=0,
                     calibration_batches=2, progress=False, generation=WORK, agreement_prompts=4)  # fmt: skip


@pytest.fixture(scope="module")
def llm(tmp_path_factory):
    root = tmp_path_factory.mktemp("llm-generation")
    folder = saved_llama(root / "llama")
    handle = load_model(str(folder), LoadConfig(task="causal-lm"))
    text_file = weather_text(root / "weather.txt")
    return handle, load_dataset(str(text_file), "causal-lm"), folder, text_file


def _closed_form_kv(config, dtype_bytes: int) -> int:
    """Keys and values of every layer: 2 × layers × kv heads × head dim × bytes per element."""
    head_dim = config.hidden_size // config.num_attention_heads
    return 2 * config.num_hidden_layers * config.num_key_value_heads * head_dim * dtype_bytes


def test_a_copy_agrees_fully_and_the_numbers_are_consistent():
    handle = tiny_llama()
    twin = dataclasses.replace(handle, module=copy.deepcopy(handle.module))
    prompts = random_prompts(handle, 4, WORK.prompt_len, seed=0)
    weights = (Bytes(1000.0), Bytes(1000.0))
    before, after = measure_generation_pair(handle, twin, prompts, source="random token ids",
                                            new_tokens=WORK.new_tokens, batch_sizes=WORK.batch_sizes,
                                            weights=weights, timed=True, rounds=3, warmup=0, threads=1)
    assert after.agreement == 1.0 and after.identical == after.prompts == 4
    per_token = _closed_form_kv(handle.config, 4)  # float32 DynamicCache
    assert before.kv_bytes_per_token == after.kv_bytes_per_token == per_token
    positions = WORK.prompt_len + WORK.new_tokens - 1  # the last token is never fed back
    for card in (before, after):
        assert [r.batch for r in card.runs] == [1, 3]
        for run in card.runs:
            assert run.kv_cache_bytes == per_token * run.batch * positions
            assert run.memory == 1000.0 + run.kv_cache_bytes
            if run.batch == max(WORK.batch_sizes):  # traced at the largest batch: the cache is among its tensors
                assert run.peak_memory > run.memory
            else:
                assert run.peak_memory is None
            # decode tokens/s: the tokens after the first (TTFT) over the median decode time
            assert run.tokens_per_second == pytest.approx(run.batch * (WORK.new_tokens - 1) / run.decode.median)
            assert run.decode.runs == 3 and len(run.decode.samples) == 3
            assert 0 < run.tpot <= run.decode.median and run.ttft > 0
    for rb, ra in zip(before.runs, after.runs, strict=True):
        assert rb.speedup is None
        sp = ra.speedup
        assert sp.ratio == pytest.approx(rb.decode.median / ra.decode.median)
        assert sp.ratio == pytest.approx(ra.tokens_per_second / rb.tokens_per_second)
        assert sp.ci_low <= sp.ratio <= sp.ci_high and sp.rounds == 3
        assert sp.outcome == speed_outcome(sp.ratio, sp.ci_low, sp.ci_high, sp.rounds)


def test_kv_bytes_follow_the_cache_dtype_and_the_kv_heads():
    half = tiny_llama(num_key_value_heads=1)
    half.module.to(torch.bfloat16)
    prompts = random_prompts(half, 2, 4, seed=1)
    before, _ = measure_generation_pair(half, half, prompts, source="random token ids", new_tokens=3,
                                        batch_sizes=(2,), weights=(Bytes(0.0), Bytes(0.0)), timed=False, rounds=1,
                                        warmup=0, threads=1)
    assert before.kv_bytes_per_token == _closed_form_kv(half.config, 2) == 2 * LLAMA["num_hidden_layers"] * 1 * 16 * 2
    assert before.runs[0].tokens_per_second is None and before.runs[0].decode is None  # untimed


def test_prompts_are_fixed_slices_of_the_evaluation_text():
    blocks = [{"input_ids": list(range(i * 10, i * 10 + 10))} for i in range(5)]  # one stream 0..49
    prompts = text_prompts(blocks, 3, 8)
    assert prompts.tolist() == [list(range(0, 8)), list(range(21, 29)), list(range(42, 50))]
    assert torch.equal(prompts, text_prompts(blocks, 3, 8))
    with pytest.raises(ConfigError, match="holds only 50 tokens"):
        text_prompts(blocks, 2, 60)


def test_a_destructive_recipe_disagrees_and_the_json_carries_every_field(llm):
    handle, text, _, _ = llm
    result = run_recipe(handle, parse_recipe("prune:layers-angular,amount=0.5"), text, FAST)
    gb, ga = result.before.generation, result.after.generation
    assert gb.prompt_source == ga.prompt_source == "evaluation text"
    assert gb.agreement == 1.0 and ga.agreement < 1.0 and ga.prompts == 4
    assert ga.kv_bytes_per_token == gb.kv_bytes_per_token / 2  # 4 layers → 2
    assert result.before.metric == "perplexity" and "perplexity" in result.changes  # still paired-tested
    decode = [v for v in result.verdicts() if v.kind == "decode"]
    assert [v.batch for v in decode] == [1, 3]
    d = json.loads(json.dumps(result.to_dict()))
    after = d["after"]["generation"]
    for key in ("prompt_len", "new_tokens", "kv_bytes_per_token", "agreement", "identical", "runs"):
        assert key in after, key
    for key in ("batch", "tokens_per_second", "ttft", "tpot", "tpot_p90", "kv_cache_bytes", "memory", "decode",
                "speedup"):
        assert key in after["runs"][0], key
    assert after["runs"][1]["peak_memory"] > after["runs"][1]["memory"]
    assert after["runs"][0]["speedup"]["outcome"] in ("faster", "slower", "not significant")
    labels = [row[0] for row in before_after_rows(d)]
    for words in ("decode tokens/s (batch 1, 6 + 5 tokens)", "TTFT, median (batch 3)", "TPOT, median (batch 1)",
                  "KV cache per token (per sequence)", "memory at batch 3: weights + KV cache (6 + 5 tokens)",
                  "peak memory at batch 3: weights + generate()'s live tensors (traced)",
                  "greedy tokens equal to the original's (4 prompts from the evaluation text × 5)"):
        assert words in labels, words
    ppl = d["before"]["metrics"]["perplexity"]
    assert ppl["unit"] == "documents"  # the test split's lines, each scored in blocks of its own
    assert f"perplexity (test, 95% CI over {ppl['n']} documents)" in labels
    lines = verdict_lines(d)
    assert any(line.startswith("decode at batch 1: ") for line in lines)


def test_decode_verdict_is_worded_by_its_interval():
    from steelyard.compression.recipe.result import Verdict
    from steelyard.reporting.compress_view import verdict_text

    unsure = verdict_text(Verdict("decode", "not significant", 1.04, ci_low=0.97, ci_high=1.1, rounds=10, batch=8))
    assert unsure.startswith("decode at batch 8: not significantly faster: 1.04x") and "includes 1.0" in unsure
    sure = verdict_text(Verdict("decode", "faster", 2.1, ci_low=1.9, ci_high=2.3, rounds=10, batch=1))
    assert sure.startswith("decode at batch 1: 2.10x faster (95% CI 1.90–2.30, median decode time")


def test_without_timing_agreement_and_kv_still_come_and_no_decode_verdict(llm):
    handle, text, _, _ = llm
    opts = dataclasses.replace(FAST, measure_latency=False)
    result = run_recipe(handle, parse_recipe("prune:layers-angular,amount=0.25"), text, opts)
    assert result.after.generation.agreement is not None and result.after.generation.kv_bytes_per_token > 0
    assert all(r.tokens_per_second is None for r in result.after.generation.runs)
    assert not [v for v in result.verdicts() if v.kind == "decode"]
    rows = [row[0] for row in before_after_rows(result.to_dict())]
    assert not any(r.startswith("decode tokens/s") for r in rows) and "KV cache per token (per sequence)" in rows


def test_no_generation_when_switched_off_or_for_an_encoder():
    from compression_toys import tiny_bert

    off = dataclasses.replace(FAST, generation=None, measure_latency=False)
    llama = tiny_llama()
    assert run_recipe(llama, parse_recipe("prune:layers,amount=0.25"), None, off).after.generation is None
    bert = run_recipe(tiny_bert(), parse_recipe("prune:unstructured,amount=0.3"), None,
                      dataclasses.replace(FAST, measure_latency=False))
    assert bert.before.generation is None and bert.after.generation is None


def test_bad_generation_options_fail_in_one_line(llm):
    handle, text, _, _ = llm
    with pytest.raises(ConfigError, match="at least 2"):
        RecipeOptions(generation=GenerationWorkload(new_tokens=1))
    with pytest.raises(ConfigError, match="agreement-prompts"):
        RecipeOptions(agreement_prompts=0)
    too_long = dataclasses.replace(FAST, generation=GenerationWorkload(prompt_len=100, new_tokens=64))
    with pytest.raises(ConfigError, match="holds at most 128"):
        run_recipe(handle, parse_recipe("prune:layers,amount=0.25"), text, too_long)


def test_too_little_evaluation_text_for_the_prompts_fails_in_one_line(llm, tmp_path):
    handle = llm[0]
    short = load_dataset(str(weather_text(tmp_path / "short.txt", lines=12)), "causal-lm")
    opts = dataclasses.replace(FAST, generation=GenerationWorkload(prompt_len=100, new_tokens=4))
    with pytest.raises(ConfigError, match="--prompt-len 100: the evaluation text holds only"):
        run_recipe(handle, parse_recipe("prune:layers,amount=0.25"), short, opts)


def test_compress_cli_shows_and_writes_the_generative_rows(llm, tmp_path, capsys):
    _, _, folder, text_file = llm
    js = tmp_path / "c.json"
    code = steelyard("compress", folder, "--recipe", "prune:layers-angular,amount=0.5", "--data", text_file,
                     "--task", "causal-lm", "--batch-size", "4", "--max-length", "16", "--rounds", "3",
                     "--prompt-len", "6", "--new-tokens", "4", "--decode-batch-sizes", "1,2", "--agreement-prompts",
                     "3", "--json", js)
    assert code == 0
    out = capsys.readouterr().out
    for words in ("decode tokens/s (batch 2", "TTFT, median (batch 1)", "KV cache per token", "greedy tokens",
                  "decode at batch 1: "):
        assert words in out, words
    run = open_store().list_runs(kind="compression")[0]
    assert "--new-tokens 4" in run.config["command"] and "--decode-batch-sizes 1,2" in run.config["command"]
    for name in ("batch1.decode_tokens_per_s", "before.batch2.decode_tokens_per_s", "batch1.tpot_s",
                 "batch2.decode_speedup", "kv_bytes_per_token", "before.kv_bytes_per_token", "greedy_agreement"):
        assert name in run.metrics, name  # runs list / diff line two recipes' decode up by these names
    assert run.metrics["batch1.decode_tokens_per_s"][1] == "1/s" and 0 <= run.metrics["greedy_agreement"][0] <= 1
    assert run.metrics["kv_bytes_per_token"][0] == run.metrics["before.kv_bytes_per_token"][0] * 0.5  # 4 → 2 layers
    md = tmp_path / "r.md"
    assert steelyard("report", str(run.id), "--markdown", md) == 0
    page = md.read_text()
    assert "decode tokens/s (batch 1, 6 + 4 tokens)" in page and "Generation: both models produce exactly 4" in page
    d = json.loads(js.read_text())
    assert [r["batch"] for r in d["after"]["generation"]["runs"]] == [1, 2]
    assert d["after"]["generation"]["prompts"] == 3 and d["after"]["generation"]["new_tokens"] == 4
    assert steelyard("compress", folder, "--recipe", "prune:layers,amount=0.25", "--new-tokens", "1",
                     "--no-save") == 2
    one_line_error(capsys, "--new-tokens")
    assert steelyard("compress", folder, "--recipe", "prune:layers,amount=0.25", "--decode-batch-sizes", "1,x",
                     "--no-save") == 2
    one_line_error(capsys, "--decode-batch-sizes")
