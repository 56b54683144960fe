"""Architecture geometry, per-modality inputs, MoE in float32, the default dtype and bad input.

Small configs (or published configs read without building) keep this file fast; the zoo conformance
test (test_zoo.py) weighs the full published architectures.
"""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
import torch
from transformers import AutoConfig

from cli_helpers import one_line_error, steelyard
from steelyard.families.geometry import geometry, kv_cache, recurrent_state_bytes
from steelyard.families.inputs import example_inputs, modality
from steelyard.models import InputSpec, LoadConfig, load_model
from steelyard.profiling.op_table import grouped_mm_macs, grouped_mm_meta
from steelyard.profiling.profile import ProfileConfig, profile
from zoo.entries import BY_NAME


def _config(name: str):
    kwargs = dict(BY_NAME[name].config)
    return AutoConfig.for_model(kwargs.pop("model_type"), **kwargs)


def _write(tmp_path, config: dict) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return str(path)


def _profile(source: str, **load):
    handle = load_model(source, LoadConfig(config_only=True, **load))
    return profile(handle, ProfileConfig(hardware=(), measure=False))


# ---- attention geometry and the KV cache ----


def test_sliding_layers_cache_at_most_their_window():
    # Mistral-7B-v0.1: every layer slides over 4096 tokens; at 8192 each caches 4096.
    mistral = kv_cache(_config("mistral-7b-v0.1"), 8192, 2)
    assert mistral.per_token == 2 * 32 * 8 * 128 * 2
    assert mistral.per_sequence == 2 * 32 * 8 * 128 * 2 * 4096
    assert mistral.capped_layers == 32
    # Gemma-2-9B alternates local (4096) and global layers: 21 of 42 are capped.
    gemma = kv_cache(_config("gemma-2-9b"), 8192, 2)
    per_layer = 2 * 8 * 256 * 2
    assert gemma.per_sequence == 21 * per_layer * 4096 + 21 * per_layer * 8192
    assert gemma.capped_layers == 21
    # Qwen2.5 publishes a sliding_window but does not use it: no layer is capped.
    qwen = kv_cache(_config("qwen2.5-7b"), 65536, 2)
    assert qwen.per_sequence == qwen.per_token * 65536 and qwen.capped_layers == 0


def test_multi_query_in_both_spellings_and_mla_latent():
    falcon_7b = geometry(_config("falcon-7b"))  # multi_query=True, no num_key_value_heads
    assert falcon_7b.kv_heads == 1 and {a.kind for a in falcon_7b.attention} == {"mqa"}
    falcon_40b = AutoConfig.for_model("falcon", hidden_size=8192, num_attention_heads=128, num_kv_heads=8,
                                      new_decoder_architecture=True, num_hidden_layers=60)
    assert kv_cache(falcon_40b, 1, 1).per_token == 2 * 60 * 8 * 64
    bigcode = AutoConfig.for_model("gpt_bigcode", n_embd=6144, n_head=48, n_layer=40, multi_query=True)
    assert kv_cache(bigcode, 1, 1).per_token == 2 * 40 * 1 * 128
    deepseek = geometry(_config("deepseek-v2-lite"))
    assert {a.kind for a in deepseek.attention} == {"mla"}
    assert kv_cache(_config("deepseek-v2-lite"), 10, 2).per_sequence == 27 * (512 + 64) * 10 * 2


def test_ffn_kinds_experts_and_state_space():
    assert geometry(_config("gpt2")).ffn.kind == "dense"
    assert geometry(_config("llama-3.2-1b")).ffn.kind == "gated"
    ds = geometry(_config("deepseek-v2-lite")).ffn
    assert (ds.kind, ds.experts, ds.top_k, ds.shared_experts, ds.expert_size) == ("moe", 64, 6, 2, 1408)
    assert ds.moe_layers == tuple(range(1, 27))  # first_k_dense_replace=1
    qwen = geometry(_config("qwen1.5-moe-a2.7b")).ffn
    assert (qwen.experts, qwen.top_k, qwen.shared_experts) == (60, 4, 1)
    mamba = _config("mamba-130m")
    assert geometry(mamba).attention == () and kv_cache(mamba, 100, 4) is None
    assert recurrent_state_bytes(mamba, 4) == 24 * 1536 * (16 + 4) * 4


def test_an_encoder_decoder_caches_with_its_decoder_heads():
    bart = AutoConfig.for_model("bart", d_model=512, encoder_attention_heads=16, decoder_attention_heads=8,
                                encoder_layers=3, decoder_layers=2)
    assert kv_cache(bart, 1, 1).per_token == 2 * 2 * 8 * 64


def test_stacks_and_positions():
    t5 = geometry(_config("flan-t5-base"))
    assert (t5.encoder_layers, t5.decoder_layers) == (12, 12)
    bert = geometry(_config("bert-base-uncased"))
    assert (bert.encoder_layers, bert.decoder_layers, bert.attention) == (12, 0, ())
    assert geometry(_config("roberta-base")).max_positions == 512  # 514 rows, 2 reserved
    assert geometry(_config("llama-3.1-405b")).decoder_layers == 126


# ---- inputs per modality ----


@pytest.mark.parametrize(("name", "kind", "keys"), [
    ("t5-small", "seq2seq", {"input_ids", "attention_mask", "decoder_input_ids"}),
    ("whisper-tiny", "speech-seq2seq", {"input_features", "decoder_input_ids"}),
    ("wav2vec2-base", "audio", {"input_values"}),
    ("clip-vit-base-patch32", "image-text", {"input_ids", "attention_mask", "pixel_values"}),
    ("vit-base-patch16-224", "vision", {"pixel_values"}),
    ("bert-base-uncased", "text", {"input_ids", "attention_mask"}),
])
def test_inputs_per_modality(name, kind, keys):
    config = _config(name)
    assert modality(config) == kind
    inputs = example_inputs(config, batch=2, seq_len=8, device="meta", decoder_len=4, audio_seconds=2.0)
    assert set(inputs) == keys
    if "decoder_input_ids" in inputs:
        assert inputs["decoder_input_ids"].shape == (2, 4)
    if kind == "speech-seq2seq":
        assert inputs["input_features"].shape == (2, 80, 200)  # 2 s at a 10 ms hop
    if kind == "audio":
        assert inputs["input_values"].shape == (2, 32000)


def test_whisper_defaults_to_its_30_second_window():
    inputs = example_inputs(_config("whisper-tiny"), batch=1, seq_len=8, device="meta")
    assert inputs["input_features"].shape == (1, 80, 3000)


def test_decoder_len_sizes_the_decoder(tmp_path):
    report = _profile(_write(tmp_path, BY_NAME["t5-small"].config), inputs=InputSpec(1, 16, decoder_len=4))
    assert report.input.shapes["decoder_input_ids"] == [1, 4]
    assert report.memory.kv_cache_per_sequence == 2 * 6 * 8 * 64 * 4 * 4


def test_a_factory_returning_a_transformers_model_gets_inputs_from_its_config(tmp_path, monkeypatch):
    (tmp_path / "zoo_factory.py").write_text(textwrap.dedent("""
        from transformers import ViTConfig, ViTForImageClassification

        def build():
            return ViTForImageClassification(ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                       intermediate_size=64, image_size=32, patch_size=8))
    """))
    monkeypatch.chdir(tmp_path)
    handle = load_model("zoo_factory:build", LoadConfig(inputs=InputSpec(batch_size=2)))
    sys.modules.pop("zoo_factory", None)
    assert handle.inputs["pixel_values"].shape == (2, 3, 32, 32)
    assert handle.forward().logits.shape[0] == 2


# ---- MoE: float32 on meta, grouped mm at top-k ----

TINY_MIXTRAL = dict(model_type="mixtral", architectures=["MixtralForCausalLM"], hidden_size=64,
                    intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                    vocab_size=128, num_local_experts=4, num_experts_per_tok=2, tie_word_embeddings=False)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_moe_profiles_in_float32_and_counts_top_k_experts(tmp_path, dtype):
    report = _profile(_write(tmp_path, TINY_MIXTRAL), dtype=dtype, inputs=InputSpec(1, 8))
    seq, h, inner, layers = 8, 64, 96, 2
    per_layer = h * (64 + 2 * 32) + 64 * h + h * 4 + 2 * 3 * h * inner  # attention, router, top-2 experts
    expected = seq * (layers * per_layer + h * 128) + layers * 2 * seq * seq * 64
    assert report.compute.macs == expected
    assert report.compute.macs_by_category["matmul"] > 0 and "_grouped_mm" not in report.compute.uncounted_ops
    expert = 3 * h * inner
    assert report.parameters.active == report.parameters.total - layers * (4 - 2) * expert
    assert report.to_dict()["parameters"]["active"] == report.parameters.active
    assert any("top-2 of 4 experts" in a for a in report.assumptions)
    assert report.memory.training is not None  # the saved-tensor trace runs through grouped mm too


def test_grouped_mm_formula_and_meta_shapes():
    tokens = torch.empty(12, 64, device="meta")
    experts = torch.empty(4, 64, 96, device="meta")
    offs = torch.empty(4, dtype=torch.int32, device="meta")
    assert grouped_mm_macs((tokens, experts, offs), {}, None) == 12 * 64 * 96
    assert grouped_mm_meta((tokens, experts, offs), {}).shape == (12, 96)
    batched = torch.empty(4, 5, 64, device="meta")
    assert grouped_mm_macs((batched, experts), {}, None) == 4 * 5 * 64 * 96
    assert grouped_mm_meta((torch.empty(2, 2), torch.empty(2, 2, 2)), {}) is None  # real tensors run the kernel


# ---- dtype ----


def test_config_only_defaults_to_the_published_dtype_and_says_so(tmp_path):
    source = _write(tmp_path, {**TINY_MIXTRAL, "torch_dtype": "bfloat16"})
    default = _profile(source, inputs=InputSpec(1, 4))
    assert default.dtype == "bfloat16"
    assert any("the config's own torch_dtype" in a for a in default.assumptions)
    forced = _profile(source, dtype="float32", inputs=InputSpec(1, 4))
    assert forced.dtype == "float32"
    assert any("published in bfloat16" in a for a in forced.assumptions)
    assert forced.parameters.total == default.parameters.total


# ---- bad input: one line, exit 2 ----


def test_unknown_model_type_is_one_line(tmp_path, capsys):
    source = _write(tmp_path, {"model_type": "not-a-real-architecture", "hidden_size": 8})
    assert steelyard("profile", source, "--config-only", "--no-save", "--hardware", "") == 2
    one_line_error(capsys, "not-a-real-architecture")


def test_family_needing_a_missing_package_is_one_line(tmp_path, capsys):
    pytest.importorskip("transformers")
    if __import__("importlib").util.find_spec("timm") is not None:
        pytest.skip("timm is installed here")
    source = _write(tmp_path, {"model_type": "timm_wrapper", "architecture": "resnet18"})
    assert steelyard("profile", source, "--config-only", "--no-save", "--hardware", "") == 2
    one_line_error(capsys, "timm", "not installed")


def test_audio_length_the_model_rejects_is_one_line(tmp_path, capsys):
    source = _write(tmp_path, {**BY_NAME["whisper-tiny"].config, "encoder_layers": 1, "decoder_layers": 1})
    code = steelyard("profile", source, "--config-only", "--no-save", "--hardware", "", "--audio-seconds", "10",
                     "--seq-len", "4")
    assert code == 2
    one_line_error(capsys, "input_features")


def test_sequence_longer_than_the_encoder_allows_is_one_line(tmp_path, capsys):
    source = _write(tmp_path, {**BY_NAME["roberta-base"].config, "num_hidden_layers": 1})
    assert steelyard("profile", source, "--config-only", "--no-save", "--hardware", "", "--seq-len", "513") == 2
    one_line_error(capsys, "513", "512")
