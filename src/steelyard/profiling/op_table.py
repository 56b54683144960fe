"""Cost formulas for aten ops: small pure functions of shapes (fvcore's op-handle idea).

Two kinds of work are kept apart, as the field reports them:

* **MACs** of matrix-class ops (matmul, convolution, attention's two matmuls). One
  multiply-add is 1 MAC = 2 FLOPs.
* **Other FLOPs** of elementwise, normalisation, softmax and reduction ops, counted per
  element with the constants below (stated, approximate: a GELU is not really one FLOP). The
  bias add of a matrix op (addmm, linear, conv) is elementwise work too (``MAC_OP_EXTRAS``).

Ops that move data but compute nothing (views, copies, embedding lookups, concatenation)
cost 0 FLOPs but still move bytes. Any op in none of these tables is reported as
*uncounted*, never silently dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

aten = torch.ops.aten

#: FLOPs per output element for normalisation and softmax (documented approximations).
SOFTMAX_FLOPS_PER_ELEMENT = 5  # max, subtract, exp, sum, divide
NORM_FLOPS_PER_ELEMENT = 5  # mean, subtract, variance, normalise, affine
POINTWISE_FLOPS_PER_ELEMENT = 1
REDUCTION_FLOPS_PER_INPUT_ELEMENT = 1

MacFormula = Callable[[Sequence[Any], dict[str, Any], Any], int]


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(x.shape)


def _numel(x: Any) -> int:
    return math.prod(x.shape) if isinstance(x, torch.Tensor) else 0


def mm_macs(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    """(m, k) @ (k, n): m·n·k MACs."""
    m, k = _shape(args[0])
    n = _shape(args[1])[-1]
    return m * n * k


def addmm_macs(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    """bias + (m, k) @ (k, n): the bias add is elementwise work (:func:`bias_add_flops`)."""
    return mm_macs(args[1:], kwargs, out)


def bmm_macs(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    """(b, m, k) @ (b, k, n): b·m·n·k MACs."""
    b, m, k = _shape(args[0])
    n = _shape(args[1])[-1]
    return b * m * n * k


def baddbmm_macs(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    return bmm_macs(args[1:], kwargs, out)


def mv_macs(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    m, k = _shape(args[0])
    return m * k


def addmv_macs(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    return mv_macs(args[1:], kwargs, out)


def dot_macs(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    return _numel(args[0])


def conv_macs_from_shapes(
    x_shape: Sequence[int], w_shape: Sequence[int], out_shape: Sequence[int], transposed: bool
) -> int:
    """MACs of an N-d convolution.

    Forward: every output element is a dot product over (C_in / groups) · prod(kernel) inputs,
    so MACs = numel(out) · C_in/groups · prod(kernel) = numel(out) · prod(w.shape[1:]).
    Transposed: every *input* element is scattered over C_out/groups · prod(kernel) outputs,
    so MACs = numel(x) · prod(w.shape[1:]) (w is laid out as (C_in, C_out/groups, *k)).
    """
    per_element = math.prod(w_shape[1:])
    return (math.prod(x_shape) if transposed else math.prod(out_shape)) * per_element


def convolution_macs(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    x, w = args[0], args[1]
    transposed = bool(args[6]) if len(args) > 6 else bool(kwargs.get("transposed", False))
    return conv_macs_from_shapes(_shape(x), _shape(w), _shape(out), transposed)


def convolution_backward_macs(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    """grad_input and grad_weight each cost one forward's MACs; the bias grad is a reduction
    (:func:`bias_add_flops`)."""
    # (grad_output, input, weight, bias_sizes, stride, padding, dilation, transposed, output_padding, groups, mask)
    grad_out, x, w = args[0], args[1], args[2]
    transposed = bool(args[7])
    output_mask = args[10]
    forward = conv_macs_from_shapes(_shape(x), _shape(w), _shape(grad_out), transposed)
    return forward * int(bool(output_mask[0])) + forward * int(bool(output_mask[1]))


def attention_macs(
    q_shape: Sequence[int], k_shape: Sequence[int], v_shape: Sequence[int], visible_fraction: float = 1.0
) -> int:
    """Q·Kᵀ and P·V of attention: B·H·Lq·Lk·(E + Ev) MACs, times the visible fraction.

    Works for (..., L, E) layouts with any number of leading batch/head dims; a smaller
    number of K/V heads (grouped-query attention) is broadcast to the query heads.
    """
    *lead, lq, e = q_shape
    lk = k_shape[-2]
    ev = v_shape[-1]
    return round(math.prod(lead) * lq * lk * (e + ev) * visible_fraction)


def causal_visible_fraction(lq: int, lk: int) -> float:
    """Share of the Lq×Lk score matrix a causal mask keeps.

    Top-left aligned, as SDPA's ``is_causal=True`` is (``ones(Lq, Lk).tril(0)``, torch's
    ``CausalVariant.UPPER_LEFT``): query i sees keys 0..i. For a square matrix, (L+1)/(2L).
    """
    if lq <= 0 or lk <= 0:
        return 0.0
    visible = sum(min(lk, i + 1) for i in range(lq))
    return visible / (lq * lk)


def causal_visible_fraction_bottom_right(lq: int, lk: int) -> float:
    """Share of the score matrix a bottom-right aligned causal mask keeps (query i sees keys
    0..i + Lk - Lq; the memory-efficient kernels' ``custom_mask_type=2``)."""
    if lq <= 0 or lk <= 0:
        return 0.0
    visible = sum(max(0, min(lk, i + 1 + lk - lq)) for i in range(lq))
    return visible / (lq * lk)


def _arg(func: Any, args: Sequence[Any], kwargs: dict[str, Any], name: str) -> Any:
    """An op argument by its schema name, positional or keyword (None when absent)."""
    names = [a.name for a in func._schema.arguments]
    if name not in names:
        return None
    i = names.index(name)
    return args[i] if i < len(args) else kwargs.get(name)


def kernel_causal_fraction(func: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> float:
    """Visible share of the score matrix for an attention kernel called with a causal mask, else 1.

    ``is_causal`` kernels are top-left aligned; the memory-efficient kernels say it with
    ``custom_mask_type`` (1: top-left, 2: bottom-right). ``_scaled_dot_product_*`` kernels are laid
    out (B, H, L, E); ``_flash_attention_*`` / ``_efficient_attention_*`` (B, L, H, E), or jagged
    (ΣL, H, E) with cumulative lengths, where each sequence's share is weighted by its scores.
    """
    mask_type = _arg(func, args, kwargs, "custom_mask_type")
    if mask_type is None:
        mask_type = 1 if _arg(func, args, kwargs, "is_causal") else 0
    if mask_type not in (1, 2):
        return 1.0
    share = causal_visible_fraction if mask_type == 1 else causal_visible_fraction_bottom_right
    q, k = _arg(func, args, kwargs, "query"), _arg(func, args, kwargs, "key")
    if func.overloadpacket.__name__.startswith("_scaled_dot_product"):
        return share(_shape(q)[-2], _shape(k)[-2])
    cum_q = _arg(func, args, kwargs, "cum_seq_q")
    cum_q = cum_q if cum_q is not None else _arg(func, args, kwargs, "cu_seqlens_q")
    if cum_q is None:
        return share(_shape(q)[1], _shape(k)[1])
    cum_k = _arg(func, args, kwargs, "cum_seq_k")
    cum_k = cum_k if cum_k is not None else _arg(func, args, kwargs, "cu_seqlens_k")
    pairs = list(zip(jagged_lengths(cum_q), jagged_lengths(cum_k), strict=True))
    scores = sum(lq * lk for lq, lk in pairs)
    return sum(lq * lk * share(lq, lk) for lq, lk in pairs) / scores if scores else 1.0


def _sdpa_kernel_macs(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    """Fused SDPA kernels called directly at the aten level, laid out (B, H, L, E)."""
    return attention_macs(_shape(args[0]), _shape(args[1]), _shape(args[2]))


def _sdpa_backward_macs(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    """Backward of attention: dV = Pᵀ·dO, dP = dO·Vᵀ, dQ = dS·K, dK = dSᵀ·Q — twice the forward."""
    grad_out, q, k, v = args[0], args[1], args[2], args[3]
    del grad_out
    return 2 * attention_macs(_shape(q), _shape(k), _shape(v))


def linear_macs(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    """x (..., in) @ wᵀ (in, out): every output element is one dot product of length ``in``.

    ``aten.linear`` and ``aten.matmul`` are composite ops, but under ``inference_mode`` they
    reach the dispatcher whole, so they need formulas of their own.
    """
    return _numel(out) * _shape(args[1])[-1]


def matmul_macs(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    """Broadcasting matmul: each output element is a dot product over the shared dimension."""
    a = _shape(args[0])
    if len(a) == 1:
        return _numel(out) * a[0] if _numel(out) else a[0]
    return max(_numel(out), 1) * a[-1]


def conv_nd_macs(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    """``aten.conv1d/2d/3d`` seen whole under inference_mode: not transposed."""
    return conv_macs_from_shapes(_shape(args[0]), _shape(args[1]), _shape(out), transposed=False)


class Uncountable(Exception):
    """Raised by a formula when the call's cost cannot be known (e.g. jagged lengths on meta)."""


def scaled_mm_macs(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    """``torch._scaled_mm`` (fp8 and friends): (m, k) @ (k, n) with scales, m·n·k MACs like mm."""
    return mm_macs(args, kwargs, out)


def weight_only_mm_macs(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    """int4 / int8 weight-only matmuls (``_weight_int{4,8}pack_mm*``): x (m, k) against a packed weight.

    The packed weight's layout differs per kernel and device, but the output is (m, n) and every
    element is a dot product of length k = x.shape[-1] (dequantising the weight is not counted).
    """
    return _numel(out) * _shape(args[0])[-1]


def grouped_mm_macs(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    """``_grouped_mm`` (mixture-of-experts kernels): each row is multiplied by its own group's matrix.

    2-D × 3-D (tokens sorted by expert, ``offs`` splitting the rows): every routed (token, expert) row
    costs K·N, so S rows of K cost S·K·N whatever the split: the top-k load, never all experts.
    3-D × 3-D is a plain batched matmul; 2-D × 2-D splits K (the weight gradient), 3-D × 2-D splits N.
    """
    a, b = _shape(args[0]), _shape(args[1])
    if len(a) == 2 and len(b) == 3:
        return a[0] * a[1] * b[2]
    if len(a) == 3 and len(b) == 3:
        return a[0] * a[1] * a[2] * b[2]
    if len(a) == 2 and len(b) == 2:
        return a[0] * a[1] * b[1]
    if len(a) == 3 and len(b) == 2:
        return a[1] * a[2] * b[1]
    raise Uncountable(f"grouped mm of shapes {a} and {b}")


def grouped_mm_meta(args: Sequence[Any], kwargs: dict[str, Any]) -> torch.Tensor | None:
    """The output of ``_grouped_mm`` on meta tensors, whatever their dtype.

    torch's meta kernel accepts bfloat16 only, so a float32 config-only MoE could not run; the output
    shape follows from the input shapes alone (any dtype, bfloat16 included, gets the same answer).
    None when the call is not on meta (run the kernel).
    """
    a, b = args[0], args[1]
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or a.device.type != "meta":
        return None
    offs = args[2] if len(args) > 2 else kwargs.get("offs")
    out_dtype = (args[4] if len(args) > 4 else kwargs.get("out_dtype")) or b.dtype
    sa, sb = tuple(a.shape), tuple(b.shape)
    if len(sa) == 2 and len(sb) == 3:
        shape: tuple[int, ...] = (sa[0], sb[2])
    elif len(sa) == 3 and len(sb) == 3:
        shape = (sa[0], sa[1], sb[2])
    elif len(sa) == 2 and len(sb) == 2:
        shape = (int(offs.shape[0]) if isinstance(offs, torch.Tensor) else 1, sa[0], sb[1])
    else:
        shape = (sa[1], sb[1])
    return torch.empty(shape, dtype=out_dtype, device="meta")


#: Ops whose meta kernel refuses inputs a real kernel takes: packet -> output from shapes (None: run it).
META_OUTPUTS: dict[Any, Callable[[Sequence[Any], dict[str, Any]], torch.Tensor | None]] = {}
if hasattr(aten, "_grouped_mm"):
    META_OUTPUTS[aten._grouped_mm] = grouped_mm_meta


def run_op(func: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    """``func(*args, **kwargs)``, or its output from shapes where the meta kernel would refuse the call."""
    shaped = META_OUTPUTS.get(func.overloadpacket)
    out = shaped(args, kwargs) if shaped is not None else None
    return func(*args, **kwargs) if out is None else out


def jagged_lengths(offsets: Any) -> list[int]:
    """Per-sequence lengths from cumulative offsets; unknowable when they live on meta / fake."""
    from torch._subclasses.fake_tensor import FakeTensor

    if isinstance(offsets, FakeTensor) or offsets.device.type == "meta":
        raise Uncountable(f"jagged sequence lengths are not materialised (offsets on {offsets.device})")
    return [int(n) for n in offsets.diff().tolist()]


def _kernel_attention_macs(q: Any, k: Any, v: Any, cum_q: Any, cum_k: Any, max_q: Any, max_k: Any) -> int:
    """Flash / memory-efficient kernels, laid out (B, L, H, E); jagged when cumulative lengths are given.

    Dense: B·H·Lq·Lk·(E + Ev). Jagged (Q, K, V packed as (ΣL, H, E)): the sum over sequences of
    H·Lq_i·Lk_i·(E + Ev), from the real lengths (torch assumes max length on fake offsets; steelyard
    reports the call as uncounted instead).
    """
    if cum_q is None:
        b, lq, h, e = _shape(q)
        return attention_macs((b, h, lq, e), (_shape(k)[1], e), (_shape(v)[-1],))
    h, e, ev = _shape(q)[-2], _shape(q)[-1], _shape(v)[-1]
    del max_q, max_k  # the longest lengths; the real ones are in the offsets
    lengths_q, lengths_k = jagged_lengths(cum_q), jagged_lengths(cum_k)
    return sum(h * lq * lk * (e + ev) for lq, lk in zip(lengths_q, lengths_k, strict=True))


def flash_attention_forward_macs(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    """``aten._flash_attention_forward(q, k, v, cum_seq_q, cum_seq_k, max_q, max_k, ...)``."""
    return _kernel_attention_macs(*args[:7])


def efficient_attention_forward_macs(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    """``aten._efficient_attention_forward(q, k, v, bias, cu_seqlens_q, cu_seqlens_k, max_q, max_k, ...)``."""
    q, k, v, _bias, cum_q, cum_k, max_q, max_k = args[:8]
    return _kernel_attention_macs(q, k, v, cum_q, cum_k, max_q, max_k)


def flash_attention_backward_macs(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    """``_flash_attention_backward(grad_out, q, k, v, out, lse, cum_q, cum_k, max_q, max_k, ...)``: 2 forwards."""
    grad_out, q, k, v, _out, _lse, cum_q, cum_k, max_q, max_k = args[:10]
    del grad_out
    return 2 * _kernel_attention_macs(q, k, v, cum_q, cum_k, max_q, max_k)


def efficient_attention_backward_macs(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    """``_efficient_attention_backward(grad_out, q, k, v, bias, out, cu_q, cu_k, max_q, max_k, ...)``: 2 forwards."""
    grad_out, q, k, v, _bias, _out, cum_q, cum_k, max_q, max_k = args[:10]
    del grad_out
    return 2 * _kernel_attention_macs(q, k, v, cum_q, cum_k, max_q, max_k)


#: Matrix-class ops: op overload packet -> (category, MAC formula).
MAC_OPS: dict[Any, tuple[str, MacFormula]] = {
    aten.mm: ("matmul", mm_macs),
    aten.addmm: ("matmul", addmm_macs),
    aten.bmm: ("matmul", bmm_macs),
    aten.baddbmm: ("matmul", baddbmm_macs),
    aten.mv: ("matmul", mv_macs),
    aten.addmv: ("matmul", addmv_macs),
    aten.dot: ("matmul", dot_macs),
    aten.linear: ("matmul", linear_macs),
    aten.matmul: ("matmul", matmul_macs),
    aten.conv1d: ("conv", conv_nd_macs),
    aten.conv2d: ("conv", conv_nd_macs),
    aten.conv3d: ("conv", conv_nd_macs),
    aten.convolution: ("conv", convolution_macs),
    aten._convolution: ("conv", convolution_macs),
    aten.convolution_backward: ("conv", convolution_backward_macs),
    aten._scaled_mm: ("matmul", scaled_mm_macs),
}
if hasattr(aten, "_grouped_mm"):
    MAC_OPS[aten._grouped_mm] = ("matmul", grouped_mm_macs)
for _name in ("_weight_int4pack_mm", "_weight_int8pack_mm", "_weight_int4pack_mm_for_cpu",
              "_weight_int4pack_mm_with_scales_and_zeros"):
    if hasattr(aten, _name):
        MAC_OPS[getattr(aten, _name)] = ("matmul", weight_only_mm_macs)
for _name, _formula in (
    ("_flash_attention_forward", flash_attention_forward_macs),
    ("_efficient_attention_forward", efficient_attention_forward_macs),
    ("_flash_attention_backward", flash_attention_backward_macs),
    ("_efficient_attention_backward", efficient_attention_backward_macs),
):
    if hasattr(aten, _name):
        MAC_OPS[getattr(aten, _name)] = ("attention", _formula)

def _added_term_flops(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    """addmm / baddbmm / addmv: ``beta·self`` is added to every output element (0 when beta is 0)."""
    beta = args[3] if len(args) > 3 else kwargs.get("beta", 1)
    return _numel(out) if beta != 0 else 0


def _optional_bias_flops(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    """linear / conv: one add per output element when a bias is given (arg 2 or ``bias=``)."""
    bias = args[2] if len(args) > 2 else kwargs.get("bias")
    return _numel(out) if isinstance(bias, torch.Tensor) else 0


def _scaled_mm_bias_flops(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    """``_scaled_mm(a, b, scale_a, scale_b, bias=None, ...)``: one add per output element with a bias."""
    bias = args[4] if len(args) > 4 else kwargs.get("bias")
    return _numel(out) if isinstance(bias, torch.Tensor) else 0


def _conv_bias_grad_flops(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    """convolution_backward's grad_bias sums grad_output over all but the channel dim."""
    output_mask = args[10]
    return _numel(args[0]) if output_mask[2] else 0


#: The elementwise part of matrix-class ops: packet -> (other-FLOPs category, formula). A bias add
#: is not a multiply-add, so it never inflates the MACs; it is counted here, 1 FLOP per element.
MAC_OP_EXTRAS: dict[Any, tuple[str, MacFormula]] = {
    **{op: ("elementwise", _added_term_flops) for op in (aten.addmm, aten.baddbmm, aten.addmv)},
    **{op: ("elementwise", _optional_bias_flops)
       for op in (aten.linear, aten.conv1d, aten.conv2d, aten.conv3d, aten.convolution, aten._convolution)},
    aten.convolution_backward: ("reduction", _conv_bias_grad_flops),
    aten._scaled_mm: ("elementwise", _scaled_mm_bias_flops),
}


def bias_add_flops(
    packet: Any,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    out: Any,
    table: dict[Any, tuple[str, MacFormula]] | None = None,
) -> tuple[str, int] | None:
    """(category, FLOPs) of a matrix op's bias add or bias gradient, or None when it has none."""
    extra = (MAC_OP_EXTRAS if table is None else table).get(packet)
    if extra is None:
        return None
    category, formula = extra
    flops = formula(args, kwargs, out)
    return (category, flops) if flops else None


_SDPA_KERNELS = [
    "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_cudnn_attention",
]
for _name in _SDPA_KERNELS:
    if hasattr(aten, _name):
        MAC_OPS[getattr(aten, _name)] = ("attention", _sdpa_kernel_macs)
    if hasattr(aten, _name + "_backward"):
        MAC_OPS[getattr(aten, _name + "_backward")] = ("attention", _sdpa_backward_macs)


def _ops(*names: str) -> frozenset[Any]:
    """The aten packets of these names that exist in this torch build."""
    return frozenset(getattr(aten, n) for n in names if hasattr(aten, n))


SOFTMAX_OPS = _ops("_softmax", "_safe_softmax", "_log_softmax", "softmax", "log_softmax")
NORM_OPS = _ops(
    "layer_norm",
    "group_norm",
    "batch_norm",
    "rms_norm",
    "instance_norm",
    "native_layer_norm",
    "native_group_norm",
    "native_batch_norm",
    "_native_batch_norm_legit",
    "_native_batch_norm_legit_no_training",
    "_native_batch_norm_legit_functional",
    "_fused_rms_norm",
)
NORM_BACKWARD_OPS = _ops(
    "native_layer_norm_backward",
    "native_group_norm_backward",
    "native_batch_norm_backward",
    "_fused_rms_norm_backward",
)
REDUCTION_OPS = _ops(
    "all",
    "any",
    "sum",
    "mean",
    "amax",
    "amin",
    "max",
    "min",
    "var",
    "std",
    "var_mean",
    "norm",
    "linalg_vector_norm",
    "prod",
    "logsumexp",
    "cumsum",
    "argmax",
    "argmin",
    "avg_pool1d",
    "avg_pool2d",
    "max_pool1d",
    "max_pool2d_with_indices",
    "_adaptive_avg_pool2d",
    "_softmax_backward_data",
    "nll_loss_forward",
    "nll_loss_backward",
    "_adaptive_avg_pool2d_backward",
    "avg_pool2d_backward",
)

#: Ops that compute nothing: creation, views, copies, gathers. They still move bytes.
DATA_MOVEMENT_OPS = _ops(
    "dropout",
    "feature_dropout",
    "detach_",
    "flatten",
    "unflatten",
    "pad",
    "movedim",
    "view",
    "_unsafe_view",
    "reshape",
    "permute",
    "transpose",
    "t",
    "expand",
    "unsqueeze",
    "squeeze",
    "slice",
    "select",
    "split",
    "split_with_sizes",
    "chunk",
    "unbind",
    "alias",
    "detach",
    "as_strided",
    "clone",
    "copy_",
    "_to_copy",
    "contiguous",
    "cat",
    "stack",
    "embedding",
    "index_select",
    "gather",
    "index",
    "index_put_",
    "index_put",
    "repeat",
    "constant_pad_nd",
    "zeros",
    "zeros_like",
    "ones",
    "ones_like",
    "full",
    "full_like",
    "empty",
    "empty_like",
    "empty_strided",
    "new_zeros",
    "new_ones",
    "new_empty",
    "new_full",
    "arange",
    "scalar_tensor",
    "lift_fresh",
    "lift_fresh_copy",
    "tril",
    "triu",
    "fill_",
    "zero_",
    "flip",
    "roll",
    "diagonal",
    "embedding_dense_backward",
    "slice_backward",
    "select_backward",
    "scatter",
    "scatter_add",
    "masked_select",
    "nonzero",
    "_local_scalar_dense",
    "item",
    "pixel_shuffle",
    "unfold",
    "narrow",
    "expand_as",
    "view_as",
    "squeeze_",
    "unsqueeze_",
    "resize_",
    "set_",
    "bernoulli_",
    "native_dropout",
    "rand",
    "randn",
    "randint",
    "uniform_",
    "normal_",
    "sort",
    "topk",
    "max_pool2d_with_indices_backward",
    "_unsafe_index",
    "upsample_nearest1d",
    "upsample_nearest2d",
    "upsample_nearest3d",
    "_upsample_nearest_exact1d",
    "_upsample_nearest_exact2d",
    "_upsample_nearest_exact3d",
    "new_empty_strided",
    "is_nonzero",
    "equal",
    "sym_size",
    "sym_stride",
    "sym_numel",
    "sym_storage_offset",
    "_assert_async",
)


#: Interpolating upsampling: packet -> (taps per spatial dim, spatial dims, antialiased).
#: Convention: each tap is one multiply-add of a weight with an input = 2 other FLOPs, so bilinear
#: costs 2·4 = 8 FLOPs per output element (fvcore counts the same 4 taps as 4 "flops", i.e. MACs;
#: ptflops counts 1 per output element). Nearest modes copy and stay data movement (fvcore: 1).
INTERPOLATION_TAPS: dict[Any, tuple[int, int, bool]] = {
    # packet: (taps per dim, spatial dims, antialias)
    aten.upsample_linear1d: (2, 1, False),
    aten.upsample_bilinear2d: (2, 2, False),
    aten.upsample_trilinear3d: (2, 3, False),
    aten.upsample_bicubic2d: (4, 2, False),
}
if hasattr(aten, "_upsample_bilinear2d_aa"):
    INTERPOLATION_TAPS[aten._upsample_bilinear2d_aa] = (2, 2, True)
if hasattr(aten, "_upsample_bicubic2d_aa"):
    INTERPOLATION_TAPS[aten._upsample_bicubic2d_aa] = (4, 2, True)
FLOPS_PER_INTERPOLATION_TAP = 2


def interpolation_flops(packet: Any, args: Sequence[Any], out: Any) -> int:
    """2 FLOPs per tap per output element; taps = taps_per_dim ** dims.

    An antialiased kernel downscaling by s along a dim widens its support to ceil(s)·taps there
    (torch's ``_upsample_*_aa``); upscaling keeps the plain taps.
    """
    per_dim, dims, antialias = INTERPOLATION_TAPS[packet]
    taps = 1
    for in_size, out_size in zip(_shape(args[0])[-dims:], _shape(out)[-dims:], strict=True):
        widen = math.ceil(in_size / out_size) if antialias and out_size and in_size > out_size else 1
        taps *= per_dim * widen
    return FLOPS_PER_INTERPOLATION_TAP * taps * _numel(out)


def other_flops(packet: Any, func: Any, args: Sequence[Any], out: Any) -> tuple[str, int] | None:
    """Elementwise-class work: (category, FLOPs), or None when the op is not of this class."""
    if packet in DATA_MOVEMENT_OPS:
        return None  # clone carries torch's pointwise tag, but a copy computes nothing
    if packet in INTERPOLATION_TAPS:
        return "interpolation", interpolation_flops(packet, args, out)
    if packet in SOFTMAX_OPS:
        return "softmax", SOFTMAX_FLOPS_PER_ELEMENT * _numel(args[0])
    if packet in NORM_OPS:
        return "normalization", NORM_FLOPS_PER_ELEMENT * _numel(args[0])
    if packet in NORM_BACKWARD_OPS:
        return "normalization", 2 * NORM_FLOPS_PER_ELEMENT * _numel(args[0])
    if packet in REDUCTION_OPS:
        return "reduction", REDUCTION_FLOPS_PER_INPUT_ELEMENT * _numel(args[0])
    if torch.Tag.pointwise in getattr(func, "tags", ()):
        first = out[0] if isinstance(out, (tuple, list)) and out else out
        return "elementwise", POINTWISE_FLOPS_PER_ELEMENT * _numel(first)
    return None


def is_known(func: Any) -> bool:
    """Whether some table above prices this op (else the counter lists it as uncounted)."""
    packet = func.overloadpacket
    return (
        packet in MAC_OPS
        or packet in INTERPOLATION_TAPS
        or packet in SOFTMAX_OPS
        or packet in NORM_OPS
        or packet in NORM_BACKWARD_OPS
        or packet in REDUCTION_OPS
        or packet in DATA_MOVEMENT_OPS
        or getattr(func, "is_view", False)
        or torch.Tag.pointwise in getattr(func, "tags", ())
    )
