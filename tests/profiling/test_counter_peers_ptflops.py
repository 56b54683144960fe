"""ptflops' ``tests/common_test.py`` (``TestOperations``) ported to steelyard's counter.

ptflops reports "MACs" that add the bias add to the multiply-adds (one per output element), and
feeds a batch of 1 built from ``input_res``. steelyard keeps the two apart: ``macs`` are the
multiply-adds only and the bias adds are elementwise other FLOPs, so ptflops' number is
``macs + other_flops_by_category["elementwise"]`` here. Parameter counts are ``numel`` sums.
"""

from __future__ import annotations

import torch
from torch import nn

from steelyard.profiling.counter import CostCounter, CountResult


def complexity(net: nn.Module, input_res: tuple[int, ...], make_input=None) -> tuple[CountResult, int]:
    x = make_input(input_res) if make_input else torch.ones(()).new_empty((1, *input_res))
    with torch.no_grad(), CostCounter(net) as c:
        net(**x) if isinstance(x, dict) else net(x)
    return c.result, sum(p.numel() for p in net.parameters())


def ptflops_macs(r: CountResult) -> int:
    """ptflops' convention: multiply-adds plus one add per output element of a bias."""
    return r.macs + r.other_flops_by_category.get("elementwise", 0)


def test_conv():
    """ptflops: Conv2d(3, 2, 3) on (3, 224, 224): 2759904 MACs = 2·222·222 · (27 + 1), 56 params."""
    r, params = complexity(nn.Sequential(nn.Conv2d(3, 2, 3, bias=True)), (3, 224, 224))
    assert params == 3 * 3 * 2 * 3 + 2
    assert ptflops_macs(r) == 2759904
    assert r.macs == 2 * 222 * 222 * 27  # steelyard's MACs: the convolution alone


def test_fc():
    """ptflops: Linear(3, 2) on (3,): 8 = 6 multiply-adds + 2 bias adds, 8 params."""
    r, params = complexity(nn.Sequential(nn.Linear(3, 2, bias=True)), (3,))
    assert params == 3 * 2 + 2
    assert ptflops_macs(r) == 8 and r.macs == 6


def test_fc_multidim():
    """ptflops: Linear(3, 2) on (4, 5, 3): (3·2 + 2)·4·5 = 160."""
    r, params = complexity(nn.Sequential(nn.Linear(3, 2, bias=True)), (4, 5, 3))
    assert params == 3 * 2 + 2
    assert ptflops_macs(r) == (3 * 2 + 2) * 4 * 5


def test_input_constructor_tensor():
    """ptflops: an input constructor returning a tensor: (8, 8)."""
    r, params = complexity(nn.Sequential(nn.Linear(3, 2, bias=True)), (3,),
                           lambda res: torch.ones(()).new_empty((1, *res)))
    assert (ptflops_macs(r), params) == (8, 8)


def test_input_constructor_dict():
    """ptflops: an input constructor returning keyword arguments: (8, 8)."""

    class CustomLinear(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(3, 2, bias=True)

        def forward(self, x):
            return self.linear(x)

    r, params = complexity(CustomLinear(), (3,), lambda res: {"x": torch.ones(()).new_empty((1, *res))})
    assert (ptflops_macs(r), params) == (8, 8)
    assert r.modules["linear"].macs == 6


def test_func_interpolate_args():
    """ptflops: only asserts MACs > 0 for bilinear interpolate to (20, 20) on (3, 10, 10), keyword
    or positional; its hook counts 1 per output element (1200). steelyard: 4 taps · 2 FLOPs per
    output element = 9600 other FLOPs, no MACs."""

    class CustomModel(nn.Module):
        def forward(self, x):
            return nn.functional.interpolate(input=x, size=(20, 20), mode="bilinear", align_corners=False)

    class Positional(nn.Module):
        def forward(self, x):
            return nn.functional.interpolate(x, size=(20, 20), mode="bilinear")

    for model in (CustomModel(), Positional()):
        r, params = complexity(model, (3, 10, 10))
        assert params == 0
        assert r.macs == 0
        assert r.other_flops_by_category == {"interpolation": 8 * 3 * 20 * 20}
