"""Wanda (unstructured 50% and 2:4) and layer dropping by angular distance on tiny decoders."""

from __future__ import annotations

import pytest
import torch
from llm_toys import cosine, logits, tiny_gpt2, tiny_llama

from compression_toys import cnn_handle
from steelyard.compression import (
    AngularLayerConfig,
    CalibrationError,
    NotApplicableError,
    WandaConfig,
    compress,
    load_compressed,
)
from steelyard.compression.pruning.wanda import wanda_mask


def batches(handle):
    return [dict(handle.inputs)]


def test_wanda_mask_keeps_the_weights_of_loud_channels():
    weight = torch.ones(4, 8)
    norms = torch.tensor([1.0, 9.0, 1.0, 1.0, 5.0, 1.0, 7.0, 8.0])  # channels 1, 4, 6, 7 carry the signal
    keep = wanda_mask(weight, norms, 0.5, "unstructured")
    assert keep[:, [1, 4, 6, 7]].all() and not keep[:, [0, 2, 3, 5]].any()
    keep24 = wanda_mask(weight, norms, 0.5, "2:4")
    assert keep24[:, [1, 6, 7]].all() and not keep24[:, [4, 5]].any()  # the loudest 2 of each 4 (ties: any)
    assert (keep24.reshape(4, 2, 4).sum(-1) == 2).all()  # exactly 2 of every 4 kept


@pytest.mark.parametrize("pattern", ["unstructured", "2:4"])
@pytest.mark.parametrize("build", [tiny_llama, tiny_gpt2])
def test_wanda_on_decoders(build, pattern):
    handle = build(batch=4)
    result = compress(handle, WandaConfig(pattern=pattern), data=batches(handle))
    assert result.details["sparsity"] == pytest.approx(0.5)
    assert any("sparse, not faster" in n for n in result.notes)
    layer = (result.handle.module.model.layers[0].mlp.down_proj.weight if build is tiny_llama
             else result.handle.module.transformer.h[0].mlp.c_proj.weight.t())  # Conv1D: (in, out)
    zero_per_row = (layer == 0).sum(dim=1)
    assert (zero_per_row == layer.shape[1] // 2).all()  # the same half of every output row
    assert cosine(logits(handle), logits(result.handle)) > 0.5  # random weights: a loose sanity floor


def test_wanda_needs_calibration():
    with pytest.raises(CalibrationError, match="needs calibration data"):
        compress(tiny_llama(), WandaConfig())


def test_angular_distance_drops_the_block_that_does_nothing(tmp_path):
    handle = tiny_llama(batch=4)
    block = handle.module.model.layers[2]
    with torch.no_grad():  # block 2 adds nothing to the residual stream: distance 0
        block.self_attn.o_proj.weight.zero_()
        block.mlp.down_proj.weight.zero_()
    result = compress(handle, AngularLayerConfig(amount=0.25), data=batches(handle))
    distances = result.details["angular_distance"]
    assert distances[2] == pytest.approx(0.0, abs=1e-3) and min(distances[:2] + distances[3:]) > 0.01
    assert result.details["dropped"] == [2] and result.handle.module.config.num_hidden_layers == 3
    assert cosine(logits(handle), logits(result.handle)) > 0.9999  # the dropped block was the identity
    with torch.inference_mode():
        out = result.handle.module.generate(handle.inputs["input_ids"][:1], max_new_tokens=4, do_sample=False)
    assert out.shape[1] == handle.inputs["input_ids"].shape[1] + 4  # the cache still indexes the kept blocks
    reloaded = load_compressed(result.save(tmp_path / "dropped"))
    assert torch.allclose(logits(reloaded, result.handle.inputs), logits(result.handle))


def test_angular_layer_drop_needs_a_stack_and_data():
    with pytest.raises(NotApplicableError, match="prune:layers-angular"):
        compress(cnn_handle(), AngularLayerConfig(), data=[cnn_handle().inputs])
    with pytest.raises(CalibrationError, match="needs calibration text"):
        compress(tiny_llama(), AngularLayerConfig())
