"""Conformance over the zoo of published architectures (tests/zoo/entries.py), config only, on meta.

For every entry: parameters equal transformers' own meta build of the same config (tied weights once)
and the published count where one is known; the KV cache per token equals the closed form written in
the entry (the fixed state for Mamba); MoE active parameters equal total minus the unused routed
experts. MACs equal closed forms written out below for a dense MHA decoder (GPT-2), a GQA decoder
(Llama-3.2-1B), an MoE decoder (Mixtral), an encoder-decoder (T5) and a ViT. Entries of 7B and up are
marked ``slow`` (still part of ``make test``); each must profile in under 15 s and 1 GB RSS.
"""

from __future__ import annotations

import json
import time

import pytest
import torch

from steelyard.models import InputSpec, LoadConfig, load_model
from steelyard.models.tasks import auto_class
from steelyard.profiling.profile import ProfileConfig, profile
from zoo.entries import BY_NAME, ZOO, ZooEntry

SEQ = 16


def _load(entry: ZooEntry, tmp_path, **load):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(entry.config))
    spec = InputSpec(1, SEQ, **entry.inputs)
    return load_model(str(path), LoadConfig(config_only=True, task=entry.task, inputs=spec, **load))


def _reference_params(entry: ZooEntry) -> int:
    """transformers' own build of the published config on meta: parameters() counts tied weights once."""
    from transformers import AutoConfig

    kwargs = dict(entry.config)
    config = AutoConfig.for_model(kwargs.pop("model_type"), **kwargs)
    with torch.device("meta"):
        model = auto_class(entry.task).from_config(config)
    return sum(p.numel() for p in model.parameters())


def _marks(entry: ZooEntry):
    return [pytest.mark.slow] if entry.big else []


@pytest.mark.parametrize("entry", [pytest.param(e, id=e.name, marks=_marks(e)) for e in ZOO])
def test_zoo_entry_params_kv_active(entry, tmp_path):
    # CPU seconds of this process, so that other work on a shared machine does not fail the budget; and the
    # RSS this profile adds (the test process already holds whatever earlier tests loaded; benchmarks/zoo.py
    # measures each architecture in a fresh process).
    import psutil

    from steelyard.profiling.latency import PeakMemory

    start, before = time.process_time(), psutil.Process().memory_info().rss
    with PeakMemory() as peak:
        report = profile(_load(entry, tmp_path), ProfileConfig(hardware=(), measure=False))
    seconds = time.process_time() - start
    assert seconds < 15, f"{entry.name}: config-only profile took {seconds:.1f} CPU s"
    assert float(peak.peak) - before < 2**30, f"{entry.name}: the profile added over 1 GB of RSS"

    total = report.parameters.total
    assert total == _reference_params(entry)
    if entry.published is not None:
        assert total == entry.published
    element = {"float32": 4, "bfloat16": 2, "float16": 2}[report.dtype]
    if entry.kv is None:
        assert report.memory.kv_cache_per_token is None
    else:
        assert report.memory.kv_cache_per_token == entry.kv * element
        assert report.memory.kv_cache_per_sequence == entry.kv * element * SEQ  # every window is longer
    if entry.state is None:
        assert report.memory.recurrent_state_per_sequence is None
    else:
        assert report.memory.recurrent_state_per_sequence == entry.state * element
    if entry.inactive is None:
        assert report.parameters.active is None
    else:
        assert report.parameters.active == total - entry.inactive
        assert 0 < report.parameters.active < total
        if entry.active_published:
            assert report.parameters.active == pytest.approx(entry.active_published, rel=0.05)
    assert report.compute.macs > 0
    assert "_grouped_mm" not in report.compute.uncounted_ops


@pytest.mark.slow
def test_mamba_profiles_within_budget_at_128_tokens(tmp_path):
    """The largest Mamba at the CLI's default 128 tokens: its selective scan is counted without the per-token
    loop (tests/families/test_scan.py shows the count is the loop's), so the profile fits the budget."""
    entry = BY_NAME["mamba-2.8b"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(entry.config))
    import psutil

    from steelyard.profiling.latency import PeakMemory

    start, before = time.process_time(), psutil.Process().memory_info().rss
    with PeakMemory() as peak:
        handle = load_model(str(path), LoadConfig(config_only=True, task=entry.task, inputs=InputSpec(1, 128)))
        report = profile(handle, ProfileConfig(hardware=(), measure=False))
    seconds = time.process_time() - start
    assert seconds < 15, f"mamba-2.8b at 128 tokens: config-only profile took {seconds:.1f} CPU s"
    assert float(peak.peak) - before < 2**30, "the profile added over 1 GB of RSS"
    assert report.parameters.total == 2_768_345_600
    assert report.memory.recurrent_state_per_sequence == entry.state * 4
    # Per layer per token: in_proj (H → 2I), x_proj (I → R + 2N), dt_proj (R → I), the scan's state
    # readout (I·N), out_proj (I → H); then the tied LM head. The depthwise conv (I·K per position) runs over
    # the sequence padded by K − 1 on both sides and is cut back to its first L outputs: L + K − 1 positions.
    h, i, n, r, k, layers, vocab, seq = 2560, 5120, 16, 160, 4, 64, 50280, 128
    per_token = layers * (h * 2 * i + i * (r + 2 * n) + r * i + i * n + i * h) + h * vocab
    assert report.compute.macs == seq * per_token + layers * (seq + k - 1) * i * k


# ---- MACs: closed forms at SEQ tokens, causal attention over the full score matrix ----


def _decoder_macs(layers: int, hidden: int, q: int, kv: int, ffn_per_token: int, vocab: int, seq: int) -> int:
    """Projections (q, k, v, o) + FFN per token per layer, the LM head per token, then QKᵀ and AV."""
    projections = hidden * (q + 2 * kv) + q * hidden
    per_token = layers * (projections + ffn_per_token) + hidden * vocab
    return seq * per_token + layers * 2 * seq * seq * q


CLOSED_FORMS = {
    # GPT-2: fused c_attn (3H), c_proj, two FFN matrices of 4H, tied head.
    "gpt2": _decoder_macs(12, 768, 768, 768, 2 * 768 * 3072, 50257, SEQ),
    # Llama-3.2-1B: 32 query heads and 8 KV heads of 64, gated FFN (3 matrices).
    "llama-3.2-1b": _decoder_macs(16, 2048, 2048, 512, 3 * 2048 * 8192, 128256, SEQ),
    # Mixtral: GQA, router (H × 8), top-2 of 8 gated experts per token.
    "mixtral-8x7b": _decoder_macs(32, 4096, 4096, 1024, 4096 * 8 + 2 * 3 * 4096 * 14336, 32000, SEQ),
    # T5-small (T5Model, no head): encoder self-attention + ReLU FFN; decoder self + cross attention + FFN;
    # cross-attention K and V project the encoder's tokens.
    "t5-small": (
        6 * SEQ * (4 * 512 * 512 + 2 * 512 * 2048) + 6 * 2 * SEQ * SEQ * 512
        + 6 * SEQ * (4 * 512 * 512 + 2 * 512 * 512 + 2 * 512 * 2048) + 6 * 2 * SEQ * SEQ * 512
        + 6 * SEQ * 2 * 512 * 512 + 6 * 2 * SEQ * SEQ * 512
    ),
    # ViT-B/16 at 224: patch conv, 197 tokens through 12 blocks, classifier on the CLS token.
    "vit-base-patch16-224": (
        196 * 768 * 3 * 16 * 16 + 12 * 197 * (4 * 768 * 768 + 2 * 768 * 3072) + 12 * 2 * 197 * 197 * 768 + 768 * 1000
    ),
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=_marks(BY_NAME[n])) for n in CLOSED_FORMS])
def test_zoo_macs_equal_the_closed_form(name, tmp_path):
    report = profile(_load(BY_NAME[name], tmp_path), ProfileConfig(hardware=(), measure=False))
    assert report.compute.macs == CLOSED_FORMS[name]


def test_the_zoo_covers_the_families_the_issue_names():
    types = {e.config["model_type"] for e in ZOO}
    assert len(ZOO) >= 30
    assert {"llama", "qwen2", "gemma2", "phi3", "falcon", "opt", "bloom", "gpt_neox", "gpt2", "mistral", "mixtral",
            "qwen2_moe", "deepseek_v2", "olmoe", "t5", "bart", "marian", "whisper", "wav2vec2", "vit", "deit", "swin",
            "segformer", "convnext", "clip", "bert", "distilbert", "roberta", "deberta-v2", "modernbert",
            "mamba"} <= types
