"""Closed-form checks of the quantization formulas, observers and low-bit packing."""

from __future__ import annotations

import pytest
import torch

from steelyard.compression.quantization.formulas import (
    affine_params,
    dequantize,
    fake_quantize,
    max_error_bound,
    qrange,
    quantize,
    range_params,
    symmetric_params,
)
from steelyard.compression.quantization.lowbit import WeightOnlyLinear
from steelyard.compression.quantization.modules import QuantizedEmbedding
from steelyard.compression.quantization.observers import MinMaxObserver, PercentileObserver


def test_qrange():
    assert qrange(8, signed=True) == (-128, 127)
    assert qrange(8, signed=True, narrow=True) == (-127, 127)
    assert qrange(8, signed=False) == (0, 255)
    assert qrange(4, signed=True, narrow=True) == (-7, 7)
    with pytest.raises(ValueError):
        qrange(1, signed=True)


def test_symmetric_closed_form():
    x = torch.tensor([-1.0, 0.0, 0.25, 1.0])
    p = symmetric_params(x, bits=8)
    assert float(p.scale) == pytest.approx(1 / 127)
    assert float(p.zero_point) == 0
    assert quantize(x, p).tolist() == [-127, 0, 32, 127]  # 0.25 * 127 = 31.75 -> 32
    assert dequantize(quantize(torch.tensor([0.0]), p), p).item() == 0.0


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("axis", [None, 0])
def test_symmetric_round_trip_bound(bits, axis):
    torch.manual_seed(0)
    x = torch.randn(16, 64) * torch.linspace(0.1, 5, 16)[:, None]
    p = symmetric_params(x, bits=bits, axis=axis)
    assert (p.zero_point == 0).all()
    err = (x - fake_quantize(x, p)).abs()
    assert (err <= max_error_bound(p) * (1 + 1e-6)).all()
    q = quantize(x, p)
    assert q.min() >= -(2 ** (bits - 1) - 1) and q.max() <= 2 ** (bits - 1) - 1
    if axis == 0:
        assert p.scale.shape == (16, 1)
        # every row uses its own full range: its largest |x| lands on ±qmax
        assert (q.abs().amax(dim=1) == 2 ** (bits - 1) - 1).all()


def test_affine_closed_form():
    x = torch.tensor([0.0, 1.0, 2.55])
    p = affine_params(x, bits=8)
    assert float(p.scale) == pytest.approx(0.01)
    assert float(p.zero_point) == 0
    assert quantize(x, p).tolist() == [0, 100, 255]


@pytest.mark.parametrize("axis", [None, 1])
def test_affine_maps_min_max_and_bounds_error(axis):
    torch.manual_seed(1)
    x = torch.randn(32, 8) * 3 + 1.5  # mostly positive, asymmetric range
    p = affine_params(x, bits=8, axis=axis)
    q = quantize(x, p)
    lo = x.amin(dim=0 if axis == 1 else (0, 1))
    hi = x.amax(dim=0 if axis == 1 else (0, 1))
    # min and max land on the first and last code
    if axis is None:
        assert q.min().item() == p.qmin and q.max().item() == p.qmax
    else:
        assert (q.amin(dim=0) == p.qmin).all() and (q.amax(dim=0) == p.qmax).all()
    # ... and come back within s/2
    back = dequantize(q, p)
    half = max_error_bound(p).reshape(-1)
    assert ((back.amin(dim=0 if axis == 1 else (0, 1)) - lo).abs() <= half * 1.0001).all()
    assert ((back.amax(dim=0 if axis == 1 else (0, 1)) - hi).abs() <= half * 1.0001).all()
    assert ((x - back).abs() <= max_error_bound(p) * 1.0001).all()
    # zero is exact
    zero = torch.zeros(1, 8) if axis == 1 else torch.zeros(1)
    assert (dequantize(quantize(zero, p), p) == 0).all()


def test_affine_vs_symmetric_on_positive_data():
    x = torch.rand(1000) * 6  # all positive: affine uses all 256 codes, symmetric wastes half
    err_affine = (x - fake_quantize(x, affine_params(x))).abs().max()
    err_sym = (x - fake_quantize(x, symmetric_params(x))).abs().max()
    assert err_affine < err_sym


def test_constant_tensor_has_no_nan():
    x = torch.zeros(4, 4)
    for p in (symmetric_params(x), affine_params(x), symmetric_params(x, axis=0)):
        assert torch.isfinite(p.scale).all() and (p.scale > 0).all()
        assert (fake_quantize(x, p) == 0).all()


def test_range_params_clamps_outside_values():
    p = range_params(-1.0, 1.0, bits=8, scheme="affine")
    q = quantize(torch.tensor([-5.0, 5.0]), p)
    assert q.tolist() == [0, 255]


def test_observers():
    mm = MinMaxObserver()
    mm.observe(torch.tensor([-1.0, 2.0]))
    mm.observe(torch.tensor([3.0]))
    assert mm.range() == (-1.0, 3.0)
    x = torch.cat([torch.linspace(-1, 1, 10001), torch.tensor([100.0])])
    pct = PercentileObserver(99.9)
    pct.observe(x)
    lo, hi = pct.range()
    assert hi < 2 and lo > -1.01  # the outlier is clipped
    assert pct.params().scale < mm.params().scale
    with pytest.raises(RuntimeError):
        MinMaxObserver().range()


@pytest.mark.parametrize(("bits", "group", "symmetric"), [(8, 0, True), (4, 32, True), (4, 64, False)])
def test_weight_only_linear_error_bound(bits, group, symmetric):
    """Each weight is off by at most half a step of its (row or group) scale, read back through the kernel."""
    torch.manual_seed(2)
    lin = torch.nn.Linear(64, 16)
    q = WeightOnlyLinear.from_linear(lin, bits, group, symmetric, compute_dtype=torch.float32)  # exact scales
    w = lin.weight.detach()
    err = (w - q.dequantized_weight()).abs()
    step = q.scale[:, None] if bits == 8 else q.scale[..., 0].t().repeat_interleave(group, dim=1)
    assert (err <= step / 2 * 1.001 + 1e-6).all()
    x = torch.randn(3, 64)
    assert torch.allclose(q(x), torch.nn.functional.linear(x, q.dequantized_weight(), lin.bias), atol=1e-4)
    held = q.steelyard_weight()
    assert held.parameters == {f"int{bits}": 64 * 16, "float32": 16}
    scales = 16 * 4 if bits == 8 else (64 // group) * 16 * 2 * 4  # int4: a scale and a zero per group
    assert held.bytes == {f"int{bits}": 16 * 64 * bits // 8, "float32": scales + 16 * 4}


def test_quantized_embedding_rows():
    torch.manual_seed(3)
    emb = torch.nn.Embedding(50, 16)
    q = QuantizedEmbedding.from_embedding(emb)
    ids = torch.tensor([[0, 7, 49], [3, 3, 1]])
    err = (q(ids) - emb(ids)).abs()
    assert (err <= q.scale[ids].unsqueeze(-1) / 2 * 1.0001).all()  # per-row bound s/2
    assert torch.equal(q.qweight.abs().amax(dim=1), torch.full((50,), 127, dtype=torch.int8))
    held = q.steelyard_weight()
    assert (held.parameters, held.bytes) == ({"int8": 50 * 16}, {"int8": 50 * 16, "float32": 50 * 4})
    assert torch.allclose(q.weight, emb.weight, atol=float(q.scale.max()) / 2 + 1e-6)
