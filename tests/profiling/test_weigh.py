"""The one weigher: closed-form counts on tiny nets, tied weights once, and compressed models weighed
like their float originals (the int8-dynamic BERT folder that ``profile`` used to call 640 parameters)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import steelyard
from compression_toys import tiny_bert
from steelyard.compression import DynamicQuantConfig, WeightOnlyConfig, compress
from steelyard.models import InputSpec, LoadConfig
from steelyard.profiling.profile import ProfileConfig
from steelyard.profiling.weigh import HeldWeights, WeighsItself, weigh

NO_MEASURE = ProfileConfig(measure=False, hardware=())


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.emb.weight
        self.norm = nn.LayerNorm(4)
        self.register_buffer("steps", torch.zeros(3, dtype=torch.int64))
        self.register_buffer("cache", torch.zeros(100), persistent=False)


def test_float_closed_form_tied_once_and_non_persistent_buffers_left_out():
    model = Tied()
    nn.init.zeros_(model.norm.bias)
    w = weigh(model)
    assert w.parameters.total == 10 * 4 + 2 * 4  # the tied head adds nothing
    assert w.parameters.tied == 10 * 4
    assert w.parameters.trainable == w.parameters.total
    assert w.parameters.nonzero == 10 * 4 + 4  # LayerNorm bias zeroed
    assert w.parameters.by_dtype == {"float32": 48}
    assert w.storage.parameters == 4 * 48
    assert w.storage.buffers == 3 * 8  # the int64 buffer; the non-persistent cache is not state
    assert w.storage.bytes_by_dtype == {"float32": 4 * 48, "int64": 24}
    assert w.bytes == 4 * 48 + 24


def test_meta_device_has_counts_but_no_nonzero():
    with torch.device("meta"):
        model = Tied()
    w = weigh(model)
    assert w.parameters.total == 48 and w.parameters.nonzero is None


class Packed(nn.Module):
    """A module that keeps its weights where nn.Parameter cannot see them, and says so."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("codes", torch.zeros(6, 8, dtype=torch.uint8))
        self.inner = nn.Linear(2, 2)  # part of what it reports: must not be counted again

    def steelyard_weight(self) -> HeldWeights:
        return HeldWeights({"int4": 96}, {"int4": 48, "float32": 24})


def test_size_protocol_is_taken_whole():
    model = nn.Sequential(Packed(), nn.Linear(3, 2))
    assert isinstance(model[0], WeighsItself) and not isinstance(model[1], WeighsItself)
    w = weigh(model)
    assert w.parameters.total == 96 + 3 * 2 + 2
    assert w.parameters.by_dtype == {"int4": 96, "float32": 8}
    assert w.parameters.nonzero is None  # packed codes hide their zeros
    assert w.storage.bytes_by_dtype == {"int4": 48, "float32": 24 + 4 * 8}
    assert w.parameters.trainable == 8  # only the plain Linear's parameters train


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")  # torch.ao is deprecated
def test_torch_dynamic_int8_linear_is_read_from_its_packed_params():
    lin = nn.Linear(16, 8)
    q = torch.ao.quantization.quantize_dynamic(nn.Sequential(lin), {nn.Linear}, dtype=torch.qint8)
    w = weigh(q)
    assert w.parameters.total == weigh(nn.Sequential(lin)).parameters.total == 16 * 8 + 8
    # int8 codes; one fp32 scale and int32 zero point per tensor; the fp32 bias
    assert w.storage.bytes_by_dtype == {"int8": 128, "float32": 4 + 8 * 4, "int32": 4}


def expected_int8_dynamic_bytes(float_model: nn.Module, compressed: nn.Module) -> int:
    """Closed form of what int8-dynamic keeps: per output channel an fp32 scale and an int32 zero point
    beside the int8 codes of each Linear; per row an fp32 scale beside each int8 embedding table."""
    kinds = {name: type(m).__name__ for name, m in compressed.named_modules()}
    total = 0
    for name, m in float_model.named_modules():
        if isinstance(m, nn.Linear):
            total += m.in_features * m.out_features + 8 * m.out_features + 4 * m.out_features
        elif isinstance(m, nn.Embedding) and kinds[name] == "QuantizedEmbedding":
            total += m.num_embeddings * m.embedding_dim + 4 * m.num_embeddings
        else:
            total += sum(4 * p.numel() for p in m.parameters(recurse=False))
    return total


def test_profile_of_a_saved_int8_dynamic_folder_weighs_the_quantized_model(tmp_path):
    handle = tiny_bert()
    result = compress(handle, DynamicQuantConfig())
    folder = result.save(tmp_path / "int8")
    loaded = steelyard.load_model(str(folder), LoadConfig(inputs=InputSpec(batch_size=2, seq_len=16)))
    report = steelyard.profile(loaded, NO_MEASURE)
    float_report = steelyard.profile(handle, NO_MEASURE)

    assert float_report.parameters.total == 82_051
    assert report.parameters.total == float_report.parameters.total  # not the 640 nn.Parameters left
    expected = expected_int8_dynamic_bytes(handle.module, result.handle.module)
    assert report.storage.parameters == expected == result.bytes_after
    assert report.memory.weights == expected
    quantized_tables = [m for m in result.handle.module.modules() if type(m).__name__ == "QuantizedEmbedding"]
    assert quantized_tables  # the word embeddings at least
    assert report.storage.bytes_by_dtype["int8"] == sum(
        m.in_features * m.out_features for m in handle.module.modules() if isinstance(m, nn.Linear)
    ) + sum(m.num_embeddings * m.embedding_dim for m in quantized_tables)  # Linear codes + int8 tables
    assert report.storage.on_disk == (folder / "steelyard_weights.safetensors").stat().st_size  # a guarded folder
    on_disk = report.storage.on_disk_by_dtype
    assert on_disk["int8"] == report.storage.bytes_by_dtype["int8"]  # the same codes in the file
    assert sum(on_disk.values()) < report.storage.on_disk  # the rest is the JSON header
    # the int8 kernels do the float model's multiply-adds: counted, not dropped
    assert report.compute.macs == float_report.compute.macs
    assert "linear_dynamic" not in report.compute.uncounted_ops


@pytest.mark.parametrize("bits", [8, 4])
def test_weight_only_keeps_the_float_parameter_count(bits):
    handle = tiny_bert()
    result = compress(handle, WeightOnlyConfig(bits=bits, group_size=32 if bits == 4 else 0))
    w = weigh(result.handle.module)
    assert w.parameters.total == weigh(handle.module).parameters.total
    assert f"int{bits}" in w.parameters.by_dtype
    assert w.bytes == result.bytes_after


def test_safetensors_headers_give_bytes_on_disk_per_dtype(tmp_path):
    handle = tiny_bert()
    handle.module.save_pretrained(tmp_path)
    files = [tmp_path / "model.safetensors"]
    w = weigh(handle.module, files)
    assert w.storage.on_disk == files[0].stat().st_size
    assert w.storage.on_disk_by_dtype == {"float32": w.storage.parameters + w.storage.buffers}
