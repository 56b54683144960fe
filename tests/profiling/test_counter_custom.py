"""User formulas (``custom_mapping``, ``register_formula``) and ``ignore=`` in the cost counter.

Formulas follow ``torch.utils.flop_counter.FlopCounterMode``'s convention: shapes in, FLOPs out.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from steelyard.profiling.counter import CostCounter
from steelyard.profiling.op_table_custom import OpFormula, register_formula, unregister_formula


@torch.library.custom_op("steelyard_test::scaled_mm", mutates_args=())
def scaled_mm(a: torch.Tensor, b: torch.Tensor, scale: float) -> torch.Tensor:
    """A custom op the counter cannot see into: its inner matmul never reaches the dispatch mode."""
    return (a @ b) * scale


@scaled_mm.register_fake
def _(a: torch.Tensor, b: torch.Tensor, scale: float) -> torch.Tensor:
    return a.new_empty(a.shape[0], b.shape[1])


def scaled_mm_flops(a_shape, b_shape, scale, *, out_shape=None, **kwargs) -> int:
    """torch's convention: shapes of the args, the output's shape as ``out_shape``; 2 FLOPs per MAC."""
    m, k = a_shape
    assert out_shape == (m, b_shape[1])
    return 2 * m * k * b_shape[1]


def test_custom_op_without_formula_is_uncounted():
    a, b = torch.randn(4, 5), torch.randn(5, 6)
    with CostCounter() as c:
        scaled_mm(a, b, 0.5)
    assert c.result.uncounted == {"steelyard_test::scaled_mm": 1}
    assert c.result.macs == 0


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_custom_op_counted_by_custom_mapping(device):
    a, b = torch.randn(4, 5, device=device), torch.randn(5, 6, device=device)
    with CostCounter(custom_mapping={torch.ops.steelyard_test.scaled_mm: scaled_mm_flops}) as c:
        scaled_mm(a, b, 0.5)
    assert c.result.macs == 4 * 5 * 6
    assert c.result.flops == 2 * 4 * 5 * 6
    assert c.result.macs_by_category == {"custom": 4 * 5 * 6}
    assert c.result.uncounted == {}
    assert c.result.ops["steelyard_test::scaled_mm"].calls == 1


def test_custom_mapping_keyed_by_custom_op_object_and_raw_formula():
    seen = {}

    def raw(a, b, scale, *, out_val=None):
        seen["types"] = (type(a), type(out_val))
        return 2 * a.shape[0] * a.shape[1] * b.shape[1]

    a, b = torch.randn(3, 2), torch.randn(2, 7)
    with CostCounter(custom_mapping={scaled_mm: OpFormula(raw, get_raw=True, category="mm")}) as c:
        scaled_mm(a, b, 1.0)
    assert seen["types"] == (torch.Tensor, torch.Tensor)
    assert c.result.macs_by_category == {"mm": 3 * 2 * 7}


def test_global_registration_for_custom_op():
    register_formula(torch.ops.steelyard_test.scaled_mm)(scaled_mm_flops)
    try:
        with pytest.raises(RuntimeError, match="duplicate"):
            register_formula(torch.ops.steelyard_test.scaled_mm, scaled_mm_flops)
        with CostCounter() as c:
            scaled_mm(torch.randn(2, 3), torch.randn(3, 4), 2.0)
        assert c.result.macs == 2 * 3 * 4
    finally:
        unregister_formula(torch.ops.steelyard_test.scaled_mm)
    with CostCounter() as c:
        scaled_mm(torch.randn(2, 3), torch.randn(3, 4), 2.0)
    assert c.result.macs == 0 and c.result.uncounted == {"steelyard_test::scaled_mm": 1}


def test_custom_mapping_overrides_a_builtin_formula_as_other_flops():
    """torch's ``test_custom`` idea: a formula for aten.add replaces the pointwise rule."""
    x = torch.randn(4, 5)
    with CostCounter(custom_mapping={torch.ops.aten.add: OpFormula(lambda *a, out_shape: 5, kind="other")}) as c:
        x + x
    assert c.result.other_flops == 5 and c.result.macs == 0


def test_odd_matrix_flops_are_refused_not_rounded():
    x = torch.randn(4, 5)
    with pytest.raises(ValueError, match="odd FLOP count"), CostCounter(
        custom_mapping={torch.ops.aten.add: lambda *a, out_shape: 5}
    ):
        x + x


class Square(torch.autograd.Function):
    """x @ x in forward; its backward runs two more matmuls, counted as ordinary ops."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return torch.mm(x, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad @ x.T + x.T @ grad


def test_autograd_function_counted_by_its_formula():
    x = torch.randn(5, 5, requires_grad=True)

    def formula(x_shape, *, out_shape=None):
        return 2 * 7  # deliberately not the mm's count, to show the formula replaced it

    register_formula(Square, formula)
    try:
        with CostCounter() as c:
            Square.apply(x).sum().backward()
    finally:
        unregister_formula(Square)
    assert c.result.ops["Square"].calls == 1 and c.result.ops["Square"].macs == 7
    assert c.result.ops["mm"].macs == 2 * 5 * 5 * 5  # the backward's two matmuls
    assert c.result.macs == 7 + 2 * 125
    assert "forward" not in Square.__dict__ or isinstance(Square.__dict__["forward"], staticmethod)
    with CostCounter() as plain:  # the patch is gone after exit
        Square.apply(x)
    assert plain.result.ops["mm"].macs == 125 and "Square" not in plain.result.ops


def test_ignored_op_is_listed_as_ignored_not_uncounted():
    net = nn.Sequential(nn.Linear(4, 3), nn.Sigmoid())
    x = torch.randn(2, 4)
    with torch.no_grad(), CostCounter(net, ignore=[torch.ops.aten.sigmoid, torch.ops.aten._fft_r2c]) as c:
        net(x)
        torch.fft.fft(x)
    assert c.result.ignored == {"sigmoid": 1, "_fft_r2c": 1}  # fft_fft is composite: its kernel reaches the mode
    assert c.result.uncounted == {}
    assert c.result.other_flops_by_category.get("elementwise", 0) == 2 * 3  # only the bias add
    assert c.result.macs == 2 * 4 * 3


def test_ignored_attention_call():
    q = torch.randn(1, 2, 4, 8)
    with CostCounter(ignore=[torch.nn.functional.scaled_dot_product_attention]) as c:
        torch.nn.functional.scaled_dot_product_attention(q, q, q)
    assert c.result.ignored == {"scaled_dot_product_attention": 1}
    assert c.result.macs == 0 and c.result.uncounted == {}


def test_bad_formula_kind_rejected():
    with pytest.raises(ValueError, match="kind"):
        OpFormula(lambda *a, **k: 0, kind="macs")  # type: ignore[arg-type]
