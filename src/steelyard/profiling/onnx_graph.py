"""Weigh and count an ONNX graph: what an ONNX Runtime session holds and computes.

An ONNX Runtime session runs outside torch, so the aten-level counter sees none of its work
(a profile of a saved ONNX artifact used to say 0 MACs, with nothing uncounted). Here the graph
itself is read: its graph inputs are pinned to the shapes of the example inputs, shape inference
gives every node's shapes (ONNX Runtime's symbolic inference, which resolves ``Shape → Range →
Reshape`` chains that ``onnx``'s own leaves open; ``onnx``'s with data propagation where ONNX
Runtime is missing), and each node is priced with the same conventions as the aten tables
(:mod:`steelyard.profiling.op_table`): a matrix product is ``numel(out) · K`` MACs whether it runs
in float (``MatMul``, ``Gemm``, ``Conv``) or int8 (``MatMulInteger``, ``QLinearMatMul``,
``ConvInteger``, ``QLinearConv``; attention's Q·Kᵀ and P·V are plain ``MatMul`` nodes in the graph,
so they land in "matmul", not "attention"); elementwise ops 1 FLOP per output element (a bias ``Add``
included, as the aten bias adds); softmax and normalisation per element as in the aten table;
reshapes, gathers and casts compute nothing; quantize / dequantize steps are listed as uncounted,
as ``quantize_per_tensor`` is on the torch side. The graph is what was saved, before ONNX
Runtime's own fusions, which change kernels, not multiply-adds.

Weights: the initializers, less the quantization parameters (scales and zero points), are the
model's logical parameters; every initializer's bytes are what the session keeps as weights. The
torch exporter stores parameters of equal value once and names the others through ``Identity``
nodes (the zero biases and unit LayerNorm weights of an untrained model): each such name counts as
the parameter it was in torch, its bytes once, since the session keeps one copy.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from steelyard.profiling.counter import ROOT, CountResult, OpStat
from steelyard.profiling.op_table import (
    NORM_FLOPS_PER_ELEMENT,
    POINTWISE_FLOPS_PER_ELEMENT,
    REDUCTION_FLOPS_PER_INPUT_ELEMENT,
    SOFTMAX_FLOPS_PER_ELEMENT,
)
from steelyard.profiling.weigh import HeldWeights

#: Matrix-class ops: op type -> (category, index of input A, index of the weight / input B).
MAC_NODES: dict[str, tuple[str, int, int]] = {
    "MatMul": ("matmul", 0, 1),
    "MatMulInteger": ("matmul", 0, 1),
    "QLinearMatMul": ("matmul", 0, 3),
    "Gemm": ("matmul", 0, 1),
    "Conv": ("conv", 0, 1),
    "ConvInteger": ("conv", 0, 1),
    "QLinearConv": ("conv", 0, 3),
    "ConvTranspose": ("conv", 0, 1),
}
#: Inputs that are quantization parameters (scales, zero points), by op type.
QUANT_PARAM_INPUTS: dict[str, frozenset[int]] = {
    "QuantizeLinear": frozenset({1, 2}),
    "DequantizeLinear": frozenset({1, 2}),
    "MatMulInteger": frozenset({2, 3}),
    "ConvInteger": frozenset({2, 3}),
    "QLinearMatMul": frozenset({1, 2, 4, 5, 6, 7}),
    "QLinearConv": frozenset({1, 2, 4, 5, 6, 7}),
}
QUANTIZE_NODES = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"})
POINTWISE_NODES = frozenset({
    "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Log", "Erf", "Tanh", "Relu", "Sigmoid", "Neg", "Abs",
    "Reciprocal", "Max", "Min", "Clip", "LeakyRelu", "Gelu", "HardSigmoid", "HardSwish", "Elu", "Selu",
    "Softplus", "Sin", "Cos", "Floor", "Ceil", "Round", "Sign", "Mod", "Where", "Equal", "Less",
    "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Not", "Xor", "IsNaN", "IsInf",
})  # fmt: skip
SOFTMAX_NODES = frozenset({"Softmax", "LogSoftmax"})
NORM_NODES = frozenset({
    "LayerNormalization", "BatchNormalization", "InstanceNormalization", "GroupNormalization",
    "SimplifiedLayerNormalization", "RMSNormalization",
})  # fmt: skip
REDUCTION_NODES = frozenset({
    "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceL1",
    "ReduceSumSquare", "ReduceLogSumExp", "ArgMax", "ArgMin", "GlobalAveragePool", "GlobalMaxPool",
    "AveragePool", "MaxPool", "CumSum",
})  # fmt: skip
DATA_NODES = frozenset({
    "Constant", "ConstantOfShape", "Identity", "Reshape", "Transpose", "Gather", "GatherElements", "GatherND",
    "Shape", "Size", "Cast", "CastLike", "Concat", "Unsqueeze", "Squeeze", "Expand", "Slice", "Split",
    "Range", "Flatten", "Pad", "Tile", "Dropout", "ScatterND", "ScatterElements", "Trilu", "NonZero",
})  # fmt: skip


def _load(model_bytes: bytes) -> Any:
    import onnx

    return onnx.load_from_string(model_bytes)


def _quantization_parameters(graph: Any) -> set[str]:
    """Names of the initializers that are scales or zero points, not weights.

    Besides the scale / zero-point inputs of the quantized ops, ONNX Runtime's dynamic
    quantization multiplies each int8 product by ``activation scale · weight scale``: a weight
    scale is the other input of a ``Mul`` fed by a ``DynamicQuantizeLinear``'s scale output.
    """
    names: set[str] = set()
    dynamic_scales = {n.output[1] for n in graph.node if n.op_type == "DynamicQuantizeLinear" and len(n.output) > 1}
    for node in graph.node:
        slots = QUANT_PARAM_INPUTS.get(node.op_type, frozenset())
        names.update(x for i, x in enumerate(node.input) if i in slots and x)
        if node.op_type == "Mul" and any(x in dynamic_scales for x in node.input):
            names.update(x for x in node.input if x not in dynamic_scales)
    return names


def onnx_weights(model_bytes: bytes) -> HeldWeights:
    """The graph's initializers: logical parameters (quantization parameters left out) and bytes, per dtype."""
    from onnx.helper import tensor_dtype_to_np_dtype

    graph = _load(model_bytes).graph
    scales = _quantization_parameters(graph)
    params: dict[str, int] = defaultdict(int)
    nbytes: dict[str, int] = defaultdict(int)
    weights: dict[str, tuple[str, int]] = {}
    for init in graph.initializer:
        dtype = tensor_dtype_to_np_dtype(init.data_type)
        n = math.prod(init.dims)
        nbytes[dtype.name] += n * dtype.itemsize
        if init.name not in scales:
            params[dtype.name] += n
            weights[init.name] = (dtype.name, n)
    for node in graph.node:  # an exporter-merged parameter: one more parameter, no more bytes
        if node.op_type == "Identity" and node.input and node.input[0] in weights:
            dtype_name, n = weights[node.input[0]]
            params[dtype_name] += n
    return HeldWeights(dict(params), dict(nbytes))


def _shapes(model: Any, feed: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[list[int | None], int]]:
    """Every value's (shape, bytes per element) after pinning the graph inputs to ``feed``'s shapes."""
    from onnx.helper import tensor_dtype_to_np_dtype

    for value in model.graph.input:
        if value.name in feed:
            dims = value.type.tensor_type.shape.dim
            for dim, size in zip(dims, feed[value.name], strict=False):
                dim.Clear()
                dim.dim_value = int(size)
    inferred = _infer(model)
    out: dict[str, tuple[list[int | None], int]] = {}
    for v in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
        t = v.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        out[v.name] = (dims, tensor_dtype_to_np_dtype(t.elem_type).itemsize if t.elem_type else 0)
    for init in inferred.graph.initializer:
        out[init.name] = (list(init.dims), tensor_dtype_to_np_dtype(init.data_type).itemsize)
    return out


def _infer(model: Any) -> Any:
    """The model with every value's shape inferred: ONNX Runtime's symbolic inference, else ``onnx``'s."""
    from onnx import shape_inference

    try:
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

        return SymbolicShapeInference.infer_shapes(model, auto_merge=True)
    except Exception:  # onnxruntime missing, or an op its inference does not know: onnx's own below
        return shape_inference.infer_shapes(model, data_prop=True)


def _numel(shape: list[int | None] | None) -> int | None:
    if shape is None or any(d is None for d in shape):
        return None
    return math.prod(shape)  # type: ignore[arg-type]


def _attr(node: Any, name: str, default: int) -> int:
    return next((int(a.i) for a in node.attribute if a.name == name), default)


def _node_macs(node: Any, shapes: Mapping[str, tuple[list[int | None], int]]) -> int | None:
    """``numel(out) · K`` for a matrix-class node; None when a shape could not be inferred."""
    _, a_at, w_at = MAC_NODES[node.op_type]
    out = _numel(shapes.get(node.output[0], (None, 0))[0])
    a = shapes.get(node.input[a_at], (None, 0))[0]
    w = shapes.get(node.input[w_at], (None, 0))[0]
    if out is None or not a or not w:
        return None
    if node.op_type in ("MatMul", "MatMulInteger", "QLinearMatMul"):
        k = a[-1]
    elif node.op_type == "Gemm":
        k = a[0] if _attr(node, "transA", 0) else a[1]
    elif node.op_type == "ConvTranspose":  # W is (C_in, C_out/groups, *k): each input element feeds C_out/g·prod(k)
        x = _numel(a)
        per = _numel(w[1:])
        return None if x is None or per is None else x * per
    else:  # Conv: W is (C_out, C_in/groups, *k)
        k = _numel(w[1:])
    return None if k is None else out * k


def _other_flops(node: Any, shapes: Mapping[str, tuple[list[int | None], int]]) -> tuple[str, int | None] | None:
    """(category, FLOPs) of an elementwise-class node, as the aten table prices it; None for other kinds."""
    first_in = _numel(shapes.get(node.input[0], (None, 0))[0]) if node.input else None
    out = _numel(shapes.get(node.output[0], (None, 0))[0]) if node.output else None
    if node.op_type in SOFTMAX_NODES:
        return "softmax", None if first_in is None else SOFTMAX_FLOPS_PER_ELEMENT * first_in
    if node.op_type in NORM_NODES:
        return "normalization", None if first_in is None else NORM_FLOPS_PER_ELEMENT * first_in
    if node.op_type in REDUCTION_NODES:
        return "reduction", None if first_in is None else REDUCTION_FLOPS_PER_INPUT_ELEMENT * first_in
    if node.op_type in POINTWISE_NODES:
        return "elementwise", None if out is None else POINTWISE_FLOPS_PER_ELEMENT * out
    return None


def _moved(node: Any, shapes: Mapping[str, tuple[list[int | None], int]]) -> int:
    """Bytes read and written by one node (values of unknown shape count 0)."""
    total = 0
    for name in (*node.input, *node.output):
        shape, size = shapes.get(name, (None, 0))
        n = _numel(shape)
        total += (n or 0) * size
    return total


def count_onnx(model_bytes: bytes, feed: Mapping[str, tuple[int, ...]]) -> CountResult:
    """What one run of the ONNX graph costs on inputs of ``feed``'s shapes (name -> shape).

    Every node lands in the root row (an ONNX graph has no modules). A matrix-class or
    elementwise node whose shapes inference could not resolve is listed as uncounted, with why.
    """
    model = _load(model_bytes)
    shapes = _shapes(model, feed)
    result = CountResult()
    row = result.modules[ROOT]
    whole = result.inclusive[ROOT]
    for node in model.graph.node:
        op = node.op_type
        moved = _moved(node, shapes)
        macs = other = 0
        category = None
        if op in MAC_NODES:
            kind, category = "mac", MAC_NODES[op][0]
            counted = _node_macs(node, shapes)
            if counted is None:
                kind = "uncounted"
                result.notes[op] = "shape not inferred from the ONNX graph"
            else:
                macs = counted
                result.macs_by_category[category] += macs
        elif op in QUANTIZE_NODES:
            kind = "uncounted"
            result.notes[op] = "quantize / dequantize step (not priced, as torch's quantize_per_tensor)"
        elif op in DATA_NODES:
            kind = "data"
        elif (priced := _other_flops(node, shapes)) is not None:
            category, counted = priced
            kind = "other"
            if counted is None:
                kind = "uncounted"
                result.notes[op] = "shape not inferred from the ONNX graph"
            else:
                other = counted
                result.other_flops_by_category[category] += other
        else:
            kind = "uncounted"
            result.notes.setdefault(op, "no formula for this ONNX op")
        key = op
        if kind == "uncounted" and op in result.ops and result.ops[op].kind != "uncounted":
            key = f"{op} (shape unknown)"  # priced calls of this op keep their row
            result.notes[key] = result.notes[op]
        stat = result.ops.setdefault(key, OpStat(kind=kind))
        stat.calls += 1
        stat.macs += macs
        stat.other_flops += other
        stat.bytes_moved += moved
        result.bytes_moved += moved
        row.add(key, macs, other, moved)
        whole.add(key, macs, other, moved)
    result.called_modules.add(ROOT)
    return result
