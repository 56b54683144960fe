"""``profile`` of every artifact ``compress`` can write, against closed forms: a conformance test
generated from the method registry.

Every registered method that applies to transformers, on every backend it offers, compresses a
tiny BERT classifier; the result is saved, reloaded with ``steelyard.load_model`` and profiled.
Its parameters, weight bytes in memory and MACs must equal what the method does to the float
model, computed here in closed form from the architecture (H = hidden, F = FFN width, L layers,
A heads of width d, T = batch · seq tokens):

* quantization and casts keep the float model's parameters and MACs (the report says so) and hold
  their weights as codes + scales (the bytes below, dtype by dtype);
* structured, layer and low-rank methods remove parameters and MACs, exactly what they cut;
* unstructured pruning keeps both and says the model is sparse, not faster.

A method registered without a row in :data:`ROWS` fails :func:`test_every_method_has_a_row`.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

import pytest
import torch
from torch import nn

import steelyard
from compression_toys import BERT, tiny_bert
from steelyard.compression import METHODS, compress, make_config
from steelyard.compression.registry import TRANSFORMER, config_class
from steelyard.models import InputSpec, LoadConfig
from steelyard.profiling.profile import ProfileConfig

NO_MEASURE = ProfileConfig(measure=False, hardware=())
B, S = 2, 16
T = B * S
H, F, L, A = BERT["hidden_size"], BERT["intermediate_size"], BERT["num_hidden_layers"], BERT["num_attention_heads"]
D = H // A
V, P, C = BERT["vocab_size"], BERT["max_position_embeddings"], BERT["num_labels"]


def linears(head: bool = True) -> list[tuple[int, int]]:
    """(in, out) of every Linear: per layer Q, K, V, attention output, FFN in and out; the pooler; the head."""
    per_layer = [(H, H)] * 4 + [(H, F), (F, H)]
    return per_layer * L + [(H, H)] + ([(H, C)] if head else [])


EMBEDDINGS = [(V, H), (P, H), (2, H)]  # word, position, token type
NORM_PARAMS = 2 * H * (1 + 2 * L)  # the embedding LayerNorm and two per layer, weight and bias
LINEAR_PARAMS = sum(i * o + o for i, o in linears())
EMB_PARAMS = sum(n * h for n, h in EMBEDDINGS)
FLOAT_PARAMS = LINEAR_PARAMS + EMB_PARAMS + NORM_PARAMS  # 82,051
LAYER_MACS = T * (4 * H * H + 2 * H * F) + 2 * B * A * S * S * D  # projections + Q·Kᵀ and P·V
LAYER_PARAMS = 4 * (H * H + H) + (H * F + F) + (F * H + H) + 2 * 2 * H  # + two LayerNorms
FLOAT_MACS = L * LAYER_MACS + B * H * H + B * H * C  # + pooler and head: 2,236,800
@dataclass(frozen=True)
class Row:
    """What a method must do to the float model's numbers (each a closed form)."""

    params: int
    weight_bytes: int | None  # None: checked against the saved graph instead (see ORT_STATIC_BYTES)
    macs: int
    #: A phrase the report's assumptions must contain: what the method did to the MACs.
    said: str
    params_arg: dict[str, typing.Any] = dataclasses.field(default_factory=dict)
    bytes_by_dtype: dict[str, int] | None = None
    nonzero: int | None = None


ALL, NO_HEAD = linears(), linears(head=False)
OUTS = sum(o for _, o in ALL)
CODES = sum(i * o for i, o in ALL)

# prune:structured amount=0.5 heads=0.5: per layer half the FFN neurons (each owns an input row with
# its bias and an output column) and half the heads (each owns D rows of Q, K, V with biases and D
# columns of the attention output), and the attention over those heads.
FFN_CUT, HEAD_CUT = F // 2, A // 2
STRUCT_PARAMS = L * (FFN_CUT * (2 * H + 1) + HEAD_CUT * D * (3 * (H + 1) + H))
STRUCT_MACS = L * (T * FFN_CUT * 2 * H + T * HEAD_CUT * D * 4 * H + 2 * B * HEAD_CUT * S * S * D)
# low-rank:svd ratio=0.5 round_to=8: rank r = min(in, out) / 2, kept only where r·(in + out) < in·out,
# i.e. the two FFN Linears of each layer (64×64 layers would not get cheaper); the head is left alone.
SVD_SAVED = L * sum(i * o - (min(i, o) // 2) * (i + o) for i, o in [(H, F), (F, H)])
# weight-only (torch's low-bit kernels, bf16 compute by default): int8 codes + one bf16 scale per output
# row; int4 codes packed two a byte + a bf16 scale and zero per 32 inputs of each row; fp32 bias.
WO_LINEAR_PARAMS = sum(i * o + o for i, o in NO_HEAD)
WO_CODES = sum(i * o for i, o in NO_HEAD)
INT8_WO = sum(i * o + 2 * o + 4 * o for i, o in NO_HEAD)
INT4_WO = sum(i * o // 2 + 4 * (i * o // 32) + 4 * o for i, o in NO_HEAD)
WO_INS = sum(i for i, _ in NO_HEAD)
FLOAT_REST = 4 * (FLOAT_PARAMS - WO_LINEAR_PARAMS)  # W8A8 (SmoothQuant): norms, embeddings and the head stay fp32
# Weight-only: by default the head is quantized too (int8 takes it; int4 cannot pack its C < 16 rows, so it stays fp32)
# and the embedding tables become int8 rows with one fp32 scale a row; only the LayerNorms stay fp32.
ALL_INS = sum(i for i, _ in ALL)
INT8_WO_ALL = CODES + 6 * OUTS
EMB_ROWS = sum(n for n, _ in EMBEDDINGS)
EMB_INT8 = EMB_PARAMS + 4 * EMB_ROWS
HEAD_FLOAT = 4 * (H * C + C)
NORM_BYTES = 4 * NORM_PARAMS
INT8_DTYPES = {"int8": CODES + EMB_PARAMS, "bfloat16": 2 * OUTS, "float32": 4 * OUTS + 4 * EMB_ROWS + NORM_BYTES}
INT4_DTYPES = {"int4": WO_CODES // 2, "bfloat16": 4 * (WO_CODES // 32), "int8": EMB_PARAMS,
               "float32": 4 * sum(o for _, o in NO_HEAD) + 4 * EMB_ROWS + NORM_BYTES + HEAD_FLOAT}
SAME = "MACs are the float model's"
REMOVED = "the float model's minus what the method removed"

#: One row per registered method (and backend): params, weight bytes, MACs, in closed form.
ROWS: dict[str, Row] = {
    "prune:unstructured": Row(
        FLOAT_PARAMS, 4 * FLOAT_PARAMS, FLOAT_MACS, "sparse, not faster",
        # global magnitude pruning of every Linear weight but the head: half of them zeroed
        nonzero=FLOAT_PARAMS - sum(i * o for i, o in NO_HEAD) // 2,
    ),
    "prune:structured": Row(
        FLOAT_PARAMS - STRUCT_PARAMS, 4 * (FLOAT_PARAMS - STRUCT_PARAMS), FLOAT_MACS - STRUCT_MACS, REMOVED,
        params_arg={"amount": 0.5, "heads": 0.5},
    ),
    "prune:layers": Row(  # amount=0.5: one of the two layers dropped, with all its work
        FLOAT_PARAMS - LAYER_PARAMS, None, FLOAT_MACS - LAYER_MACS, REMOVED,
    ),
    # torch int8 dynamic: per Linear int8 codes, an fp32 scale and an int32 zero point per output
    # channel and the fp32 bias; per embedding table int8 rows with an fp32 scale per row.
    "quantize:int8-dynamic": Row(
        FLOAT_PARAMS, CODES + 12 * OUTS + sum(n * h + 4 * n for n, h in EMBEDDINGS) + 4 * NORM_PARAMS,
        FLOAT_MACS, SAME,
        bytes_by_dtype={"int8": CODES + EMB_PARAMS, "int32": 4 * OUTS,
                        "float32": 8 * OUTS + sum(4 * n for n, _ in EMBEDDINGS) + 4 * NORM_PARAMS},
    ),
    # ONNX Runtime int8 dynamic: int8 codes with an fp32 scale and an int8 zero point per output
    # channel, fp32 biases; uint8 embedding tables with one fp32 scale and uint8 zero point each.
    "quantize:int8-dynamic-onnxruntime": Row(
        FLOAT_PARAMS, CODES + 9 * OUTS + sum(n * h + 5 for n, h in EMBEDDINGS) + 4 * NORM_PARAMS,
        FLOAT_MACS, SAME,
        bytes_by_dtype={"int8": CODES + OUTS, "uint8": EMB_PARAMS + len(EMBEDDINGS),
                        "float32": 8 * OUTS + 4 * len(EMBEDDINGS) + 4 * NORM_PARAMS},
    ),
    # torch int8 static: the dynamic Linear's bytes, plus the calibrated input and output scale
    # (fp64) and zero point (int64) of each Linear; embeddings stay fp32.
    "quantize:int8-static": Row(
        FLOAT_PARAMS, CODES + 12 * OUTS + 32 * len(ALL) + 4 * (EMB_PARAMS + NORM_PARAMS), FLOAT_MACS, SAME,
        bytes_by_dtype={"int8": CODES, "int32": 4 * OUTS, "float64": 16 * len(ALL), "int64": 16 * len(ALL),
                        "float32": 8 * OUTS + 4 * (EMB_PARAMS + NORM_PARAMS)},
    ),
    "quantize:int8-static-onnxruntime": Row(FLOAT_PARAMS, None, FLOAT_MACS, SAME),
    "quantize:fp16": Row(FLOAT_PARAMS, 2 * FLOAT_PARAMS, FLOAT_MACS, SAME,
                         bytes_by_dtype={"float16": 2 * FLOAT_PARAMS}),
    "quantize:bf16": Row(FLOAT_PARAMS, 2 * FLOAT_PARAMS, FLOAT_MACS, SAME,
                         bytes_by_dtype={"bfloat16": 2 * FLOAT_PARAMS}),
    "quantize:int8-weight-only": Row(
        FLOAT_PARAMS, INT8_WO_ALL + EMB_INT8 + NORM_BYTES, FLOAT_MACS, SAME, bytes_by_dtype=INT8_DTYPES),
    "quantize:int4-weight-only": Row(
        FLOAT_PARAMS, INT4_WO + EMB_INT8 + NORM_BYTES + HEAD_FLOAT, FLOAT_MACS, SAME, bytes_by_dtype=INT4_DTYPES),
    # AWQ: the weight-only bytes plus an fp32 1/s per input feature of each quantized Linear (the activation pre-scale)
    "quantize:int8-awq": Row(
        FLOAT_PARAMS, INT8_WO_ALL + EMB_INT8 + NORM_BYTES + 4 * ALL_INS, FLOAT_MACS, SAME,
        bytes_by_dtype=INT8_DTYPES | {"float32": INT8_DTYPES["float32"] + 4 * ALL_INS},
    ),
    "quantize:int4-awq": Row(
        FLOAT_PARAMS, INT4_WO + EMB_INT8 + NORM_BYTES + HEAD_FLOAT + 4 * WO_INS, FLOAT_MACS, SAME,
        bytes_by_dtype=INT4_DTYPES | {"float32": INT4_DTYPES["float32"] + 4 * WO_INS},
    ),
    # GPTQ: the weight-only layout exactly (other codes, same scales and bytes)
    "quantize:int8-gptq": Row(
        FLOAT_PARAMS, INT8_WO_ALL + EMB_INT8 + NORM_BYTES, FLOAT_MACS, SAME, bytes_by_dtype=INT8_DTYPES),
    "quantize:int4-gptq": Row(
        FLOAT_PARAMS, INT4_WO + EMB_INT8 + NORM_BYTES + HEAD_FLOAT, FLOAT_MACS, SAME, bytes_by_dtype=INT4_DTYPES),
    # W8A8: SmoothQuant folds its scales into the norms (no new parameters), then every Linear but the
    # head runs torch's dynamic int8 kernel: int8 codes, an fp32 scale, an int32 zero point and the fp32
    # bias per output channel; embeddings, norms and the head stay fp32.
    "quantize:w8a8": Row(
        FLOAT_PARAMS, WO_CODES + 12 * sum(o for _, o in NO_HEAD) + FLOAT_REST, FLOAT_MACS, SAME,
        bytes_by_dtype={"int8": WO_CODES, "int32": 4 * sum(o for _, o in NO_HEAD),
                        "float32": 8 * sum(o for _, o in NO_HEAD) + FLOAT_REST},
    ),
    # Wanda: half of every row of each Linear but the head zeroed by |W|·‖X‖; nothing smaller
    "prune:wanda": Row(FLOAT_PARAMS, 4 * FLOAT_PARAMS, FLOAT_MACS, "sparse, not faster",
                       nonzero=FLOAT_PARAMS - WO_CODES // 2),
    # angular distance: amount=0.5 drops the one of the two layers whose output is closest to its input
    "prune:layers-angular": Row(FLOAT_PARAMS - LAYER_PARAMS, None, FLOAT_MACS - LAYER_MACS, REMOVED,
                                params_arg={"amount": 0.5}),
    "low-rank:svd": Row(
        FLOAT_PARAMS - SVD_SAVED, 4 * (FLOAT_PARAMS - SVD_SAVED), FLOAT_MACS - T * SVD_SAVED, REMOVED,
        params_arg={"ratio": 0.5, "round_to": 8},
    ),
}
# ONNX Runtime's static quantization also quantizes LayerNorm weights and biases (QDQ) and stores a
# scale and zero point for every activation it calibrated (dozens, a number that depends on the
# exporter's graph), so its bytes have no architecture-only closed form: they are checked against
# the initializers of the saved graph, read independently with ``onnx``.
ORT_STATIC_BYTES = "quantize:int8-static-onnxruntime"


def _variants() -> list[tuple[str, str | None]]:
    """(method, backend) for every registered method that applies to transformers, on every backend."""
    out = []
    for name, entry in METHODS.items():
        if TRANSFORMER not in entry.applies_to:
            continue
        cls = config_class(name)
        fields = {f.name for f in dataclasses.fields(cls)}
        backends: list[str | None] = [None]
        if "backend" in fields:
            backends = list(typing.get_args(typing.get_type_hints(cls)["backend"]))
        out.extend((name, None if b == "torch" else b) for b in backends)
    return out


def _key(name: str, backend: str | None) -> str:
    return f"{name}-{backend}" if backend else name


VARIANTS = _variants()


def test_every_method_has_a_row():
    keys = [_key(*v) for v in VARIANTS]
    missing = [k for k in keys if k not in ROWS]
    assert not missing, f"no conformance row for {missing}: add the method's closed form to ROWS"
    assert not set(ROWS) - set(keys), f"rows for methods no longer registered: {set(ROWS) - set(keys)}"


def test_closed_forms_match_the_float_model():
    handle = _handle()
    report = steelyard.profile(handle, NO_MEASURE)
    assert report.parameters.total == FLOAT_PARAMS == 82_051
    assert report.compute.macs == FLOAT_MACS == 2_236_800
    assert report.storage.parameters == 4 * FLOAT_PARAMS


def _handle():
    """The tiny BERT with every parameter nudged by noise, as a trained model's are: no two tensors
    equal, so the ONNX exporter's merging of equal initializers (zero biases, unit LayerNorm
    weights of an untrained model) does not hide any."""
    handle = tiny_bert(batch=B, seq=S)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in handle.module.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=generator))
    return handle


def _initializer_bytes(folder) -> int:
    import onnx
    from onnx.helper import tensor_dtype_to_np_dtype

    model = onnx.load(str(next(folder.glob("*.onnx"))))
    total = 0
    for init in model.graph.initializer:
        n = 1
        for d in init.dims:
            n *= d
        total += n * tensor_dtype_to_np_dtype(init.data_type).itemsize
    return total


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
@pytest.mark.parametrize(("name", "backend"), VARIANTS, ids=[_key(*v) for v in VARIANTS])
def test_profile_of_the_saved_artifact(name, backend, tmp_path):
    row = ROWS.get(_key(name, backend))
    if row is None:
        pytest.fail(f"no conformance row for {_key(name, backend)}")
    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime")
    for module in METHODS[name].requires:  # an optional extra's library
        pytest.importorskip(module)
    handle = _handle()
    config = make_config(name, **row.params_arg, **({"backend": backend} if backend else {}))
    result = compress(handle, config, data=[handle.inputs])
    folder = result.save(tmp_path / "saved")
    loaded = steelyard.load_model(str(folder), LoadConfig(inputs=InputSpec(batch_size=B, seq_len=S)))
    report = steelyard.profile(loaded, NO_MEASURE)

    assert report.parameters.total == row.params
    expected_bytes = row.weight_bytes
    if expected_bytes is None and _key(name, backend) == ORT_STATIC_BYTES:
        expected_bytes = _initializer_bytes(folder)
    elif expected_bytes is None:  # a plain fp32 model: 4 bytes a parameter
        expected_bytes = 4 * row.params
    assert report.storage.parameters == expected_bytes
    assert report.memory.weights == expected_bytes  # what the cost card calls weights in memory
    if row.bytes_by_dtype is not None:
        assert dict(report.storage.bytes_by_dtype) == row.bytes_by_dtype
    assert report.compute.macs == row.macs
    assert any(row.said in a for a in report.assumptions), report.assumptions
    if row.nonzero is not None:
        assert report.parameters.nonzero == row.nonzero
    if backend == "onnxruntime":  # counted on the saved graph, and said so; nothing is guessed for training
        assert any("ONNX graph" in a for a in report.assumptions)
        assert report.memory.training is None and report.memory.training_unknown
    # what compress reported before saving is what profile reports after loading
    assert result.params_after == row.params
    assert result.bytes_after == expected_bytes


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
def test_onnx_parameters_merged_by_the_exporter_count_as_in_torch():
    """An untrained model's zero biases and unit LayerNorm weights are exported once, under Identity
    aliases: they still count as the float model's parameters, their bytes once."""
    pytest.importorskip("onnxruntime")
    handle = tiny_bert(batch=B, seq=S)
    result = compress(handle, make_config("quantize:int8-dynamic", backend="onnxruntime"))
    report = steelyard.profile(result.handle, NO_MEASURE)
    assert report.parameters.total == FLOAT_PARAMS
    assert report.storage.parameters < ROWS["quantize:int8-dynamic-onnxruntime"].weight_bytes  # shared once


def test_onnx_graph_count_covers_conv_and_gemm():
    """The ONNX counter prices a Conv and a Gemm as the aten table does: numel(out) · C_in/g · k² and numel(out) · K."""
    pytest.importorskip("onnx")
    import io

    from steelyard.profiling.counting import count_forward
    from steelyard.profiling.onnx_graph import count_onnx

    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 5)).eval()
    x = torch.randn(2, 3, 6, 6)
    buffer = io.BytesIO()
    torch.onnx.export(model, (x,), buffer, input_names=["x"], dynamo=False)
    counted = count_onnx(buffer.getvalue(), {"x": (2, 3, 6, 6)})
    assert counted.macs_by_category == {"conv": 2 * 8 * 36 * 3 * 9, "matmul": 2 * 5 * 288}
    assert counted.macs == count_forward(model, (x,)).macs
    assert not counted.uncounted

