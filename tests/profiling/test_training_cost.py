"""Training cost (FLOPs → device-hours → $, kWh, CO2), training memory and accessibility verdicts.

Every expected value is recomputed by hand from the catalog's figures and stated formulas.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from steelyard.errors import ConfigError
from steelyard.hardware import catalog_defaults, get_hardware
from steelyard.models import InputSpec, LoadConfig, ModelHandle, load_model
from steelyard.profiling.accessibility import DEFAULT_EFFICIENCY, verdict
from steelyard.profiling.memory import saved_activation_bytes, training_memory
from steelyard.profiling.profile import count
from steelyard.profiling.report import Compute, Memory, TrainingMemory
from steelyard.profiling.training_cost import (
    CHINCHILLA_TOKENS_PER_PARAMETER,
    counted_training_flops,
    data_needs,
    estimate_training,
)
from steelyard.units import Bytes, Flops, Macs
from tiny_configs import GPT2

GPT2_PARAMS = 30720  # closed form in test_profile.py; lm_head tied to wte, counted once
BATCH, SEQ = 2, 16


@pytest.fixture
def gpt2_meta(tmp_path) -> ModelHandle:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(GPT2))
    return load_model(str(path), LoadConfig(inputs=InputSpec(BATCH, SEQ)))


@pytest.fixture
def gpt2_real(tmp_path) -> ModelHandle:
    from transformers import AutoConfig, GPT2LMHeadModel

    cfg = dict(GPT2)
    torch.manual_seed(0)
    folder = tmp_path / "gpt2"
    GPT2LMHeadModel(AutoConfig.for_model(cfg.pop("model_type"), **cfg)).save_pretrained(folder)
    return load_model(str(folder), LoadConfig(inputs=InputSpec(BATCH, SEQ)))


def mlp_handle(*, freeze_first: bool = False) -> ModelHandle:
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    if freeze_first:
        net[0].requires_grad_(False)
    return ModelHandle(
        name="mlp", source_kind="factory", task="feature-extraction", module=net, inputs=(torch.randn(2, 8),)
    )


MLP_PARAMS = 8 * 16 + 16 + 16 * 4 + 4  # 212


# -- FLOPs -------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["gpt2_meta", "gpt2_real"])
def test_counted_forward_backward_is_three_forwards(which, request):
    handle = request.getfixturevalue(which)
    forward = count(handle).flops
    train = counted_training_flops(handle)
    # backward = grad input + grad weight, each one forward's multiply-adds (attention included)
    assert float(train) == pytest.approx(3 * forward, rel=1e-9)
    assert not handle.module.training  # the handle is left as it was found
    assert all(p.grad is None for p in handle.module.parameters())


def test_estimate_counted_vs_6nd(gpt2_meta):
    tokens = 1e9
    hw = [get_hardware("a100-80gb")]
    counted = estimate_training(gpt2_meta, tokens, hw)
    six = estimate_training(gpt2_meta, tokens, hw, method="6ND")
    samples = tokens / SEQ
    assert counted.samples == six.samples == samples
    assert counted.method == "counted" and six.method == "6ND"
    assert counted.flops_per_sample == pytest.approx(counted_training_flops(gpt2_meta) / BATCH)
    assert counted.total_flops == pytest.approx(counted.flops_per_sample * samples)
    assert six.total_flops == six.six_nd_flops == counted.six_nd_flops == 6 * GPT2_PARAMS * tokens
    assert six.flops_per_sample == 6 * GPT2_PARAMS * SEQ
    # the counted forward of this model is 3·(2·(N − wpe)·s + attention): close to 6·N·D
    assert 0.8 < counted.total_flops / six.total_flops < 1.2
    assert any("6·N·D" in a for a in counted.assumptions)


def test_device_hours_cost_energy_co2_by_hand(gpt2_meta):
    a100 = get_hardware("a100-80gb")
    t4 = get_hardware("t4")
    utilization = 0.35
    est = estimate_training(gpt2_meta, 5e9, [a100, t4], utilization=utilization, dtype="bfloat16", method="6ND")
    total = 6 * GPT2_PARAMS * 5e9
    defaults = catalog_defaults()
    assert float(a100.peak_for("bfloat16")) == 312e12  # dense bf16, datasheet
    rows = {r.hardware: r for r in est.rows}
    a = rows["a100-80gb"]
    hours = total / (312e12 * utilization) / 3600
    assert a.device_hours == pytest.approx(hours, rel=1e-12)
    assert a.utilization == utilization
    assert float(a.cost) == pytest.approx(hours * 1.79, rel=1e-12)
    kwh = hours * 400 * defaults.pue / 1000
    assert float(a.energy) == pytest.approx(kwh, rel=1e-12)
    assert float(a.co2) == pytest.approx(kwh * defaults.grid_kg_co2_per_kwh, rel=1e-12)
    # T4 has no bf16 path: its float16 figure (65 TFLOP/s) is used
    t = rows["t4"]
    assert float(t.peak_flops_per_second) == 65e12
    assert t.device_hours == pytest.approx(total / (65e12 * utilization) / 3600, rel=1e-12)
    assert t.device_hours > a.device_hours


@pytest.mark.parametrize("utilization", [0.0, -0.1, 1.5, math.nan])
def test_bad_utilization(gpt2_meta, utilization):
    with pytest.raises(ConfigError, match="utilization"):
        estimate_training(gpt2_meta, 1e6, [get_hardware("t4")], utilization=utilization)


def test_bad_tokens_and_method(gpt2_meta):
    hw = [get_hardware("t4")]
    with pytest.raises(ConfigError, match="tokens"):
        estimate_training(gpt2_meta, 0, hw)
    with pytest.raises(ConfigError, match="method"):
        estimate_training(gpt2_meta, 1e6, hw, method="guess")


def test_data_needs_chinchilla():
    hw = get_hardware("h100-sxm")
    n = 1_000_000
    needs = data_needs(n, [hw], utilization=0.5)
    assert CHINCHILLA_TOKENS_PER_PARAMETER == 20
    assert needs.compute_optimal_tokens == 20 * n
    assert needs.parameters == n
    assert needs.training.total_flops == 6 * n * 20 * n
    row = needs.training.rows[0]
    assert row.device_hours == pytest.approx(6 * n * 20 * n / (float(hw.peak_for("bfloat16")) * 0.5) / 3600)


# -- training memory ---------------------------------------------------------------------------
def test_saved_activations_of_mlp():
    # ReLU keeps its (2, 16) output for backward; the second Linear keeps the same tensor as
    # its input (one storage); the first Linear keeps x (an input) and weights (parameters).
    assert saved_activation_bytes(mlp_handle()) == 2 * 16 * 4


@pytest.mark.parametrize(
    ("optimizer", "precision", "weights", "grads", "states", "acts"),
    [
        # fp32: weights, grads 4 B each; AdamW 2 fp32 moments
        ("adamw", "float32", 4, 4, 8, 128),
        # mixed: fp32 master + half copy (6 B), half grads (2 B), fp32 moments; half activations
        ("adamw", "mixed", 6, 2, 8, 64),
        ("sgd", "float32", 4, 4, 4, 128),  # one momentum buffer
        ("sgd", "mixed", 6, 2, 4, 64),
        ("sgd-nomomentum", "float32", 4, 4, 0, 128),
    ],
)
def test_training_memory_by_hand(optimizer, precision, weights, grads, states, acts):
    tm = training_memory(mlp_handle(), optimizer, precision)
    p = MLP_PARAMS
    assert tm.weights == weights * p
    assert tm.gradients == grads * p
    assert tm.optimizer_states == states * p
    assert tm.activations == acts
    assert tm.total == (weights + grads + states) * p + acts
    assert tm.batch_size == 2


def test_training_memory_frozen_layers_need_no_grads_or_states():
    tm = training_memory(mlp_handle(freeze_first=True), "adamw", "float32", activations=0)
    trainable = 16 * 4 + 4
    assert tm.weights == 4 * MLP_PARAMS  # frozen weights still sit in memory
    assert tm.gradients == 4 * trainable
    assert tm.optimizer_states == 8 * trainable
    assert tm.total == 4 * MLP_PARAMS + 12 * trainable


def test_training_memory_bad_names():
    with pytest.raises(ConfigError, match="optimizer"):
        training_memory(mlp_handle(), "lion", activations=0)
    with pytest.raises(ConfigError, match="precision"):
        training_memory(mlp_handle(), "adamw", "int8", activations=0)


def test_adamw_needs_more_than_sgd_on_meta(gpt2_meta):
    adamw = training_memory(gpt2_meta, "adamw", "mixed")
    sgd = training_memory(gpt2_meta, "sgd", "mixed")
    assert adamw.activations == sgd.activations > 0  # traced on the meta device
    assert adamw.total - sgd.total == 4 * GPT2_PARAMS  # one more fp32 moment per parameter


# -- accessibility verdict ---------------------------------------------------------------------
GIB = 2**30


def hand_compute(flops: float, bytes_moved: float) -> Compute:
    return Compute(
        macs=Macs(flops / 2),
        flops=Flops(flops),
        other_flops=Flops(0),
        macs_by_category={"matmul": Macs(flops / 2)},
        other_flops_by_category={},
        uncounted_ops={},
        causal_attention="full",
        bytes_moved=Bytes(bytes_moved),
        arithmetic_intensity=flops / bytes_moved,
        top_modules=[],
        breakdown_depth=3,
    )


def hand_memory(params: int, activations: float, train_acts: float) -> Memory:
    weights = 4.0 * params
    training_static = 16.0 * params  # AdamW fp32: weights, grads, two moments
    return Memory(
        weights=Bytes(weights),
        peak_activations=Bytes(activations),
        inference_total=Bytes(weights + activations),
        kv_cache_per_token=None,
        kv_cache_per_sequence=None,
        training=TrainingMemory(
            optimizer="adamw",
            precision="float32",
            weights=Bytes(4.0 * params),
            gradients=Bytes(4.0 * params),
            optimizer_states=Bytes(8.0 * params),
            activations=Bytes(train_acts),
            total=Bytes(training_static + train_acts),
            batch_size=1,
        ),
    )


PARAMS = 8_000_000_000  # an 8B model in float32: 32 GB of weights
COMPUTE = hand_compute(flops=2 * PARAMS * 128, bytes_moved=40e9)
MEMORY = hand_memory(PARAMS, activations=1e9, train_acts=4e9)


def test_verdict_fits_a100_not_t4():
    defaults = catalog_defaults()
    a100, t4 = get_hardware("a100-80gb"), get_hardware("t4")
    va = verdict(a100, params=PARAMS, dtype="float32", compute=COMPUTE, memory=MEMORY, batch_size=1)
    vt = verdict(t4, params=PARAMS, dtype="float32", compute=COMPUTE, memory=MEMORY, batch_size=1)
    usable_a100 = 80 * GIB * defaults.usable_memory_fraction
    usable_t4 = 16 * GIB * defaults.usable_memory_fraction
    assert va.usable_memory == pytest.approx(usable_a100)
    assert va.inference_memory == 33e9
    assert va.fits_inference and va.devices_for_inference == 1
    assert not vt.fits_inference
    assert vt.devices_for_inference == math.ceil(33e9 / usable_t4) == 3
    # float16 weights (16 GB + 1 GB) still do not fit 14.4 GiB; int8 (8 GB + 1 GB) does
    assert any("int8" in s for s in vt.suggestions)
    assert not any("float16 weights" in s for s in vt.suggestions)
    assert any("shard the weights over 3×" in s for s in vt.suggestions)
    assert not any(s.startswith("inference") for s in va.suggestions)


def test_verdict_finetune_devices_zero3():
    usable = 80 * GIB * catalog_defaults().usable_memory_fraction
    v = verdict(get_hardware("a100-80gb"), params=PARAMS, dtype="float32", compute=COMPUTE, memory=MEMORY, batch_size=1)
    assert v.finetune_memory == 16 * PARAMS + 4e9
    assert not v.fits_finetune
    # ZeRO-3: weights+grads+states (128 GB) sharded over n devices, each also holding 4 GB of activations
    assert v.devices_for_finetune == math.ceil(16 * PARAMS / (usable - 4e9)) == 2
    assert any("ZeRO-3" in s and "2×" in s for s in v.suggestions)


def test_only_accelerators_are_sharding_targets():
    # A 70B-class need on a CPU box: no "shard over 106× local"; fine-tuning points to accelerators instead.
    big = hand_memory(70_000_000_000, activations=1e9, train_acts=4e9)
    cpu = verdict(get_hardware("server-cpu"), params=70_000_000_000, dtype="float32", compute=COMPUTE, memory=big,
                  batch_size=1)
    assert not cpu.fits_inference and not cpu.fits_finetune
    assert not any("shard" in s or "ZeRO" in s for s in cpu.suggestions), cpu.suggestions
    assert any(s.startswith("fine-tuning needs") and "accelerators" in s for s in cpu.suggestions)
    gpu = verdict(get_hardware("a100-80gb"), params=70_000_000_000, dtype="float32", compute=COMPUTE, memory=big,
                  batch_size=1)
    assert any("ZeRO-3" in s for s in gpu.suggestions) and any("shard the weights" in s for s in gpu.suggestions)


def test_verdict_latency_energy_cost_by_hand():
    hw = get_hardware("a100-80gb")
    defaults = catalog_defaults()
    v = verdict(hw, params=PARAMS, dtype="float32", compute=COMPUTE, memory=MEMORY, batch_size=4)
    floor = max(2 * PARAMS * 128 / 19.5e12, 40e9 / 2039e9)
    assert v.latency_floor_per_batch == pytest.approx(floor)
    assert v.bound == "compute"
    assert v.efficiency_assumed == DEFAULT_EFFICIENCY
    assert v.projected_latency_per_batch == pytest.approx(floor / DEFAULT_EFFICIENCY)
    assert v.energy_per_batch == pytest.approx(floor / DEFAULT_EFFICIENCY * 400 * defaults.pue)
    assert v.cost_per_1k_samples == pytest.approx(1.79 * floor / DEFAULT_EFFICIENCY / 3600 / 4 * 1000)


def test_verdict_float16_model_suggests_only_lower_precisions():
    memory = hand_memory(PARAMS, activations=1e9, train_acts=4e9)
    memory.weights = Bytes(2.0 * PARAMS)
    memory.inference_total = Bytes(2.0 * PARAMS + 1e9)
    v = verdict(get_hardware("t4"), params=PARAMS, dtype="float16", compute=COMPUTE, memory=memory, batch_size=1)
    assert not v.fits_inference
    assert not any("float16 weights" in s for s in v.suggestions)  # not lower than what it already is
    assert any("int8" in s for s in v.suggestions)
