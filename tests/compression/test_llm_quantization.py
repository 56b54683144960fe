"""Weight-only int8 / int4 on decoders: torch's low-bit kernels run, quality, sizes, round trip, bad input."""

from __future__ import annotations

import pytest
import torch
from llm_toys import cosine, logits, tiny_gpt2, tiny_llama
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from cli_helpers import one_line_error, steelyard
from steelyard.compression import NotApplicableError, WeightOnlyConfig, compress, load_compressed
from steelyard.compression.fidelity import sqnr
from steelyard.compression.quantization.lowbit import WeightOnlyLinear
from steelyard.compression.quantization.modules import QuantizedEmbedding
from steelyard.errors import CompressionError, ConfigError
from steelyard.models import ModelHandle
from steelyard.profiling.weigh import weigh

INT4 = WeightOnlyConfig(bits=4, group_size=32)


class OpLog(TorchDispatchMode):
    """Which aten ops a forward ran (to show the low-bit kernel ran and no float matmul did)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize(("bits", "group", "symmetric", "floor_db"), [
    (8, 0, True, 40.0),  # measured 45.8 dB with bfloat16 activations (48.1 dB in float32)
    (4, 32, True, 20.0),  # measured 23.3 dB (asymmetric 24.4 dB)
    (4, 32, False, 20.0),
    (4, 128, False, 20.0),  # measured 23.8 dB
])
def test_sqnr_against_the_float_linear(bits, group, symmetric, floor_db):
    torch.manual_seed(0)
    lin = nn.Linear(512, 256)
    x = torch.randn(64, 512)
    q = WeightOnlyLinear.from_linear(lin, bits, group, symmetric)
    log = OpLog()
    with torch.inference_mode(), log:
        y = q(x)
    assert sqnr(lin(x).detach(), y) > floor_db
    assert q.kernel.removeprefix("aten.") in log.ops
    assert not {"mm", "addmm", "linear", "matmul"} & set(log.ops)  # no float weight was rebuilt and multiplied


def test_asymmetric_int4_beats_symmetric_on_shifted_weights():
    torch.manual_seed(1)
    lin = nn.Linear(256, 64)
    with torch.no_grad():
        lin.weight.add_(0.05)  # every group off-centre: a zero point pays
    x = torch.randn(32, 256)
    ref = lin(x).detach()
    sym = sqnr(ref, WeightOnlyLinear.from_linear(lin, 4, 64, True)(x))
    asym = sqnr(ref, WeightOnlyLinear.from_linear(lin, 4, 64, False)(x))
    assert asym > sym + 1.0


@pytest.mark.parametrize("build", [tiny_llama, tiny_gpt2])
def test_decoder_logits_stay_close(build, tmp_path):
    handle = build()
    reference = logits(handle)
    int8 = compress(handle, WeightOnlyConfig(bits=8))
    int4 = compress(handle, INT4)
    assert cosine(reference, logits(int8.handle)) > 0.999  # measured 0.99996 (Llama), 0.99998 (GPT-2)
    assert cosine(reference, logits(int4.handle)) > 0.95  # measured 0.981 (Llama), 0.997 (GPT-2)
    quantized = [m for m in int4.handle.module.modules() if isinstance(m, WeightOnlyLinear)]
    assert len(quantized) == (29 if build is tiny_llama else 13)  # GPT-2's Conv1D layers and the head included
    assert any(isinstance(m, QuantizedEmbedding) for m in int4.handle.module.modules())  # token table as int8 rows
    assert int4.size_ratio > 5 and int8.size_ratio > 3.2  # measured 6.07 / 3.85 (Llama), 5.38 / 3.55 (GPT-2)
    assert "aten._weight_int4pack_mm_for_cpu" in int4.notes[0]
    w = weigh(int4.handle.module)
    # GPT-2 ties its head to the token table: once quantized they are two stored tensors (int4 head, int8 rows)
    untied = handle.module.lm_head.weight.numel() if build is tiny_gpt2 else 0
    assert w.parameters.total == weigh(handle.module).parameters.total + untied and "int4" in w.parameters.by_dtype
    reloaded = load_compressed(int4.save(tmp_path / "int4"))
    assert torch.equal(logits(reloaded, int4.handle.inputs), logits(int4.handle))


def test_bfloat16_model_keeps_its_dtype():
    handle = tiny_llama()
    handle = handle.with_module(handle.module.to(torch.bfloat16))
    result = compress(handle, INT4)
    layer = next(m for m in result.handle.module.modules() if isinstance(m, WeightOnlyLinear))
    assert layer.scale.dtype == torch.bfloat16
    assert cosine(logits(handle), logits(result.handle)) > 0.95


def test_configs_the_kernels_cannot_run_are_refused():
    with pytest.raises(ConfigError, match="one scale per output row"):
        WeightOnlyConfig(bits=8, group_size=32)
    with pytest.raises(ConfigError, match="group_size must be one of 32, 64, 128, 256"):
        WeightOnlyConfig(bits=4, group_size=16)


def test_group_size_that_does_not_divide_the_inputs(capsys):
    assert steelyard("compress", "llm_toys:gpt2_factory", "--recipe", "quantize:int4-weight-only,group_size=64",
                     "--rounds", "1") == 2
    one_line_error(capsys, "does not divide the 96 input features")


def test_int4_on_a_cnn_does_not_apply(capsys):
    assert steelyard("compress", "compression_toys:cnn_factory", "--recipe", "quantize:int4-weight-only",
                     "--rounds", "1") == 2
    one_line_error(capsys, "no Linear layer fits the int4 kernel")


def test_non_finite_logits_are_refused_and_the_original_kept():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32))
    with torch.no_grad():
        model[0].weight[:, :32] = 3e38  # finite, but max − min of a group overflows float32
        model[0].weight[:, 32:] = -3e38
        model[0].weight[0, 0] = -3e38
    handle = ModelHandle("overflow", "factory", "feature-extraction", model, (torch.full((2, 64), 1e-3),))
    before = model[0].weight.clone()
    with pytest.raises(CompressionError, match="NaN/Inf"):
        compress(handle, WeightOnlyConfig(bits=4, group_size=32, symmetric=False))
    assert torch.equal(model[0].weight, before) and type(model[0]) is nn.Linear
    with pytest.raises(NotApplicableError):
        compress(ModelHandle("x", "factory", "feature-extraction", nn.Sequential(nn.ReLU()), (torch.ones(1),)), INT4)


def test_float32_compute_and_its_round_trip(tmp_path):
    handle = tiny_llama()
    result = compress(handle, WeightOnlyConfig(bits=4, group_size=64, symmetric=False, compute_dtype="float32"))
    layer = next(m for m in result.handle.module.modules() if isinstance(m, WeightOnlyLinear))
    assert layer.scale.dtype == torch.float32 and "in float32" in result.notes[0]
    reloaded = load_compressed(result.save(tmp_path / "f32"))
    assert next(m for m in reloaded.module.modules() if isinstance(m, WeightOnlyLinear)).scale.dtype == torch.float32
    assert torch.equal(logits(reloaded, result.handle.inputs), logits(result.handle))
