"""Generation cost: counted prefill/decode against closed forms, roofline projections, bad input."""

from __future__ import annotations

import json

import pytest
from tests.cli_helpers import one_line_error, steelyard

from steelyard.errors import ConfigError
from steelyard.hardware import get_hardware
from steelyard.models.loading import LoadConfig, load_model
from steelyard.models.tasks import InputSpec
from steelyard.profiling.generation import profile_generation
from steelyard.profiling.generation_config import GenerationWorkload, parse_batch_sizes
from steelyard.profiling.generation_count import at_batch, count_generation, sample_contexts
from steelyard.profiling.generation_report import GenerationReport, expert_fraction

#: A one-layer Llama config file (meta device when loaded): quick CLI runs.
TINY = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 32, "intermediate_size": 64,
        "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 64, "max_position_embeddings": 128}
P, N = 64, 33  # decode steps see contexts 64 .. 95


def meta(name: str, dtype: str = "float16"):
    return load_model(name, LoadConfig(config_only=True, dtype=dtype, inputs=InputSpec(batch_size=1, seq_len=8)))


@pytest.fixture(scope="module")
def llama2():
    handle = meta("llama-2-7b")
    return handle, count_generation(handle, GenerationWorkload(prompt_len=P, new_tokens=N))


@pytest.fixture(scope="module")
def llama3():
    handle = meta("llama-3-8b")
    return handle, count_generation(handle, GenerationWorkload(prompt_len=P, new_tokens=N))


def closed_form(params: int, d: int, layers: int, kv_heads: int, head_dim: int, ff: int, vocab: int):
    """Llama geometry in closed form (fp16, 2 bytes): matmul weights, per-token KV, embedding table."""
    matmul = layers * (2 * d * d + 2 * d * kv_heads * head_dim + 3 * d * ff)  # q, o; k, v; gate, up, down
    return {
        "matmul": matmul,
        "lm_head": vocab * d,
        "attention_per_position": 4 * layers * d,  # QK^T and AV: 2 FLOPs x d per position per layer, each
        "kv_per_token": 2 * layers * kv_heads * head_dim * 2,  # keys and values, 2 bytes each
        "weights_read": 2 * (params - vocab * d),  # every weight but the input table (B rows looked up)
    }


LLAMA2 = closed_form(6_738_415_616, 4096, 32, 32, 128, 11008, 32000)  # published config.json
LLAMA3 = closed_form(8_030_261_248, 4096, 32, 8, 128, 14336, 128256)  # GQA: 8 KV heads


@pytest.mark.parametrize(("fixture", "form"), [("llama2", LLAMA2), ("llama3", LLAMA3)])
def test_counted_phases_match_the_closed_forms(request, fixture, form):
    _, count = request.getfixturevalue(fixture)
    prefill = count.prefill
    expected = 2 * P * form["matmul"] + 2 * form["lm_head"] + form["attention_per_position"] * P * P
    assert float(prefill.flops) == pytest.approx(expected, rel=0.01)
    assert float(prefill.kv_written) == pytest.approx(P * form["kv_per_token"], rel=0.01)
    assert float(prefill.bytes_moved) == pytest.approx(form["weights_read"] + P * form["kv_per_token"], rel=0.01)
    for context in (P, 80, P + N - 2):  # counted ends and an interpolated middle
        step = count.decode_at(context)
        flops = 2 * (form["matmul"] + form["lm_head"]) + form["attention_per_position"] * (context + 1)
        assert float(step.flops) == pytest.approx(flops, rel=0.01)
        kv = form["kv_per_token"]
        assert float(step.kv_read) == pytest.approx(context * kv, rel=0.01)
        assert float(step.kv_written) == pytest.approx(kv, rel=0.01)
        assert float(step.bytes_moved) == pytest.approx(form["weights_read"] + (context + 1) * kv, rel=0.01)
    # decode is 2 FLOPs per weight per token, plus attention: the textbook 2·N (embedding table not multiplied)
    assert float(count.decode_at(P).flops) == pytest.approx(2 * 6.74e9 if fixture == "llama2" else 2 * 7.5e9, rel=0.02)


def test_gqa_caches_a_quarter_of_the_keys_and_values(llama2, llama3):
    assert float(llama3[1].kv_bytes_per_token) * 4 == pytest.approx(float(llama2[1].kv_bytes_per_token))


def test_batch_one_decode_of_llama2_on_an_a100_lands_in_the_public_range(llama2):
    """~2.0 TB/s × 70% / 13.5 GB ≈ 105 tok/s; engines report ~80–140 tok/s (BENCHMARKS.md)."""
    handle, _ = llama2
    report = profile_generation(handle, GenerationWorkload(prompt_len=P, new_tokens=N, batch_sizes=(1, 64)),
                                [get_hardware("a100-80gb")], measure=False)
    row = report.on("a100-80gb")
    one = row.batches[0]
    assert 80 <= 1 / float(one.tpot) <= 140
    assert one.decode_bound == "memory"
    assert one.prefill_bound == "memory"  # 64 tokens sit below the A100's ridge (~130 FLOP/B at these efficiencies)
    assert row.devices == 1 and row.max_batch > 64
    assert row.decode_compute_bound_batch is not None and row.decode_compute_bound_batch > 1
    big = row.batches[1]
    assert big.prefill_bound == "compute"  # 64 × 64 prompt tokens are past it
    assert big.tokens_per_second > 10 * one.tokens_per_second  # weights read once for the whole batch
    assert float(big.cost_per_1m_output) < float(one.cost_per_1m_output)
    assert [p.context for p in report.positions] == sorted(p.context for p in report.positions)
    assert report.positions[-1].bytes_moved > report.positions[0].bytes_moved  # the KV read grows


def test_a_model_too_big_for_one_device_is_split_and_the_report_round_trips(llama3):
    handle, _ = llama3
    report = profile_generation(handle, GenerationWorkload(prompt_len=P, new_tokens=N), [get_hardware("t4")],
                                measure=False)
    row = report.on("t4")
    assert row.devices == 2 and "tensor-parallel over 2" in row.notes[0]  # 16.1 GB (15.0 GiB) > 90% of a T4's 16 GiB
    again = GenerationReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again.to_dict() == report.to_dict()
    assert again.count.decode_at(80) == report.count.decode_at(80)


def test_a_batch_that_does_not_fit_names_the_largest_that_does(llama2):
    handle, _ = llama2
    with pytest.raises(ConfigError, match=r"batch 4096 does not fit on a100-80gb .* largest batch that fits is \d+"):
        profile_generation(handle, GenerationWorkload(prompt_len=P, new_tokens=N, batch_sizes=(4096,)),
                           [get_hardware("a100-80gb")], measure=False, require_fit=True)


def test_more_positions_than_the_model_holds_are_refused_with_the_limit():
    handle = meta("gpt2", "float32")
    with pytest.raises(ConfigError, match="holds at most 1024"):
        count_generation(handle, GenerationWorkload(prompt_len=1000, new_tokens=100))


def test_sampling_and_the_expert_model():
    assert sample_contexts(10, 1, 3) == []
    assert sample_contexts(10, 3, 3) == [10, 11]
    assert sample_contexts(100, 101, 3) == [100, 150, 199]
    assert expert_fraction(8, 2, 1) == pytest.approx(0.25)  # Mixtral: 2 of 8 at batch 1
    assert expert_fraction(8, 2, 64) == pytest.approx(1.0, abs=1e-6)
    assert parse_batch_sizes("1, 8,32,8") == (1, 8, 32)
    with pytest.raises(ConfigError, match="positive integers"):
        parse_batch_sizes("1,x")


def test_cli_bad_input_is_one_line_and_exit_2(capsys, tmp_path):
    tiny = tmp_path / "tiny.json"
    tiny.write_text(json.dumps(TINY))
    assert steelyard("profile", tiny, "--prompt-len", "100", "--new-tokens", "64", "--no-save",
                     "--hardware", "laptop-cpu") == 2
    one_line_error(capsys, "holds at most 128")
    assert steelyard("profile", tiny, "--prompt-len", "16", "--new-tokens", "8", "--batch-size", "1,1000000000",
                     "--no-save", "--hardware", "laptop-cpu") == 2
    one_line_error(capsys, "does not fit", "largest batch that fits")
    bert = tmp_path / "bert.json"
    bert.write_text(json.dumps({"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 1,
                                "num_attention_heads": 2, "intermediate_size": 64}))
    assert steelyard("profile", bert, "--new-tokens", "8", "--no-save", "--hardware", "laptop-cpu") == 2
    one_line_error(capsys, "needs a generative")
    assert steelyard("profile", bert, "--batch-size", "1,2", "--no-save", "--hardware", "laptop-cpu") == 2
    one_line_error(capsys, "need --new-tokens")


def test_cli_config_only_writes_the_generation_card(tmp_path, capsys):
    tiny = tmp_path / "tiny.json"
    tiny.write_text(json.dumps(TINY))
    out = tmp_path / "card.json"
    assert steelyard("profile", tiny, "--prompt-len", "16", "--new-tokens", "8", "--batch-size", "1,4",
                     "--hardware", "a100-80gb,l4", "--json", out) == 0
    printed = capsys.readouterr().out
    assert "Generation" in printed and "TTFT" in printed
    data = json.loads(out.read_text())["generation"]
    assert [b["batch"] for b in data["hardware"][0]["batches"]] == [1, 4]
    assert data["workload"]["prompt_len"] == 16 and data["measured"] == []


#: Mixtral-8x7B's published config.json (the fields the count reads); 8 experts, 2 per token, GQA 8 KV heads.
MIXTRAL = {"model_type": "mixtral", "architectures": ["MixtralForCausalLM"], "hidden_size": 4096,
           "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
           "num_local_experts": 8, "num_experts_per_tok": 2, "vocab_size": 32000, "max_position_embeddings": 32768,
           "torch_dtype": "bfloat16"}


def test_mixtral_decode_reads_the_active_experts_at_batch_one_and_more_as_the_batch_grows(tmp_path):
    """Mixtral-8x7B counted on the real transformers module (meta): 2 of 8 experts per token.

    Closed form per layer: attention q, o (d²) and k, v (d · 8 · 128); 8 experts of 3 · d · ff; the router
    d · 8. At batch 1 a decode step reads the dense weights and 2/8 of the experts; B tokens touch
    1 - (3/4)^B of them (uniform routing, stated in the report's assumptions).
    """
    path = tmp_path / "mixtral.json"
    path.write_text(json.dumps(MIXTRAL))
    handle = load_model(str(path), LoadConfig(config_only=True, dtype="bfloat16", task="causal-lm",
                                              inputs=InputSpec(batch_size=1, seq_len=8)))
    count = count_generation(handle, GenerationWorkload(prompt_len=P, new_tokens=N))
    d, ff, layers, vocab, kv = 4096, 14336, 32, 32000, 8 * 128
    attention = layers * (2 * d * d + 2 * d * kv)
    experts = layers * 8 * 3 * d * ff
    router = layers * d * 8
    dense_read = 2 * (attention + router + vocab * d)  # bf16; the lm_head is read, the input table only looked up
    assert count.moe is not None and (count.moe.experts, count.moe.per_token) == (8, 2)
    assert float(count.moe.expert_bytes) == pytest.approx(2 * experts, rel=0.001)
    step = count.decode_at(P)
    kv_per_token = 2 * layers * kv * 2
    assert float(step.bytes_moved) == pytest.approx(dense_read + 2 * experts / 4 + (P + 1) * kv_per_token, rel=0.01)
    active_matmul = attention + router + layers * 2 * 3 * d * ff + vocab * d
    assert float(step.flops) == pytest.approx(2 * active_matmul + 4 * layers * d * (P + 1), rel=0.01)
    assert float(step.flops) == pytest.approx(2 * 12.9e9, rel=0.03)  # 2 · N_active, N_active ≈ 12.9 B
    for batch in (1, 4, 32):
        weights = float(at_batch(step, batch, count).weight_bytes)
        assert weights == pytest.approx(dense_read + 2 * experts * (1 - 0.75 ** batch), rel=0.01)
    report = profile_generation(handle, GenerationWorkload(prompt_len=P, new_tokens=N, batch_sizes=(1, 32)),
                                [get_hardware("h100-sxm")], measure=False)
    one, many = report.on("h100-sxm").batches
    assert float(many.tpot) > float(one.tpot)  # 32 tokens read nearly every expert
    assert any("2 of 8 experts per token" in note for note in report.assumptions)
