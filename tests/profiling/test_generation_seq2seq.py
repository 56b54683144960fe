"""Encoder-decoder generation: the encoder counted once, the decoder per step over self- and cross-attention KV."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from tests.cli_helpers import one_line_error, steelyard

from steelyard.errors import ConfigError
from steelyard.models.loading import LoadConfig, load_model
from steelyard.models.tasks import InputSpec
from steelyard.profiling.generation import profile_generation
from steelyard.profiling.generation_config import GenerationWorkload
from steelyard.profiling.generation_count import count_generation
from steelyard.profiling.generation_report import GenerationReport

#: A tiny T5: d = 32, 4 heads of 8 (inner 32), FFN 64, 2 + 2 layers, 100 words (lm_head tied to the table).
D, INNER, FF, LAYERS, VOCAB, BUCKETS = 32, 32, 64, 2, 100, 32
T5 = {"model_type": "t5", "architectures": ["T5ForConditionalGeneration"], "d_model": D, "d_kv": 8, "d_ff": FF,
      "num_layers": LAYERS, "num_decoder_layers": LAYERS, "num_heads": 4, "vocab_size": VOCAB,
      "feed_forward_proj": "relu", "relative_attention_num_buckets": BUCKETS, "decoder_start_token_id": 0,
      "pad_token_id": 0, "eos_token_id": 1}
WHISPER = {"model_type": "whisper", "architectures": ["WhisperForConditionalGeneration"], "d_model": 32,
           "encoder_layers": 1, "decoder_layers": 1, "encoder_attention_heads": 2, "decoder_attention_heads": 2,
           "encoder_ffn_dim": 64, "decoder_ffn_dim": 64, "num_mel_bins": 8, "vocab_size": 100,
           "max_source_positions": 1500, "max_target_positions": 64, "decoder_start_token_id": 1, "pad_token_id": 0,
           "eos_token_id": 2, "bos_token_id": 1}
S, N = 16, 9  # encoder tokens; new tokens: decode steps see self-attention contexts 1 .. 8


def encoder_macs(s: int) -> int:
    """Per layer: q, k, v, o and the FFN per token, then QK^T and AV over s positions."""
    return LAYERS * (s * (4 * D * INNER + 2 * D * FF) + 2 * INNER * s * s)


def decoder_step_macs(context: int, s: int) -> int:
    """One token: self q, k, v, o; cross q, o (its K/V are cached); FFN; attention over context + 1 and s; lm_head."""
    linear = LAYERS * (4 * D * INNER + 2 * D * INNER + 2 * D * FF) + D * VOCAB
    attention = LAYERS * (2 * INNER * (context + 1) + 2 * INNER * s)
    return linear + attention


def decoder_weight_bytes() -> int:
    """fp32 decoder weights: self + cross attention, FFN, 3 norms per layer, final norm, bias table, shared table."""
    per_layer = 4 * D * INNER + 4 * D * INNER + 2 * D * FF + 3 * D
    return 4 * (LAYERS * per_layer + D + BUCKETS * 4 + VOCAB * D)


KV_PER_TOKEN = 2 * LAYERS * INNER * 4  # self-attention keys and values, fp32


@pytest.fixture(scope="module")
def t5_count(tmp_path_factory):
    path = tmp_path_factory.mktemp("t5") / "t5.json"
    path.write_text(json.dumps(T5))
    handle = load_model(str(path), LoadConfig(config_only=True, generate=True, inputs=InputSpec(seq_len=8)))
    assert handle.task == "seq2seq-lm"
    return count_generation(handle, GenerationWorkload(prompt_len=S, new_tokens=N))


def test_t5_encoder_once_and_decoder_steps_match_the_closed_forms(t5_count):
    c = t5_count
    assert c.encoder is not None and c.encoder_tokens == S and c.context_start == 1
    assert float(c.encoder.flops) == 2 * encoder_macs(S)
    cross_projection = LAYERS * 2 * D * INNER * S  # the start token's forward computes the cross K/V once
    assert float(c.prefill.flops) == 2 * (encoder_macs(S) + cross_projection + decoder_step_macs(0, S))
    assert [p.context for p in c.decode] == [1, N - 1]
    for point in c.decode:
        step = point.cost
        assert float(step.flops) == 2 * decoder_step_macs(point.context, S)
        assert float(step.weight_bytes) == decoder_weight_bytes()  # the encoder's weights are not read again
        assert float(step.kv_read) == KV_PER_TOKEN * point.context + KV_PER_TOKEN * S  # self + cross
        assert float(step.kv_written) == KV_PER_TOKEN  # one self-attention position; cross K/V not rewritten
    assert float(c.cross_kv_bytes) == KV_PER_TOKEN * S and float(c.kv_bytes_per_token) == KV_PER_TOKEN
    assert float(c.kv_bytes_per_sequence) == KV_PER_TOKEN * (1 + N + S)
    assert list(c.contexts()) == list(range(1, N))


def test_the_encoder_decoder_card_round_trips_and_projects(t5_count, tmp_path):
    path = tmp_path / "t5.json"
    path.write_text(json.dumps(T5))
    handle = load_model(str(path), LoadConfig(config_only=True, generate=True, inputs=InputSpec(seq_len=8)))
    from steelyard.hardware import get_hardware

    report = profile_generation(handle, GenerationWorkload(prompt_len=S, new_tokens=N, batch_sizes=(1, 4)),
                                [get_hardware("a100-80gb")], measure=False)
    again = GenerationReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again.count.encoder == report.count.encoder and again.count.cross_kv_bytes == report.count.cross_kv_bytes
    assert any("encoder-decoder" in a for a in report.assumptions)
    one, four = report.hardware[0].batches
    assert float(four.memory) - float(one.memory) == pytest.approx(3 * float(report.count.kv_bytes_per_sequence))


def test_whisper_small_config_only_counts_the_30_s_encoder_and_its_cross_attention():
    handle = load_model("whisper-small", LoadConfig(config_only=True, generate=True, dtype="float16",
                                                    inputs=InputSpec(seq_len=8, audio_seconds=30)))
    c = count_generation(handle, GenerationWorkload(new_tokens=128, audio_seconds=30))
    assert c.encoder_tokens == 1500  # 3000 mel frames, a stride-2 convolution
    assert float(c.cross_kv_bytes) == 2 * 12 * 768 * 1500 * 2  # K and V, 12 layers, fp16
    assert float(c.kv_bytes_per_token) == 2 * 12 * 768 * 2
    with pytest.raises(ConfigError, match="holds at most 448"):
        count_generation(handle, GenerationWorkload(new_tokens=500, audio_seconds=30))


def test_cli_whisper_config_only_and_bad_length(tmp_path, capsys):
    path = tmp_path / "whisper.json"
    path.write_text(json.dumps(WHISPER))
    out = tmp_path / "card.json"
    assert steelyard("profile", path, "--audio-seconds", "30", "--new-tokens", "8", "--hardware", "l4",
                     "--no-save", "--json", out) == 0
    assert "encoder over 1500 positions" in capsys.readouterr().out
    data = json.loads(out.read_text())["generation"]
    assert data["count"]["encoder_tokens"] == 1500 and data["hardware"][0]["batches"][0]["ttft"] > 0
    assert steelyard("profile", path, "--audio-seconds", "30", "--new-tokens", "100", "--no-save",
                     "--hardware", "l4") == 2
    one_line_error(capsys, "holds at most 64")


@pytest.fixture(scope="module")
def real_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("seq2seq")
    torch.manual_seed(0)
    plain = {k: v for k, v in T5.items() if k not in ("model_type", "architectures")}
    transformers.T5ForConditionalGeneration(transformers.T5Config(**plain)).save_pretrained(root / "t5")
    plain = {k: v for k, v in WHISPER.items() if k not in ("model_type", "architectures")}
    transformers.WhisperForConditionalGeneration(transformers.WhisperConfig(**plain)).save_pretrained(root / "whisper")
    return {name: load_model(str(root / name), LoadConfig(generate=True)) for name in ("t5", "whisper")}


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("name", ["t5", "whisper"])
def test_real_generate_on_encoder_decoders_includes_the_encoder_in_ttft(real_models, name):
    handle = real_models[name]
    assert not handle.on_meta and handle.task in ("seq2seq-lm", "speech-seq2seq")
    report = profile_generation(handle, GenerationWorkload(prompt_len=S, new_tokens=6, batch_sizes=(1, 2), runs=2),
                                [], measure=True)
    assert [m.batch for m in report.measured] == [1, 2]
    for m in report.measured:
        assert float(m.ttft_median) > 0 and float(m.tpot_median) > 0 and m.tpot_ratio is not None
        assert m.tokens_per_second == pytest.approx(m.batch * 6 / float(m.e2e_median))
    if name == "whisper":  # a 1500-position encoder before the first token: far longer than one decoder step
        assert float(report.measured[0].ttft_median) > 2 * float(report.measured[0].tpot_median)
