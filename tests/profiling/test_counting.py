"""``count_forward``: one counted forward (or training step) with the mode handling decided once."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from compression_toys import tiny_bert
from steelyard.compression import DynamicQuantConfig, compress
from steelyard.profiling.counting import count_forward, flops_per_row, rows


class TwoInputs(nn.Module):
    """y = W x + dropout(z): 8·4 MACs per row, a dropout that only runs in train mode."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 4, bias=False)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.lin(x) + self.drop(z)


def test_positional_keyword_and_meta_inputs_count_alike():
    model = TwoInputs().train()
    x, z = torch.randn(3, 8), torch.randn(3, 4)
    by_position = count_forward(model, (x, z))
    by_name = count_forward(model, {"x": x, "z": z})
    assert by_position.macs == by_name.macs == 3 * 8 * 4
    assert "native_dropout" not in by_position.ops  # inference: eval mode for the count
    assert model.training  # and the caller's mode is back
    with torch.device("meta"):
        meta = TwoInputs()
    assert count_forward(meta, (x.to("meta"), z.to("meta"))).macs == 3 * 8 * 4


def test_training_step_counts_backward_and_leaves_no_trace():
    model = TwoInputs().eval()
    x, z = torch.randn(3, 8), torch.randn(3, 4)
    state = torch.random.get_rng_state()
    step = count_forward(model, (x, z), training=True)
    # forward x·Wᵀ, backward dW = dYᵀ·x (x needs no grad): twice the forward's MACs
    assert step.macs == 2 * 3 * 8 * 4
    assert not model.training and model.lin.weight.grad is None
    assert torch.equal(torch.random.get_rng_state(), state)  # dropout's draws were undone
    assert flops_per_row(model, (x, z), training=True) == pytest.approx(2 * step.macs / 3)


def test_rows_of_each_input_kind():
    t = torch.zeros(5, 2)
    assert rows(t) == rows((t,)) == rows({"a": torch.tensor(1.0), "b": t}) == 5
    assert rows({}) == 1


def test_int8_dynamic_bert_counts_the_float_models_macs():
    handle = tiny_bert()
    quantized = compress(handle, DynamicQuantConfig()).handle
    float_count = count_forward(handle.module, handle.inputs)
    int8_count = count_forward(quantized.module, quantized.inputs)
    assert int8_count.macs == float_count.macs > 0
    assert int8_count.macs_by_category["matmul"] == float_count.macs_by_category["matmul"]
    assert not int8_count.uncounted
