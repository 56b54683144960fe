"""A quantized KV cache beside the float one: bytes in closed form, interleaved TPOT, greedy agreement, the CLI."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
import transformers

from cli_helpers import one_line_error, steelyard
from steelyard.errors import BackendUnavailableError, ConfigError
from steelyard.models.loading import LoadConfig, load_model
from steelyard.profiling import generation_kv
from steelyard.profiling.generation import profile_generation
from steelyard.profiling.generation_config import GenerationWorkload
from steelyard.profiling.generation_kv import agreement, compare_kv_caches
from steelyard.profiling.generation_report import GenerationReport
from steelyard.reporting.generation_parts import generation_section

pytestmark = pytest.mark.usefixtures("one_thread")

LAYERS, KV_HEADS, HEAD_DIM = 2, 2, 16  # hidden 64 over 4 heads; GQA keeps 2 of them in the cache
PROMPT, NEW, RESIDUAL, GROUP = 8, 11, 4, 64


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


needs_quanto = pytest.mark.skipif(not installed("optimum.quanto"), reason="optimum-quanto not installed (extra llm)")


@pytest.fixture(scope="module")
def llama_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kv") / "llama"
    torch.manual_seed(0)
    config = transformers.LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=LAYERS,
                                      num_attention_heads=4, num_key_value_heads=KV_HEADS, vocab_size=128,
                                      max_position_embeddings=256)  # fmt: skip
    transformers.LlamaForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def llama(llama_folder):
    return load_model(str(llama_folder), LoadConfig(task="causal-lm"))


def workload(kind: str, **kw) -> GenerationWorkload:
    return GenerationWorkload(prompt_len=PROMPT, new_tokens=NEW, kv_cache=kind, kv_residual_length=RESIDUAL,
                              kv_group_size=GROUP, runs=3, **kw)  # fmt: skip


def quantized_bytes(nbits: int, positions: int, decode_updates: int, float_bytes: int = 4) -> float:
    """KIVI-style cache after ``positions``: the quantized part (codes + a float scale and shift per group)
    plus the float residual of the last ``decode_updates mod residual`` tokens, keys and values, every layer."""
    residual = decode_updates % RESIDUAL
    quantized = positions - residual
    width = KV_HEADS * HEAD_DIM
    codes = quantized * width * nbits / 8
    scales = quantized * width / GROUP * 2 * float_bytes
    return LAYERS * 2 * (codes + scales + residual * width * float_bytes)


@needs_quanto
@pytest.mark.parametrize("kind, nbits", [("int4", 4), ("int2", 2)])
def test_quantized_cache_bytes_match_the_closed_form(llama, kind, nbits):
    kv = compare_kv_caches(llama, workload(kind))
    positions = PROMPT + NEW - 1
    assert kv.positions == positions
    # float32 keys + values of every layer, KV heads only
    assert float(kv.float_cache.bytes_per_token) == 2 * LAYERS * KV_HEADS * HEAD_DIM * 4
    expected = quantized_bytes(nbits, positions, NEW - 1)
    assert float(kv.quantized.bytes_per_sequence) == pytest.approx(expected, rel=0.01)
    assert kv.smaller == pytest.approx(2 * LAYERS * KV_HEADS * HEAD_DIM * 4 * positions / expected, rel=0.01)
    assert kv.quantized.backend.startswith("QuantizedCache(quanto) optimum-quanto ")
    assert kv.rounds == 3 and kv.threads == 1 and kv.tpot_outcome in {"faster", "slower", "not significant"}
    assert float(kv.float_cache.tpot_median) > 0 and float(kv.quantized.tpot_median) > 0
    assert 0 <= kv.prefix_agreement <= kv.token_agreement <= 1


def test_fp8_cache_is_one_byte_per_value_plus_a_scale_per_tensor(llama):
    kv = compare_kv_caches(llama, workload("fp8"))
    positions = PROMPT + NEW - 1
    # e4m3 codes, and one float32 scale for the keys and one for the values of each layer
    assert float(kv.quantized.bytes_per_sequence) == LAYERS * 2 * (positions * KV_HEADS * HEAD_DIM + 4)
    assert kv.smaller == pytest.approx(4, rel=0.01)
    assert kv.token_agreement > 0.5  # float8 keys / values barely move a random tiny model's argmax


def test_agreement_counts_equal_tokens_and_the_prefix_before_the_first_difference():
    ref = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]])
    other = torch.tensor([[1, 2, 9, 4], [5, 6, 7, 8]])
    tokens, prefix = agreement(ref, other)
    assert tokens == pytest.approx(7 / 8)
    assert prefix == pytest.approx((2 / 4 + 1) / 2)


def test_the_comparison_round_trips_through_the_report(llama):
    report = profile_generation(llama, workload("fp8"), [], measure=True)
    assert report.kv_cache is not None and report.kv_cache.quantized.cache == "fp8"
    again = GenerationReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again.kv_cache == report.kv_cache
    tables = {t.title: t for t in generation_section(again).tables}  # the HTML / Markdown report shows it too
    kv = tables[f"KV cache, measured generate() at batch 1 ({PROMPT + NEW - 1} cached positions)"]
    assert [row[0] for row in kv.rows] == ["float", "fp8"] and "4.0× smaller" in kv.rows[1][2]


def test_a_missing_backend_names_the_extra(llama, monkeypatch):
    monkeypatch.setattr(generation_kv, "_installed", lambda module: False)
    with pytest.raises(BackendUnavailableError, match=r"pip install 'steelyard\[llm\]' \(or optimum-quanto\)"):
        profile_generation(llama, workload("int4"), [], measure=True)


@pytest.mark.skipif(installed("hqq"), reason="hqq is installed: int8 runs")
def test_int8_says_quanto_has_no_8_bit_cache(llama):
    with pytest.raises(BackendUnavailableError, match=r"needs hqq.*only int2 / int4.*pip install hqq"):
        profile_generation(llama, workload("int8"), [], measure=True)


def test_bad_kv_requests_are_config_errors(llama):
    with pytest.raises(ConfigError, match="--kv-cache must be one of"):
        GenerationWorkload(kv_cache="int3")
    with pytest.raises(ConfigError, match="real weights and measurement"):
        profile_generation(llama, workload("fp8"), [], measure=False)


@needs_quanto
def test_cli_profile_kv_cache_int4_writes_both_caches_to_json(llama_folder, tmp_path, capsys):
    out = tmp_path / "profile.json"
    code = steelyard("profile", llama_folder, "--task", "causal-lm", "--prompt-len", PROMPT, "--new-tokens", NEW,
                     "--kv-cache", "int4", "--kv-residual-length", RESIDUAL, "--hardware", "local", "--runs", 4,
                     "--warmup", 1, "--json", out, "--no-save")  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "KV cache, measured generate()" in printed and "smaller" in printed
    kv = json.loads(out.read_text())["generation"]["kv_cache"]
    assert kv["quantized"]["cache"] == "int4" and kv["float_cache"]["cache"] == "float"
    assert kv["quantized"]["bytes_per_sequence"] == pytest.approx(quantized_bytes(4, PROMPT + NEW - 1, NEW - 1),
                                                                  rel=0.01)
    assert 0 <= kv["token_agreement"] <= 1 and kv["tpot_speedup"] > 0


@pytest.mark.parametrize("args, words", [
    (["--kv-cache", "int3"], ["--kv-cache must be one of"]),
    (["--kv-cache", "fp8", "--config-only"], ["real weights"]),
    (["--kv-cache", "int4"], ["pip install 'steelyard[llm]'"]),
    (["--kv-cache", "fp8", "--new-tokens", "0"], ["add --new-tokens N"]),
])
def test_cli_bad_kv_cache_is_one_line_exit_2(llama_folder, monkeypatch, capsys, args, words):
    monkeypatch.setattr(generation_kv, "_installed", lambda module: False)
    code = steelyard("profile", llama_folder, "--task", "causal-lm", "--prompt-len", PROMPT, "--new-tokens", NEW,
                     "--hardware", "local", "--no-save", *args)  # fmt: skip
    assert code == 2
    one_line_error(capsys, *words)
