"""Closed-form tests of the formulas added for upsampling, fp8 / weight-only / quantized matmuls,
the low-level attention kernels and ``new_empty_strided``.

Conventions: 1 MAC = 2 FLOPs; an interpolation tap is one multiply-add (2 other FLOPs) per output
element, so bilinear is 8 other FLOPs per output element; nearest modes are data movement.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from steelyard.profiling import op_table
from steelyard.profiling.counter import CostCounter, CountResult

aten = torch.ops.aten
MODES = {"no_grad": torch.no_grad, "inference_mode": torch.inference_mode}


def count(fn, mode: str = "no_grad", model: nn.Module | None = None) -> CountResult:
    with MODES[mode](), CostCounter(model) as c:
        fn()
    return c.result


def meta(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(*shape, device="meta", dtype=dtype)


# -- upsampling ------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("interp", "shape", "taps"),
    [
        ("linear", (2, 3, 5), 2),
        ("bilinear", (2, 3, 4, 4), 4),
        ("bicubic", (2, 3, 4, 4), 16),
        ("trilinear", (1, 2, 3, 3, 3), 8),
    ],
)
def test_interpolate_two_flops_per_tap_per_output_element(interp, shape, taps, mode):
    x = torch.randn(*shape)
    r = count(lambda: F.interpolate(x, scale_factor=2, mode=interp), mode)
    out = shape[0] * shape[1] * 2 ** (len(shape) - 2) * torch.Size(shape[2:]).numel()
    assert r.other_flops_by_category == {"interpolation": 2 * taps * out}
    assert r.macs == 0 and r.uncounted == {}


@pytest.mark.parametrize("interp", ["nearest", "nearest-exact"])
def test_nearest_interpolation_is_data_movement(interp):
    for shape in [(1, 2, 5), (1, 2, 4, 4), (1, 2, 3, 3, 3)]:
        r = count(lambda shape=shape: F.interpolate(torch.randn(*shape), scale_factor=2, mode=interp))
        assert r.other_flops == 0 and r.macs == 0 and r.uncounted == {}
        assert r.bytes_moved > 0


def test_upsample_module_with_align_corners():
    up = nn.Upsample(scale_factor=3, mode="bilinear", align_corners=True)
    r = count(lambda: up(torch.randn(1, 2, 2, 2)), model=up)
    assert r.other_flops_by_category == {"interpolation": 8 * 1 * 2 * 6 * 6}


def test_antialiased_downscale_widens_the_taps():
    # 8x8 -> 2x2 is a 4x downscale per dim: 2·4 taps per dim, 64 taps, 2 FLOPs each.
    r = count(lambda: F.interpolate(torch.randn(1, 3, 8, 8), size=(2, 2), mode="bilinear", antialias=True))
    assert r.other_flops_by_category == {"interpolation": 2 * 64 * 3 * 2 * 2}


# -- fp8 and weight-only matmuls -------------------------------------------------------------
@pytest.mark.parametrize("bias", [False, True])
def test_scaled_mm_closed_form_on_meta(bias):
    a = meta(16, 32, dtype=torch.float8_e4m3fn)
    b = meta(48, 32, dtype=torch.float8_e4m3fn).t()
    one = torch.ones((), device="meta")
    extra = {"bias": meta(48, dtype=torch.bfloat16)} if bias else {}
    r = count(lambda: torch._scaled_mm(a, b, one, one, out_dtype=torch.bfloat16, **extra))
    assert r.macs == 16 * 32 * 48
    assert r.macs_by_category == {"matmul": 16 * 32 * 48}
    assert r.other_flops_by_category == ({"elementwise": 16 * 48} if bias else {})


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_weight_int8pack_mm(device):
    x = torch.randn(4, 32, dtype=torch.bfloat16, device=device)
    w = torch.randint(-8, 8, (16, 32), dtype=torch.int8, device=device)
    scales = torch.randn(16, dtype=torch.bfloat16, device=device)
    r = count(lambda: aten._weight_int8pack_mm(x, w, scales))
    assert r.macs == 4 * 32 * 16 and r.uncounted == {}


def test_weight_int4pack_mm_for_cpu():
    w = torch.randint(0, 16, (16, 64), dtype=torch.int32)
    packed = aten._convert_weight_to_int4pack_for_cpu(w, 1)
    scales_zeros = torch.randn(64 // 32, 16, 2, dtype=torch.bfloat16)
    x = torch.randn(4, 64, dtype=torch.bfloat16)
    r = count(lambda: aten._weight_int4pack_mm_for_cpu(x, packed, 32, scales_zeros))
    assert r.macs == 4 * 64 * 16 and r.uncounted == {}


def test_weight_int4pack_mm_formula():
    """The CUDA kernel has no CPU / meta implementation here: the formula reads x and the output."""
    assert aten._weight_int4pack_mm in op_table.MAC_OPS
    category, formula = op_table.MAC_OPS[aten._weight_int4pack_mm]
    x, packed, out = meta(4, 64), meta(2, 1, 32, 4, dtype=torch.int32), meta(4, 16)
    assert category == "matmul" and formula((x, packed, 32, meta(2, 16, 2)), {}, out) == 4 * 64 * 16


# -- low-level attention kernels called directly ---------------------------------------------
B, H, LQ, LK, E, EV = 2, 4, 8, 10, 16, 12


def sdpa_macs(b=B, h=H, lq=LQ, lk=LK, e=E, ev=EV) -> int:
    return b * h * lq * lk * (e + ev)


def test_flash_and_efficient_forward_kernels_bl_he_layout():
    h16 = torch.float16
    q, k, v = meta(B, LQ, H, E, dtype=h16), meta(B, LK, H, E, dtype=h16), meta(B, LK, H, EV, dtype=h16)
    flash = count(lambda: aten._flash_attention_forward(q, k, v, None, None, LQ, LK, 0.0, False, False))
    eff = count(lambda: aten._efficient_attention_forward(q, k, v, None, None, None, LQ, LK, 0.0, 0, False))
    assert flash.macs == eff.macs == sdpa_macs()
    assert flash.macs_by_category == {"attention": sdpa_macs()}


@pytest.mark.parametrize(
    "call",
    [
        lambda q, k, v: aten._scaled_dot_product_flash_attention(q.half(), k.half(), v.half()),
        lambda q, k, v: aten._scaled_dot_product_efficient_attention(q, k, v, None, False),
        lambda q, k, v: aten._scaled_dot_product_cudnn_attention(q.half(), k.half(), v.half(), None, False),
    ],
    ids=["flash", "efficient", "cudnn"],
)
def test_sdpa_kernels_called_directly_bh_le_layout(call):
    q, k, v = meta(B, H, LQ, E), meta(B, H, LK, E), meta(B, H, LK, E)
    r = count(lambda: call(q, k, v))
    assert r.macs_by_category == {"attention": sdpa_macs(ev=E)}


def test_sdpa_kernel_formula_matches_torch_formula():
    """steelyard's MACs are torch's sdpa FLOPs / 2 (torch.utils.flop_counter.sdpa_flop_count)."""
    from torch.utils.flop_counter import sdpa_flop_count

    assert 2 * sdpa_macs() == sdpa_flop_count((B, H, LQ, E), (B, H, LK, E), (B, H, LK, EV))


def test_jagged_flash_forward_counts_real_lengths():
    lengths = [3, 5, 2]
    offsets = torch.tensor([0, 3, 8, 10])
    total = sum(lengths)
    q, k, v = torch.randn(total, H, E), torch.randn(total, H, E), torch.randn(total, H, EV)
    formula = op_table.MAC_OPS[aten._flash_attention_forward][1]
    macs = formula((q, k, v, offsets, offsets, 5, 5, 0.0, False, False), {}, None)
    assert macs == sum(H * n * n * (E + EV) for n in lengths)
    with pytest.raises(op_table.Uncountable, match="not materialised"):
        formula((q, k, v, offsets.to("meta"), offsets.to("meta"), 5, 5, 0.0, False, False), {}, None)


# -- quantized kernels -----------------------------------------------------------------------
def _quiet(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


@pytest.mark.parametrize("mode", MODES)
def test_quantized_linear_dynamic_closed_form(mode):
    model = _quiet(lambda: torch.ao.quantization.quantize_dynamic(
        nn.Sequential(nn.Linear(8, 4)), {nn.Linear}, dtype=torch.qint8))
    r = count(lambda: model(torch.randn(2, 3, 8)), mode, model)
    assert r.ops["quantized::linear_dynamic"].macs == 2 * 3 * 8 * 4
    assert r.macs_by_category == {"matmul": 2 * 3 * 8 * 4}
    assert r.other_flops_by_category == {"elementwise": 2 * 3 * 4}  # the bias add
    assert r.uncounted == {}
    assert r.modules["0"].macs == 2 * 3 * 8 * 4


def test_quantized_linear_static_closed_form():
    lin = _quiet(lambda: torch.ao.nn.quantized.Linear(8, 4, bias_=False))
    xq = torch.quantize_per_tensor(torch.randn(5, 8), 0.1, 0, torch.quint8)
    r = count(lambda: lin(xq))
    assert r.ops["quantized::linear"].macs == 5 * 8 * 4
    assert r.other_flops == 0


@pytest.mark.parametrize("groups", [1, 2])
def test_quantized_conv2d_closed_form(groups):
    conv = _quiet(lambda: torch.ao.nn.quantized.Conv2d(4, 6, 3, padding=1, groups=groups))
    xq = torch.quantize_per_tensor(torch.randn(1, 4, 5, 5), 0.1, 0, torch.quint8)
    r = count(lambda: conv(xq))
    out = 6 * 5 * 5
    assert r.ops["quantized::conv2d"].macs == out * (4 // groups) * 9
    assert r.macs_by_category == {"conv": out * (4 // groups) * 9}
    assert r.other_flops_by_category == {"elementwise": out}


def test_quantized_model_counts_like_its_float_model():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8)).eval()
    x = torch.randn(3, 16)
    q = _quiet(lambda: torch.ao.quantization.quantize_dynamic(net, {nn.Linear}, dtype=torch.qint8))
    fp, qr = count(lambda: net(x), model=net), count(lambda: q(x), model=q)
    assert qr.macs == fp.macs == 3 * (16 * 32 + 32 * 8)


# -- data movement ---------------------------------------------------------------------------
def test_new_empty_strided_is_data_movement():
    x = torch.randn(2, 3)
    r = count(lambda: x.new_empty_strided((4, 4), (4, 1)))
    assert r.uncounted == {} and r.ops["new_empty_strided"].kind == "data"


# -- causal masks on kernels called directly -------------------------------------------------
def _fw_bw(causal: str, is_causal: bool) -> tuple[int, int]:
    q, k, v = (torch.randn(1, 2, 6, 4, requires_grad=True) for _ in range(3))
    with CostCounter(causal_attention=causal) as c:
        F.scaled_dot_product_attention(q, k, v, is_causal=is_causal).sum().backward()
    return c.result.ops["scaled_dot_product_attention"].macs, c.result.macs


def test_visible_causal_backward_kernel_matches_the_visible_forward():
    """The CPU backward kernel carries is_causal: with causal_attention="visible" it is counted over
    the visible part too, so forward + backward stays 3x the forward."""
    full_fw, full_total = _fw_bw("full", True)
    vis_fw, vis_total = _fw_bw("visible", True)
    assert full_total == 3 * full_fw
    assert vis_fw == round(full_fw * 7 / 12)  # (L+1)/(2L) of a 6x6 score matrix
    assert vis_total == 3 * vis_fw
    assert _fw_bw("visible", False) == (full_fw, full_total)


def test_kernel_causal_fraction_layouts():
    h16 = torch.float16
    q, k = meta(1, 2, 4, 8), meta(1, 2, 6, 8)
    flash = aten._scaled_dot_product_flash_attention.default
    assert op_table.kernel_causal_fraction(flash, (q, k, k, 0.0, True), {}) == op_table.causal_visible_fraction(4, 6)
    assert op_table.kernel_causal_fraction(flash, (q, k, k), {}) == 1.0
    eff = aten._efficient_attention_forward.default
    ql, kl = meta(1, 4, 2, 8, dtype=h16), meta(1, 6, 2, 8, dtype=h16)
    args = (ql, kl, kl, None, None, None, 4, 6, 0.0)
    assert op_table.kernel_causal_fraction(eff, (*args, 2), {}) == op_table.causal_visible_fraction_bottom_right(4, 6)
    assert op_table.causal_visible_fraction_bottom_right(4, 6) == (3 + 4 + 5 + 6) / 24
    jag = aten._flash_attention_forward.default
    offsets = torch.tensor([0, 2, 5])
    qj = torch.randn(5, 2, 8)
    frac = op_table.kernel_causal_fraction(jag, (qj, qj, qj, offsets, offsets, 3, 3, 0.0, True), {})
    assert frac == pytest.approx((3 + 6) / (4 + 9))  # visible 3 of 2x2, 6 of 3x3
