"""Quantization, casting and low-rank transforms on tiny models: fidelity, sizes, round trips, errors."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from compression_toys import outputs, tiny_bert, tiny_resnet
from steelyard.compression import (
    BackendUnavailableError,
    CalibrationError,
    CastConfig,
    DynamicQuantConfig,
    LowRankConfig,
    NotApplicableError,
    StaticQuantConfig,
    WeightOnlyConfig,
    compress,
    load_compressed,
)
from steelyard.compression.fidelity import agreement, sqnr
from steelyard.compression.low_rank.svd import FactorizedConv2d, FactorizedLinear, choose_rank
from steelyard.errors import CompressionError, ConfigError
from steelyard.models import ModelHandle


def linear_count(module: nn.Module) -> int:
    return sum(type(m) is nn.Linear for m in module.modules())


def test_sqnr_and_agreement_closed_form():
    ref = torch.tensor([[3.0, 4.0]])
    assert sqnr(ref, ref) == float("inf")
    assert sqnr(ref, ref * 0.9) == pytest.approx(20.0)  # noise 10% of the signal: 20 dB
    assert agreement(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[2.0, 0.0], [1.0, 0.0]])) == 0.5


def test_int8_dynamic_torch(tmp_path):
    handle = tiny_bert()
    result = compress(handle, DynamicQuantConfig())
    assert result.fidelity.sqnr_db > 25
    assert result.fidelity.agreement == 1.0
    assert linear_count(result.handle.module) == 0
    assert linear_count(handle.module) == 2 * 6 + 2  # original untouched: 6 per layer, pooler, classifier
    assert result.params_after == result.params_before
    assert result.size_ratio > 3.3  # Linear weights and embedding tables int8; biases and LayerNorm stay float
    embeddings = result.handle.module.bert.embeddings
    assert type(embeddings.word_embeddings).__name__ == "QuantizedEmbedding"
    assert type(handle.module.bert.embeddings.word_embeddings) is nn.Embedding
    reloaded = load_compressed(result.save(tmp_path / "int8"))
    assert torch.equal(outputs(reloaded, result.handle.inputs), outputs(result.handle))
    per_tensor = compress(handle, DynamicQuantConfig(per_channel=False))
    assert per_tensor.fidelity.sqnr_db > 20


def test_int8_dynamic_keeps_the_head_and_embeddings_when_asked():
    result = compress(tiny_bert(), DynamicQuantConfig(include_head=False, embeddings=False))
    assert type(result.handle.module.classifier) is nn.Linear
    assert type(result.handle.module.bert.embeddings.word_embeddings) is nn.Embedding
    assert result.size_ratio < 3


def test_missing_torch_engine(monkeypatch):
    from steelyard.compression.quantization import engine

    monkeypatch.setattr(engine, "supported_engines", lambda: ["qnnpack"])
    with pytest.raises(BackendUnavailableError, match=r"engine 'x86' is not available.*available: qnnpack"):
        compress(tiny_bert(), DynamicQuantConfig())


def test_int8_static_torch_needs_and_uses_calibration(tmp_path):
    handle = tiny_bert()
    with pytest.raises(CalibrationError, match="needs calibration data"):
        compress(handle, StaticQuantConfig())
    with pytest.raises(CalibrationError, match="holds no batch"):
        compress(handle, StaticQuantConfig(), data=[])
    with pytest.raises(CalibrationError, match="rejected a calibration batch"):
        compress(handle, StaticQuantConfig(), data=[{"input_ids": torch.zeros(2, 3, 4, dtype=torch.long)}])
    calibration = [tiny_bert(seed=s).inputs for s in range(2)]
    for observer in ("minmax", "percentile"):
        result = compress(handle, StaticQuantConfig(observer=observer), data=calibration)
        assert result.fidelity.sqnr_db > 20, observer
    reloaded = load_compressed(result.save(tmp_path / "static"))
    assert torch.equal(outputs(reloaded, result.handle.inputs), outputs(result.handle))


def test_onnxruntime_dynamic_round_trip(tmp_path):
    handle = tiny_bert()
    result = compress(handle, DynamicQuantConfig(backend="onnxruntime"))
    assert result.backend == "onnxruntime"
    assert result.fidelity.sqnr_db > 20  # ORT quantizes activations per tensor with uint8: a little noisier
    assert result.size_ratio > 1.6  # the float embeddings stay: the ratio grows with model width
    # other batch sizes and lengths run too (dynamic axes)
    other = tiny_bert(batch=3, seq=9).inputs
    assert outputs(result.handle, other).shape == (3, 3)
    onnx_file = result.save(tmp_path / "model.onnx")
    assert onnx_file.is_file()
    assert torch.equal(outputs(load_compressed(onnx_file), result.handle.inputs), outputs(result.handle))
    folder = load_compressed(result.save(tmp_path / "ort"))
    assert torch.equal(outputs(folder, result.handle.inputs), outputs(result.handle))


def test_onnxruntime_static_on_a_cnn():
    handle = tiny_resnet()
    with pytest.raises(CalibrationError):
        compress(handle, StaticQuantConfig(backend="onnxruntime"))
    result = compress(handle, StaticQuantConfig(backend="onnxruntime", observer="percentile"), data=[handle.inputs])
    assert result.fidelity.sqnr_db > 15
    assert result.bytes_after < result.bytes_before / 1.8


def test_missing_onnxruntime(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(BackendUnavailableError, match="backend=onnxruntime needs onnx and onnxruntime"):
        compress(tiny_bert(), DynamicQuantConfig(backend="onnxruntime"))


def test_export_failure_is_a_clear_error():
    class Unexportable(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x):
            return self.lin(x).numpy()  # leaves torch: no exporter can follow

    handle = ModelHandle("odd", "factory", "feature-extraction", Unexportable(), (torch.randn(2, 4),))
    with pytest.raises(CompressionError, match="ONNX export"):
        compress(handle, DynamicQuantConfig(backend="onnxruntime"), check=False)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_cast(dtype, tmp_path):
    handle = tiny_resnet()
    result = compress(handle, CastConfig(dtype=dtype))
    target = getattr(torch, dtype)
    assert {p.dtype for p in result.handle.module.parameters()} == {target}
    assert result.handle.inputs["pixel_values"].dtype == target
    assert handle.inputs["pixel_values"].dtype == torch.float32
    assert result.bytes_after < 0.51 * result.bytes_before  # float tensors halve; BatchNorm step counters stay int64
    assert result.fidelity.sqnr_db > 30
    reloaded = load_compressed(result.save(tmp_path / dtype))
    assert torch.equal(outputs(reloaded, result.handle.inputs), outputs(result.handle))


def test_nan_in_compressed_outputs_is_a_failure():
    model = nn.Sequential(nn.Linear(4, 4))
    with torch.no_grad():
        model[0].weight.fill_(1e4)
    handle = ModelHandle("overflow", "factory", "feature-extraction", model, (torch.full((2, 4), 100.0),))
    with pytest.raises(CompressionError, match="NaN/Inf"):  # 4e6 overflows float16 (max 65504)
        compress(handle, CastConfig(dtype="float16"))


@pytest.mark.parametrize(("bits", "ratio"), [(8, 1.6), (4, 1.9)])
def test_weight_only(bits, ratio, tmp_path):
    result = compress(tiny_bert(), WeightOnlyConfig(bits=bits, group_size=32 if bits == 4 else 0))
    assert result.size_ratio > ratio
    assert result.fidelity.sqnr_db > (30 if bits == 8 else 10)
    assert any("aten._weight_int" in n for n in result.notes)  # the kernel that ran is named
    reloaded = load_compressed(result.save(tmp_path / f"w{bits}"))
    assert torch.equal(outputs(reloaded, result.handle.inputs), outputs(result.handle))
    with pytest.raises(NotApplicableError, match="outside its output head"):
        compress(tiny_resnet(), WeightOnlyConfig(bits=bits, group_size=32 if bits == 4 else 0))


def test_choose_rank():
    s = torch.tensor([4.0, 2.0, 1.0, 1.0])  # energies 16, 4, 1, 1 of 22
    assert choose_rank(s, LowRankConfig(energy=0.7, round_to=1)) == 1
    assert choose_rank(s, LowRankConfig(energy=0.9, round_to=1)) == 2
    assert choose_rank(s, LowRankConfig(ratio=0.5, round_to=1)) == 2
    assert choose_rank(torch.ones(64), LowRankConfig(ratio=0.3, round_to=8)) == 24


def test_low_rank_is_exact_on_low_rank_weights(tmp_path):
    torch.manual_seed(0)
    lin = nn.Linear(64, 48)
    conv = nn.Conv2d(8, 32, 3, padding=1)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(48, 6) @ torch.randn(6, 64))  # rank 6
        conv.weight.copy_((torch.randn(32, 5) @ torch.randn(5, 72)).reshape(32, 8, 3, 3))  # rank 5
    model = nn.Sequential(conv, nn.Flatten(), nn.Linear(32 * 4 * 4, 4))  # too narrow to pay: left whole
    handle = ModelHandle("lr", "factory", "feature-extraction", model, (torch.randn(2, 8, 4, 4),))
    result = compress(handle, LowRankConfig(ratio=0.1))
    assert isinstance(result.handle.module[0], FactorizedConv2d) and result.handle.module[0].rank == 8
    assert result.fidelity.sqnr_db > 80  # rank 8 >= true rank 5: exact up to float error
    # Linear alone
    lin_handle = ModelHandle("lin", "factory", "feature-extraction", nn.Sequential(lin), (torch.randn(3, 64),))
    lin_result = compress(lin_handle, LowRankConfig(ratio=0.1))
    factor = lin_result.handle.module[0]
    assert isinstance(factor, FactorizedLinear) and factor.rank == 8
    assert lin_result.params_after == 8 * 64 + 48 * 8 + 48
    assert lin_result.fidelity.sqnr_db > 80


def test_low_rank_only_where_it_pays(tmp_path):
    handle = tiny_bert()
    result = compress(handle, LowRankConfig(ratio=0.25))
    factored = [m for m in result.handle.module.modules() if isinstance(m, FactorizedLinear)]
    assert factored and all(m.rank * (m.in_features + m.out_features) < m.in_features * m.out_features
                            for m in factored)  # fmt: skip
    assert result.params_after < result.params_before
    reloaded = load_compressed(result.save(tmp_path / "lowrank"))
    assert torch.equal(outputs(reloaded, result.handle.inputs), outputs(result.handle))
    square = ModelHandle("sq", "factory", "feature-extraction", nn.Sequential(nn.Linear(8, 8)), (torch.randn(2, 8),))
    with pytest.raises(NotApplicableError, match="no layer gets cheaper"):
        compress(square, LowRankConfig(ratio=0.9))


def test_meta_handles_and_onnx_models_are_refused():
    from steelyard.models.hf import build_on_meta

    meta = tiny_bert()
    meta = meta.with_module(build_on_meta(meta.config, "text-classification", torch.float32))
    meta = meta.with_inputs({"input_ids": torch.zeros(2, 16, dtype=torch.long, device="meta")})
    with pytest.raises(CompressionError, match="needs real weights"):
        compress(meta, DynamicQuantConfig())
    ort = compress(tiny_bert(), DynamicQuantConfig(backend="onnxruntime"))
    with pytest.raises(NotApplicableError, match="already an ONNX Runtime model"):
        compress(ort.handle, DynamicQuantConfig())


def test_chained_methods_save_and_load(tmp_path):
    from steelyard.compression import StructuredPruneConfig

    pruned = compress(tiny_bert(), StructuredPruneConfig(amount=0.5, heads=0.5))
    quantized = compress(pruned.handle, DynamicQuantConfig())
    assert [h["method"] for h in quantized.history] == ["prune:structured", "quantize:int8-dynamic"]
    reloaded = load_compressed(quantized.save(tmp_path / "chain"))
    assert torch.equal(outputs(reloaded, quantized.handle.inputs), outputs(quantized.handle))


def test_save_is_atomic_and_protects_the_original(tmp_path):
    result = compress(tiny_bert(), CastConfig())
    target = result.save(tmp_path / "out")
    with pytest.raises(ConfigError, match="already exists"):
        result.save(target)
    before = {p.name for p in target.iterdir()}
    result.save(target, overwrite=True)
    assert {p.name for p in target.iterdir()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left
    reloaded = load_compressed(target)
    again = compress(reloaded, CastConfig(dtype="bfloat16"))
    with pytest.raises(ConfigError, match="would overwrite or contain the input"):
        again.save(target, overwrite=True)
    with pytest.raises(CompressionError, match="only an onnxruntime-backend model"):
        result.save(tmp_path / "x.onnx")
