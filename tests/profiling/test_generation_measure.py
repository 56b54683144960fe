"""Measured generate(): the bookkeeping on a fake clock, and real runs of tiny random Llama and GPT-2 models."""

from __future__ import annotations

import pytest
import torch
import transformers

from steelyard.models.loading import LoadConfig, load_model
from steelyard.profiling.generation import profile_generation
from steelyard.profiling.generation_config import GenerationWorkload
from steelyard.profiling.generation_measure import StepClock, summarize

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_bookkeeping_on_stamps_from_a_fake_clock():
    """Tokens at 0.5 s (TTFT) then every 0.1 s growing by 0.01 s per step; the end 0.05 s after the last."""
    new = 5
    stamps = [0.5]
    for i in range(1, new):
        stamps.append(stamps[-1] + 0.1 + 0.01 * i)
    run = [*stamps, stamps[-1] + 0.05]
    m = summarize(2, new, [run, run], "perf_counter", 100.0, 80.0, "rss")
    assert float(m.ttft_median) == pytest.approx(0.5)
    assert float(m.tpot_median) == pytest.approx((0.12 + 0.13) / 2)  # gaps .11 .12 .13 .14
    assert float(m.tpot_late) > float(m.tpot_early)
    assert float(m.e2e_median) == pytest.approx(run[-1])
    assert m.tokens_per_second == pytest.approx(2 * new / run[-1])
    assert float(m.decode_median) == pytest.approx(run[-1] - 0.5)
    ticks = iter([10.0, 10.4, 10.5, 10.7])
    clock = StepClock(torch.device("cpu"), clock=lambda: next(ticks))
    clock.start()
    scores = torch.zeros(1, 3)
    assert clock(torch.zeros(1, 1), scores) is scores and clock(torch.zeros(1, 1), scores) is scores
    assert clock.stop() == pytest.approx([0.4, 0.5, 0.7])


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    torch.manual_seed(0)
    llama = transformers.LlamaConfig(hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                                     num_attention_heads=4, num_key_value_heads=2, vocab_size=8192,
                                     max_position_embeddings=1024)
    transformers.LlamaForCausalLM(llama).save_pretrained(root / "llama")
    gpt2 = transformers.GPT2Config(n_embd=64, n_layer=2, n_head=2, vocab_size=512, n_positions=256)
    transformers.GPT2LMHeadModel(gpt2).save_pretrained(root / "gpt2")
    return {name: load_model(str(root / name), LoadConfig(task="causal-lm")) for name in ("llama", "gpt2")}


def test_real_generate_emits_exactly_the_tokens_asked_and_books_them(tiny_models):
    handle = tiny_models["gpt2"]
    report = profile_generation(handle, GenerationWorkload(prompt_len=8, new_tokens=6, batch_sizes=(1, 2), runs=2),
                                [], measure=True)
    assert [m.batch for m in report.measured] == [1, 2]
    for m in report.measured:
        assert m.runs == 2 and m.timer == "perf_counter"
        assert float(m.ttft_median) > 0 and float(m.tpot_median) > 0
        assert m.tokens_per_second == pytest.approx(m.batch * 6 / float(m.e2e_median))
        assert float(m.decode_median) < float(m.e2e_median)
        assert m.projected_tpot is not None and m.tpot_ratio is not None and m.tpot_ratio > 0  # `local` beside it
        assert float(m.peak_memory) > 0


def test_ttft_grows_with_the_prompt_and_tpot_with_the_batch(tiny_models):
    handle = tiny_models["llama"]
    short = profile_generation(handle, GenerationWorkload(prompt_len=8, new_tokens=4, runs=3), [], measure=True)
    long = profile_generation(handle, GenerationWorkload(prompt_len=768, new_tokens=4, runs=3), [], measure=True)
    assert float(long.measured[0].ttft_median) > float(short.measured[0].ttft_median)
    wide = profile_generation(handle, GenerationWorkload(prompt_len=8, new_tokens=6, batch_sizes=(1, 64), runs=3),
                              [], measure=True)
    one, many = wide.measured
    assert float(many.tpot_median) > float(one.tpot_median)  # lm_head over 8192 words for 64 rows
    assert many.tokens_per_second > one.tokens_per_second
    # the counted curve grows with the context (KV read, attention), as the measured TPOT would with enough of it
    assert long.count.decode[-1].cost.kv_read > short.count.decode[-1].cost.kv_read
