"""Pruning: exact parameter and MAC reductions, round trips, schedules, not-applicable cases."""

from __future__ import annotations

import pytest
import torch

from compression_toys import BERT, cnn_handle, outputs, small_cnn, tiny_bert, tiny_resnet
from steelyard.compression import (
    GradualPruner,
    LayerPruneConfig,
    NotApplicableError,
    StructuredPruneConfig,
    UnstructuredPruneConfig,
    compress,
    cubic_sparsity,
    load_compressed,
)
from steelyard.compression.pruning.layers import kept_layers
from steelyard.compression.pruning.structured import kept_count
from steelyard.profiling.counter import CostCounter

H, INTER, LAYERS, HEADS = BERT["hidden_size"], BERT["intermediate_size"], BERT["num_hidden_layers"], 4
HEAD_DIM = H // HEADS


def macs(handle, inputs=None) -> int:
    with torch.inference_mode(), CostCounter(handle.module) as counter:
        handle.forward(inputs)
    return counter.result.macs


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_kept_count_rounds_to_multiples():
    assert kept_count(1536, 0.5, 8) == 768
    assert kept_count(1536, 0.3, 8) == 1072  # 1075.2 -> nearest multiple of 8
    assert kept_count(128, 0.99, 8) == 8  # never below one multiple
    assert kept_count(6, 0.5, 8) == 3  # fewer units than the multiple: plain rounding
    assert kept_count(100, 0.3, 1) == 70


def test_ffn_pruning_exact_params_and_macs(tmp_path):
    handle = tiny_bert()
    result = compress(handle, StructuredPruneConfig(amount=0.5))
    kept = INTER // 2
    removed = INTER - kept
    # per layer: intermediate rows (H weights + 1 bias each) and output columns (H weights each)
    assert result.params_before - result.params_after == LAYERS * removed * (2 * H + 1)
    assert n_params(handle.module) - n_params(result.handle.module) == LAYERS * removed * (2 * H + 1)
    tokens = 2 * 16
    assert macs(handle) - macs(result.handle) == tokens * LAYERS * 2 * H * removed
    assert result.handle.config.intermediate_size == kept
    assert handle.config.intermediate_size == INTER  # the original is untouched
    assert handle.module.bert.encoder.layer[0].intermediate.dense.out_features == INTER
    # FFN-only pruning fits the config: plain transformers from_pretrained round-trips
    from transformers import AutoModelForSequenceClassification

    path = result.save(tmp_path / "ffn")
    loaded = AutoModelForSequenceClassification.from_pretrained(path).eval()
    with torch.inference_mode():
        assert torch.equal(loaded(**result.handle.inputs).logits, outputs(result.handle))


def test_head_pruning_exact_params_and_macs(tmp_path):
    handle = tiny_bert()
    result = compress(handle, StructuredPruneConfig(amount=0.0, heads=0.5))
    gone = HEADS // 2 * HEAD_DIM  # two heads of 16 dims per layer
    per_layer = 3 * (gone * H + gone) + H * gone  # Q, K, V rows (+bias) and output columns
    assert result.params_before - result.params_after == LAYERS * per_layer
    batch, seq = 2, 16
    linear = batch * seq * LAYERS * 4 * H * gone
    attention = batch * LAYERS * (HEADS // 2) * 2 * seq * seq * HEAD_DIM  # QKᵀ and AV of the removed heads
    assert macs(handle) - macs(result.handle) == linear + attention
    attn = result.handle.module.bert.encoder.layer[0].attention.self
    assert attn.num_attention_heads == 2 and attn.all_head_size == 2 * HEAD_DIM
    assert result.details["heads_after"] == 2
    reloaded = load_compressed(result.save(tmp_path / "heads"))
    assert torch.equal(outputs(reloaded, result.handle.inputs), outputs(result.handle))


def test_heads_and_ffn_together_keep_predictions_close():
    handle = tiny_bert()
    result = compress(handle, StructuredPruneConfig(amount=0.25, heads=0.25, importance="l2"))
    assert result.fidelity is not None and result.fidelity.cosine > 0.5
    assert result.details["ffn_after"] == 96 and result.details["heads_after"] == 3


def test_cnn_channel_pruning_matches_a_thinner_model(tmp_path):
    handle = cnn_handle()
    result = compress(handle, StructuredPruneConfig(amount=0.5))
    reference = small_cnn((8, 16))
    assert result.params_after == n_params(reference)
    assert macs(result.handle) == macs(handle.with_module(reference))
    assert n_params(handle.module) == n_params(small_cnn())  # original untouched
    reloaded = load_compressed(result.save(tmp_path / "cnn"), trust_remote_code=True)  # factory: rebuilt, resized
    assert torch.equal(outputs(reloaded, result.handle.inputs), outputs(result.handle))


def test_resnet_channel_pruning_round_trip(tmp_path):
    handle = tiny_resnet()
    result = compress(handle, StructuredPruneConfig(amount=0.5))
    assert result.params_after < result.params_before / 2
    assert macs(result.handle) < macs(handle) / 2
    reloaded = load_compressed(result.save(tmp_path / "resnet"))
    assert torch.equal(outputs(reloaded, result.handle.inputs), outputs(result.handle))


def test_round_to_keeps_multiples_of_eight():
    result = compress(tiny_bert(), StructuredPruneConfig(amount=0.3))
    assert result.details["ffn_after"] % 8 == 0
    off = compress(tiny_bert(), StructuredPruneConfig(amount=0.3, round_to=1))
    assert off.details["ffn_after"] == round(INTER * 0.7)


def test_not_applicable_cases():
    with pytest.raises(NotApplicableError, match="heads apply to transformers"):
        compress(tiny_resnet(), StructuredPruneConfig(amount=0.3, heads=0.5))
    with pytest.raises(NotApplicableError, match="prune:layers"):
        compress(tiny_resnet(), LayerPruneConfig(amount=0.5))
    mlp = tiny_bert().with_module(torch.nn.Sequential(torch.nn.Linear(4, 4)), (torch.randn(2, 4),))
    with pytest.raises(NotApplicableError, match="neither"):
        compress(mlp, StructuredPruneConfig(amount=0.5))


@pytest.mark.parametrize(("strategy", "expected"), [("spread", [0, 2, 4]), ("drop-last", [0, 1, 2])])
def test_layer_pruning(strategy, expected, tmp_path):
    assert kept_layers(6, 0.5, strategy) == expected
    assert kept_layers(6, 2 / 3, "spread") == [0, 3]  # every third layer
    handle = tiny_bert(num_hidden_layers=6)
    result = compress(handle, LayerPruneConfig(amount=0.5, strategy=strategy))
    assert result.handle.config.num_hidden_layers == 3
    assert len(result.handle.module.bert.encoder.layer) == 3
    one_layer = n_params(handle.module.bert.encoder.layer[0])
    assert result.params_before - result.params_after == 3 * one_layer
    assert [layer.attention.self.layer_idx for layer in result.handle.module.bert.encoder.layer] == [0, 1, 2]
    from transformers import AutoModelForSequenceClassification

    loaded = AutoModelForSequenceClassification.from_pretrained(result.save(tmp_path / "layers")).eval()
    with torch.inference_mode():
        assert torch.equal(loaded(**result.handle.inputs).logits, outputs(result.handle))


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_unstructured_pruning(scope, tmp_path):
    handle = tiny_bert()
    result = compress(handle, UnstructuredPruneConfig(amount=0.5, scope=scope))
    assert result.params_after == result.params_before
    assert result.bytes_after == result.bytes_before
    assert any("sparse, not smaller or faster" in n for n in result.notes)
    assert result.details["sparsity"] == pytest.approx(0.5, abs=1e-3)
    layers = [m for n, m in result.handle.module.named_modules()
              if isinstance(m, torch.nn.Linear) and not n.startswith("classifier")]  # fmt: skip
    if scope == "layer":
        for m in layers:
            assert (m.weight == 0).float().mean().item() == pytest.approx(0.5, abs=1 / m.weight.numel())
    assert not hasattr(layers[0], "weight_orig")  # masks made permanent
    assert result.handle.module.classifier.weight.ne(0).all()  # head left alone by default
    assert handle.module.bert.encoder.layer[0].output.dense.weight.ne(0).all()  # original untouched
    from transformers import AutoModelForSequenceClassification

    loaded = AutoModelForSequenceClassification.from_pretrained(result.save(tmp_path / "sparse")).eval()
    with torch.inference_mode():
        assert torch.equal(loaded(**result.handle.inputs).logits, outputs(result.handle))


def test_row_pruning_zeroes_whole_rows():
    result = compress(tiny_bert(), UnstructuredPruneConfig(amount=0.25, norm=2, scope="layer", granularity="row"))
    weight = result.handle.module.bert.encoder.layer[0].intermediate.dense.weight
    zero_rows = (weight == 0).all(dim=1).sum().item()
    assert zero_rows == round(0.25 * weight.shape[0])


def test_cubic_schedule():
    assert cubic_sparsity(0, 0.8, 100) == 0.0
    assert cubic_sparsity(100, 0.8, 100) == pytest.approx(0.8)
    assert cubic_sparsity(50, 0.8, 100) == pytest.approx(0.8 * (1 - 0.5**3))
    assert cubic_sparsity(200, 0.8, 100) == pytest.approx(0.8)
    assert cubic_sparsity(10, 0.8, 100, begin=20) == 0.0
    values = [cubic_sparsity(t, 0.8, 100) for t in range(0, 101, 10)]
    assert values == sorted(values)
    assert values[1] - values[0] > values[-1] - values[-2]  # fast first, slow at the end


def test_gradual_pruner_keeps_pruned_weights_zero():
    model = small_cnn()
    pruner = GradualPruner(model, UnstructuredPruneConfig(amount=0.8, scope="layer"), total_steps=4)
    for step in range(5):
        pruner.step(step)
        with torch.no_grad():  # a training step that would revive pruned weights
            for m in model.modules():
                if hasattr(m, "weight_orig"):
                    m.weight_orig.add_(0.01)
    final = pruner.finalize()
    assert final == pytest.approx(0.8, abs=0.01)
    assert not hasattr(model[0], "weight_orig")
