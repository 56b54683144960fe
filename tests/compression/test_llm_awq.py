"""AWQ (torchao's scale search) packed for torch's low-bit kernels, on a tiny Llama with activation outliers."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch
from llm_toys import logits, tiny_llama
from test_llm_quantization import OpLog

from cli_helpers import one_line_error, steelyard
from steelyard.compression import AWQConfig, CalibrationError, WeightOnlyConfig, compress, load_compressed
from steelyard.compression.base import BackendUnavailableError, matmul_layers, weight_of
from steelyard.compression.quantization.lowbit import WeightOnlyLinear
from steelyard.compression.quantization.smoothquant import is_norm
from steelyard.compression.registry import method_name, parse_method

torchao = pytest.mark.skipif(importlib.util.find_spec("torchao") is None, reason="torchao (steelyard[awq]) missing")


def outlier_llama():
    """Two blocks whose norms scale input channels 3 and 17 by 30: the salient channels AWQ protects."""
    handle = tiny_llama(batch=2, num_hidden_layers=2)
    with torch.no_grad():
        for name, m in handle.module.named_modules():
            if is_norm(m) and name != "model.norm":
                m.weight[[3, 17]] *= 30
    return handle


def layer_inputs(handle) -> dict[str, torch.Tensor]:
    """The float model's input to every Linear on the calibration batch."""
    seen: dict[str, torch.Tensor] = {}
    hooks = []
    for name, m in matmul_layers(handle.module, False):
        def hook(_m, args, name=name):
            seen[name] = args[0].reshape(-1, args[0].shape[-1]).detach()
        hooks.append(m.register_forward_pre_hook(hook))
    logits(handle)
    for h in hooks:
        h.remove()
    return seen


def output_error(handle, result, inputs) -> float:
    """Σ over layers of ‖XWᵀ − XŴᵀ‖ on the calibration activations (bias excluded: it is kept exactly)."""
    total = 0.0
    with torch.inference_mode():
        for name, x in inputs.items():
            weight, bias = weight_of(handle.module.get_submodule(name))
            q = result.handle.module.get_submodule(name)
            assert isinstance(q, WeightOnlyLinear)
            y = q(x) - (0 if bias is None else bias)
            total += float((x @ weight.T - y).norm())
    return total


@torchao
@pytest.mark.parametrize(("bits", "group", "symmetric"), [(4, 32, True), (4, 32, False), (8, 0, True)])
def test_awq_has_lower_output_error_than_round_to_nearest(bits, group, symmetric):
    handle = outlier_llama()
    inputs = layer_inputs(handle)
    common = dict(bits=bits, group_size=group, symmetric=symmetric, compute_dtype="float32")
    awq = compress(handle, AWQConfig(**common, grid=8), data=[dict(handle.inputs)])
    rtn = compress(handle, WeightOnlyConfig(**common))
    # measured (grid 8), AWQ vs RTN: int4 symmetric 24.6 vs 31.6, asymmetric 14.4 vs 25.8, int8 1.49 vs 2.0
    assert output_error(handle, awq, inputs) < 0.9 * output_error(handle, rtn, inputs)
    assert torch.isfinite(logits(awq.handle)).all()
    assert awq.details["calibration"] == "awq (torchao)" and "AWQ by torchao" in awq.notes[0]


@torchao
def test_awq_layers_run_the_int4_kernel_in_bfloat16_and_survive_save_load(tmp_path):
    handle = outlier_llama()
    result = compress(handle, AWQConfig(bits=4, group_size=32, grid=4), data=[dict(handle.inputs)])
    q = result.handle.module.model.layers[0].self_attn.q_proj
    assert isinstance(q, WeightOnlyLinear) and q.bits == 4 and q.input_scale is not None
    assert q.scale.dtype == torch.bfloat16 and q.qweight.dtype == torch.uint8  # packed int4 codes
    log = OpLog()
    with torch.inference_mode(), log:
        q(torch.randn(3, 64))
    assert "_weight_int4pack_mm_for_cpu" in log.ops and not {"mm", "addmm", "linear"} & set(log.ops)
    out = logits(result.handle)
    assert torch.isfinite(out).all()
    reloaded = load_compressed(result.save(tmp_path / "awq"))
    assert torch.equal(logits(reloaded, result.handle.inputs), out)


def test_from_codes_matches_the_codes_it_was_given():
    torch.manual_seed(0)
    codes = torch.randint(-8, 8, (32, 64))
    scale, zero = torch.rand(32, 2) + 0.1, torch.randint(-3, 4, (32, 2)).float()
    layer = WeightOnlyLinear.from_codes(codes, scale, zero, None, 4, 32, torch.float32,
                                        input_scale=torch.full((64,), 0.5))  # fmt: skip
    expected = (codes.float() - zero.repeat_interleave(32, 1)) * scale.repeat_interleave(32, 1) * 0.5
    assert torch.allclose(layer.dequantized_weight(), expected, atol=1e-5)
    with pytest.raises(ValueError, match=r"int4 codes must lie in \[-8, 7\]"):
        WeightOnlyLinear.from_codes(codes + 8, scale, zero, None, 4, 32)


def test_awq_without_calibration_data_is_refused_and_the_original_kept(capsys):
    handle = outlier_llama()
    before = handle.module.model.layers[0].mlp.up_proj.weight.clone()
    with pytest.raises(CalibrationError, match="needs calibration text"):
        compress(handle, AWQConfig(bits=4, group_size=32))
    assert torch.equal(handle.module.model.layers[0].mlp.up_proj.weight, before)
    assert steelyard("compress", "llm_toys:gpt2_factory", "--recipe", "quantize:int4-awq", "--rounds", "1") == 2
    one_line_error(capsys, "quantize:int4-awq needs data", "--data")


def test_missing_torchao_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchao.prototype.awq.core", None)  # import fails as if not installed
    handle = outlier_llama()
    with pytest.raises(BackendUnavailableError, match=r"needs torchao.*steelyard\[awq\]"):
        compress(handle, AWQConfig(bits=4, group_size=32), data=[dict(handle.inputs)])


def test_awq_methods_parse_with_their_presets():
    assert parse_method("quantize:int4-awq") == AWQConfig(bits=4, group_size=32)
    assert parse_method("quantize:int4-awq,group_size=64,grid=10,symmetric=false") == AWQConfig(
        bits=4, group_size=64, grid=10, symmetric=False)
    assert method_name(AWQConfig(bits=8)) == "quantize:int8-awq"
    assert method_name(WeightOnlyConfig(bits=4, group_size=32)) == "quantize:int4-weight-only"
