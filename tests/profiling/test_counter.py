"""Closed-form tests of the dispatch-level cost counter and its op table.

Every expected number below is written out by hand from the shapes (fvcore's style): one
multiply-add is 1 MAC = 2 FLOPs; elementwise / normalisation / softmax work is counted per
element in ``other_flops_by_category`` with the constants of :mod:`steelyard.profiling.op_table`.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from steelyard.profiling import op_table
from steelyard.profiling.counter import ROOT, CostCounter, CountResult

MODES = {
    "no_grad": torch.no_grad,
    "inference_mode": torch.inference_mode,
}
DEVICES = ("cpu", "meta")


def count(fn, model: nn.Module | None = None, mode: str = "no_grad", causal: str = "full") -> CountResult:
    with MODES[mode](), CostCounter(model, causal_attention=causal) as counter:
        fn()
    return counter.result


def conv_out(size: int, k: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (k - 1) - 1) // stride + 1


# -- Linear ----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(5, 8), (2, 5, 8), (3, 2, 5, 8)])
def test_linear_macs_closed_form(shape, bias, mode):
    lin = nn.Linear(8, 16, bias=bias)
    x = torch.randn(*shape)
    r = count(lambda: lin(x), lin, mode)
    rows = math.prod(shape[:-1])
    assert r.macs == rows * 8 * 16
    assert r.flops == 2 * r.macs
    assert dict(r.macs_by_category) == {"matmul": rows * 8 * 16}
    assert r.uncounted == {}
    # A bias add is not a multiply-add: it never inflates the MACs.
    assert r.other_flops_by_category.get("matmul", 0) == 0


def test_linear_same_count_on_meta_and_cpu():
    lin = nn.Linear(32, 24)
    cpu = count(lambda: lin(torch.randn(4, 7, 32)), lin)
    meta_lin = nn.Linear(32, 24, device="meta")
    meta = count(lambda: meta_lin(torch.empty(4, 7, 32, device="meta")), meta_lin)
    assert cpu.macs == meta.macs == 4 * 7 * 32 * 24
    assert cpu.bytes_moved == meta.bytes_moved > 0


# -- convolutions ----------------------------------------------------------------------------
CONV_CASES = [
    # cin, cout, k, stride, padding, dilation, groups, H, W
    (3, 8, 3, 1, 0, 1, 1, 10, 12),
    (4, 8, 3, 2, 1, 1, 2, 11, 9),
    (6, 6, 3, 1, 2, 2, 6, 9, 9),  # depthwise, dilated
    (4, 12, 5, 3, 2, 1, 4, 16, 13),
    (8, 4, 1, 1, 0, 1, 1, 7, 7),  # pointwise
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("cin", "cout", "k", "stride", "padding", "dilation", "groups", "h", "w"), CONV_CASES)
def test_conv2d_macs_closed_form(cin, cout, k, stride, padding, dilation, groups, h, w, mode, device):
    conv = nn.Conv2d(cin, cout, k, stride=stride, padding=padding, dilation=dilation, groups=groups, device=device)
    x = torch.randn(2, cin, h, w, device=device)
    r = count(lambda: conv(x), conv, mode)
    ho, wo = conv_out(h, k, stride, padding, dilation), conv_out(w, k, stride, padding, dilation)
    # every output element is a dot product over C_in/groups · k·k inputs
    expected = 2 * cout * ho * wo * (cin // groups) * k * k
    assert r.macs == expected
    assert dict(r.macs_by_category) == {"conv": expected}
    assert r.uncounted == {}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("cin", "cout", "k", "stride", "padding", "groups"), [(4, 6, 3, 2, 1, 2), (3, 5, 4, 1, 0, 1)])
def test_conv_transpose2d_macs_closed_form(cin, cout, k, stride, padding, groups, mode):
    deconv = nn.ConvTranspose2d(cin, cout, k, stride=stride, padding=padding, groups=groups)
    x = torch.randn(2, cin, 6, 7)
    r = count(lambda: deconv(x), deconv, mode)
    # every *input* element is scattered over C_out/groups · k·k outputs
    assert r.macs == 2 * cin * 6 * 7 * (cout // groups) * k * k
    assert r.uncounted == {}


def test_conv_macs_from_shapes_helper():
    assert op_table.conv_macs_from_shapes((1, 4, 5, 5), (8, 2, 3, 3), (1, 8, 3, 3), transposed=False) == 72 * 18
    assert op_table.conv_macs_from_shapes((1, 4, 5, 5), (4, 3, 3, 3), (1, 6, 11, 11), transposed=True) == 100 * 27


# -- attention -------------------------------------------------------------------------------
class HandAttention(nn.Module):
    """q/k/v projections, Q·Kᵀ, softmax, P·V, written out without SDPA."""

    def __init__(self, d: int, heads: int, use_sdpa: bool = False, device: str = "cpu") -> None:
        super().__init__()
        self.heads = heads
        self.use_sdpa = use_sdpa
        self.q = nn.Linear(d, d, bias=False, device=device)
        self.k = nn.Linear(d, d, bias=False, device=device)
        self.v = nn.Linear(d, d, bias=False, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, length, d = x.shape
        e = d // self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, length, self.heads, e).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        if self.use_sdpa:
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            scores = q @ k.transpose(-2, -1) / math.sqrt(e)
            out = scores.softmax(dim=-1) @ v
        return out.transpose(1, 2).reshape(b, length, d)


B, L, D, H = 2, 6, 16, 4
PROJ_MACS = 3 * B * L * D * D  # three (B·L, D) @ (D, D) projections
ATTN_MACS = 2 * B * L * L * D  # Q·Kᵀ and P·V: B·H·L·L·(D/H) each
SCORES = B * H * L * L


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", MODES)
def test_hand_built_attention_closed_form(mode, device):
    block = HandAttention(D, H, device=device)
    x = torch.randn(B, L, D, device=device)
    r = count(lambda: block(x), block, mode)
    assert r.macs == PROJ_MACS + ATTN_MACS
    assert dict(r.macs_by_category) == {"matmul": PROJ_MACS + ATTN_MACS}
    assert r.other_flops_by_category["softmax"] == op_table.SOFTMAX_FLOPS_PER_ELEMENT * SCORES
    assert r.other_flops_by_category["elementwise"] == SCORES  # the / sqrt(e)
    assert r.uncounted == {}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", MODES)
def test_sdpa_block_counts_like_hand_built(mode, device):
    block = HandAttention(D, H, use_sdpa=True, device=device)
    x = torch.randn(B, L, D, device=device)
    r = count(lambda: block(x), block, mode)
    assert r.macs == PROJ_MACS + ATTN_MACS
    assert r.macs_by_category["attention"] == ATTN_MACS
    assert r.macs_by_category["matmul"] == PROJ_MACS
    assert r.other_flops_by_category["softmax"] == op_table.SOFTMAX_FLOPS_PER_ELEMENT * SCORES
    assert r.ops["scaled_dot_product_attention"].calls == 1


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("causal", ["full", "visible"])
def test_direct_sdpa_full_and_causal(causal, mode, device):
    b, h, length, e = 2, 3, 8, 5
    q, k, v = (torch.randn(b, h, length, e, device=device) for _ in range(3))
    r = count(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), mode=mode, causal=causal)
    full = b * h * length * length * (e + e)
    fraction = (length + 1) / (2 * length) if causal == "visible" else 1.0
    assert r.macs == round(full * fraction)
    assert r.causal_attention == causal
    assert r.other_flops_by_category["softmax"] == round(5 * b * h * length * length * fraction)
    # A non-causal call is never halved, whatever the option says.
    r_plain = count(lambda: F.scaled_dot_product_attention(q, k, v), mode=mode, causal=causal)
    assert r_plain.macs == full


def test_sdpa_positional_is_causal_is_read():
    q = torch.randn(1, 2, 6, 4)
    # SDPA(query, key, value, attn_mask, dropout_p, is_causal)
    r = count(lambda: F.scaled_dot_product_attention(q, q, q, None, 0.0, True), causal="visible")
    assert r.macs == round(2 * 6 * 6 * 8 * 7 / 12)


@pytest.mark.parametrize("length", [1, 2, 7, 128, 2048])
def test_causal_visible_fraction_square(length):
    assert op_table.causal_visible_fraction(length, length) == pytest.approx((length + 1) / (2 * length))


def test_causal_visible_fraction_rectangular_is_top_left_like_sdpa():
    # SDPA's is_causal keeps ones(Lq, Lk).tril(0): query i sees keys 0..i.
    assert op_table.causal_visible_fraction(2, 5) == pytest.approx(3 / 10)
    assert op_table.causal_visible_fraction(5, 2) == pytest.approx(9 / 10)
    assert op_table.causal_visible_fraction(0, 5) == 0.0
    q, k = torch.randn(1, 1, 2, 4), torch.randn(1, 1, 5, 4)
    mask = torch.ones(2, 5, dtype=torch.bool).tril(0)
    torch.testing.assert_close(
        F.scaled_dot_product_attention(q, k, k, is_causal=True), F.scaled_dot_product_attention(q, k, k, attn_mask=mask)
    )
    assert mask.float().mean().item() == pytest.approx(op_table.causal_visible_fraction(2, 5))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", MODES)
def test_grouped_query_attention(mode, device):
    b, hq, hkv, length, e = 1, 8, 2, 6, 4
    q = torch.randn(b, hq, length, e, device=device)
    k = torch.randn(b, hkv, length, e, device=device)
    v = torch.randn(b, hkv, length, e, device=device)
    r = count(lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True), mode=mode)
    # every one of the 8 query heads does its own L·L·(E + E) multiply-adds
    assert r.macs == b * hq * length * length * 2 * e
    assert op_table.attention_macs(q.shape, k.shape, v.shape) == r.macs


def test_torch_flop_counter_misses_cpu_sdpa_but_we_do_not():
    """Why steelyard catches SDPA itself: FlopCounterMode counts 0 for CPU SDPA (pytorch#195460)."""
    q, k, v = (torch.randn(1, 2, 16, 8) for _ in range(3))
    with FlopCounterMode(display=False) as torch_counter:
        F.scaled_dot_product_attention(q, k, v)
    ours = count(lambda: F.scaled_dot_product_attention(q, k, v))
    assert ours.flops == 2 * 2 * 16 * 16 * 16
    assert torch_counter.get_total_flops() < ours.flops


def test_sdpa_backward_counts_twice_the_forward():
    q, k, v = (torch.randn(1, 2, 8, 4, requires_grad=True) for _ in range(3))
    with CostCounter() as c:
        F.scaled_dot_product_attention(q, k, v).sum().backward()
    forward = 2 * 8 * 8 * 8
    assert c.result.macs == 3 * forward


# -- work that is not multiply-add -----------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_elementwise_softmax_norm_go_to_other_flops(mode):
    x = torch.randn(4, 10, 32)
    n = x.numel()
    net = nn.Sequential(nn.LayerNorm(32), nn.GELU(), nn.Softmax(dim=-1))
    r = count(lambda: net(x), net, mode)
    assert r.macs == 0
    assert r.flops == 0
    assert dict(r.other_flops_by_category) == {
        "normalization": op_table.NORM_FLOPS_PER_ELEMENT * n,
        "elementwise": op_table.POINTWISE_FLOPS_PER_ELEMENT * n,
        "softmax": op_table.SOFTMAX_FLOPS_PER_ELEMENT * n,
    }
    assert r.other_flops == (5 + 1 + 5) * n


def test_reduction_counts_input_elements():
    x = torch.randn(3, 7, 5)
    r = count(lambda: x.sum(dim=-1))
    assert r.other_flops_by_category == {"reduction": 3 * 7 * 5}


@pytest.mark.parametrize("mode", MODES)
def test_unknown_op_is_listed_never_dropped(mode):
    x = torch.randn(64)
    r = count(lambda: torch.fft.fft(x), mode=mode)
    assert r.uncounted, "an op with no formula must be reported"
    assert all(calls >= 1 for calls in r.uncounted.values())
    assert any("fft" in name for name in r.uncounted)
    assert r.macs == 0
    # It still moved bytes: reading 64 floats at least.
    assert r.bytes_moved >= 64 * 4


def test_data_movement_ops_cost_no_flops():
    x = torch.randn(4, 6)
    r = count(lambda: torch.cat([x, x]).permute(1, 0).contiguous())
    assert r.macs == 0 and r.other_flops == 0
    assert r.uncounted == {}
    assert r.bytes_moved > 0


# -- per-module rows -------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_module_rows_sum_to_totals(mode):
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 6 * 6, 10),
    ).eval()
    x = torch.randn(2, 3, 6, 6)
    r = count(lambda: net(x), net, mode)
    assert sum(m.macs for m in r.modules.values()) == r.macs
    assert sum(m.other_flops for m in r.modules.values()) == r.other_flops
    assert sum(m.bytes_moved for m in r.modules.values()) == r.bytes_moved
    assert r.modules["0"].macs == 2 * 8 * 6 * 6 * 3 * 9
    assert r.modules["4"].macs == 2 * 288 * 10
    assert r.modules["1"].other_flops == op_table.NORM_FLOPS_PER_ELEMENT * 2 * 8 * 6 * 6
    assert r.modules["2"].other_flops == 2 * 8 * 6 * 6


def test_hand_attention_rows_attribute_projections_and_root():
    block = HandAttention(D, H)
    r = count(lambda: block(torch.randn(B, L, D)), block)
    for name in ("q", "k", "v"):
        assert r.modules[name].macs == B * L * D * D
    assert r.modules[ROOT].macs == ATTN_MACS  # the two matmuls run in the block's own forward
    assert sum(m.macs for m in r.modules.values()) == r.macs


# -- backward --------------------------------------------------------------------------------
def test_linear_training_step_is_three_forwards():
    lin = nn.Linear(8, 16)
    x = torch.randn(5, 8, requires_grad=True)
    with CostCounter(lin) as fwd:
        lin(x)
    with CostCounter(lin) as step:
        lin(x).sum().backward()
    # forward (5·8·16) + grad input (5·16·8) + grad weight (16·5·8)
    assert fwd.result.macs == 5 * 8 * 16
    assert step.result.macs == 3 * 5 * 8 * 16
    # the bias gradient is a reduction over the batch, not a multiply-add
    assert step.result.other_flops_by_category.get("reduction", 0) >= 5 * 16


def test_linear_backward_without_input_grad_is_two_forwards():
    lin = nn.Linear(8, 16, bias=False)
    x = torch.randn(5, 8)  # no grad for the input: only the weight gradient is computed
    with CostCounter(lin) as step:
        lin(x).sum().backward()
    assert step.result.macs == 2 * 5 * 8 * 16


@pytest.mark.parametrize(
    ("conv", "forward"),
    [
        (nn.Conv2d(4, 6, 3, padding=1, bias=False), 2 * 6 * 5 * 5 * 4 * 9),
        (nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2), 2 * 6 * 5 * 5 * 2 * 9),
        (nn.ConvTranspose2d(4, 6, 3, stride=2, bias=False), 2 * 4 * 5 * 5 * 6 * 9),
    ],
    ids=["conv", "dilated-grouped", "transposed"],
)
def test_conv_training_step_is_three_forwards(conv, forward):
    x = torch.randn(2, 4, 5, 5, requires_grad=True)
    with CostCounter(conv) as step:
        conv(x).sum().backward()
    # forward + grad input + grad weight, each one forward's multiply-adds
    assert step.result.macs == 3 * forward
    assert step.result.macs_by_category == {"conv": 3 * forward}


# -- live memory -----------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_peak_live_bytes_of_linear_chain(mode):
    widths = [16, 64, 32, 128, 8, 256, 4]
    net = nn.Sequential(*(nn.Linear(a, b, bias=False) for a, b in itertools.pairwise(widths)))
    batch = 4
    x = torch.randn(batch, widths[0])
    r = count(lambda: net(x), net, mode)
    out_bytes = [batch * w * 4 for w in widths[1:]]
    # Layer i+1 writes its output while layer i's output (its input) is still alive; the one
    # before was released when Sequential moved on. The example input is not an activation.
    expected = max(a + b for a, b in itertools.pairwise(out_bytes))
    assert expected == batch * (8 + 256) * 4  # the 8-wide output plus the 256-wide one
    assert r.peak_live_bytes == expected


def test_peak_live_bytes_counts_tensors_kept_alive():
    keep = []

    def run():
        for _ in range(3):
            keep.append(torch.ones(1000) * 2)

    r = count(run)
    # each iteration creates ones (freed) and the product (kept): three kept + one temporary
    assert 3 * 4000 <= r.peak_live_bytes <= 4 * 4000 + 4000


def test_bad_causal_option_rejected():
    with pytest.raises(ValueError, match="causal_attention"):
        CostCounter(causal_attention="half")


def test_counter_removes_its_hooks():
    lin = nn.Linear(2, 2)
    with CostCounter(lin):
        lin(torch.randn(1, 2))
    assert not lin._forward_hooks and not lin._forward_pre_hooks
