"""Bias adds are elementwise work: 1 other FLOP per output element, never part of the MACs.

Matrix FLOPs stay 2·MACs of the matmul / convolution alone (torch's and fvcore's convention);
the bias add shows in ``other_flops_by_category["elementwise"]`` (its gradient, a reduction over
grad_output, in ``["reduction"]``).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from steelyard.profiling.counter import CostCounter

MODES = {"no_grad": torch.no_grad, "inference_mode": torch.inference_mode}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_bias_add_closed_form(mode, bias):
    lin = nn.Linear(5, 3, bias=bias)
    with MODES[mode](), CostCounter(lin) as c:
        lin(torch.randn(2, 4, 5))
    assert c.result.macs == 2 * 4 * 5 * 3
    assert c.result.flops == 2 * c.result.macs
    assert dict(c.result.other_flops_by_category) == ({"elementwise": 2 * 4 * 3} if bias else {})
    assert c.result.modules[""].other_flops == (2 * 4 * 3 if bias else 0)


@pytest.mark.parametrize("device", ["cpu", "meta"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_bias_add_closed_form(mode, bias, device):
    conv = nn.Conv2d(3, 4, 3, padding=1, bias=bias, device=device)
    with MODES[mode](), CostCounter(conv) as c:
        conv(torch.randn(2, 3, 5, 6, device=device))
    out = 2 * 4 * 5 * 6
    assert c.result.macs == out * 3 * 3 * 3
    assert dict(c.result.other_flops_by_category) == ({"elementwise": out} if bias else {})


def test_addmm_beta_zero_adds_nothing():
    a, b, bias = torch.randn(4, 5), torch.randn(5, 6), torch.randn(6)
    with CostCounter() as c:
        torch.addmm(bias, a, b)
        torch.addmm(bias, a, b, beta=0)
    assert c.result.macs == 2 * 4 * 5 * 6
    assert c.result.other_flops_by_category == {"elementwise": 4 * 6}


def test_conv_training_step_counts_bias_add_and_bias_grad():
    conv = nn.Conv2d(2, 3, 3)
    x = torch.randn(1, 2, 6, 6, requires_grad=True)
    with CostCounter(conv) as c:
        conv(x).sum().backward()
    out = 3 * 4 * 4
    assert c.result.macs == 3 * out * 2 * 9  # forward, grad_input, grad_weight
    assert c.result.ops["convolution"].other_flops == out
    assert c.result.ops["convolution_backward"].other_flops == out  # grad_bias sums grad_output
