"""Quantization-aware training: the fake-quantized forward equals torch's own int8 arithmetic, gradients
pass straight through, the model is plain again on exit, and training inside the context lowers the
error of the model that quantize:int8-dynamic then produces."""

from __future__ import annotations

import contextlib
import copy
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from compression_toys import outputs, tiny_bert
from steelyard.compression import DynamicQuantConfig, NotApplicableError, compress
from steelyard.compression.quantization.dynamic import quantize_linears
from steelyard.compression.quantization.modules import quiet_quantization
from steelyard.compression.quantization.qat import (
    FakeQuantSpec,
    fake_quant,
    is_fake_quantized,
    strip_fake_quant,
    weight_params,
)
from steelyard.errors import CompressionError, ConfigError
from steelyard.training.config import FinetuneConfig
from steelyard.training.loop import Accounting, LoopInput, train

pytestmark = pytest.mark.usefixtures("one_thread")


class Net(nn.Module):
    """Two body layers and an output head named like the ones the head rule protects."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(24, 16), nn.ReLU(), nn.Linear(16, 16))
        self.classifier = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.body(x))


def _torch_weight_fq(w: torch.Tensor) -> torch.Tensor:
    """Per-channel symmetric qint8 with torch's observer scale max|w| / 127.5, via torch's own kernels."""
    w = w.detach()
    with quiet_quantization():
        scales = (w.abs().amax(1) / 127.5).double()
        zeros = torch.zeros(w.shape[0], dtype=torch.long)
        return torch.quantize_per_channel(w, scales, zeros, 0, torch.qint8).dequantize()


def _torch_input_fq(x: torch.Tensor) -> torch.Tensor:
    """Per-tensor quint8 with the parameters fbgemm's dynamic Linear picks (reduce_range)."""
    x = x.detach()
    with quiet_quantization():
        scale, zero = torch._choose_qparams_per_tensor(x, True)
        return torch.quantize_per_tensor(x, scale, zero, torch.quint8).dequantize()


def _torch_fake_quant(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """The hand-made reference from torch's quantization primitives."""
    return F.linear(_torch_input_fq(x), _torch_weight_fq(layer.weight), layer.bias)


def test_inside_the_context_layers_compute_torchs_int8_arithmetic():
    net = Net()
    x = torch.randn(5, 24, generator=torch.Generator().manual_seed(1)) * 2 + 0.3
    first = net.body[0]
    with fake_quant(net) as names:
        assert names == ["body.0", "body.2"]  # the classifier head stays float
        assert not is_fake_quantized(net.classifier)
        torch.testing.assert_close(first(x), _torch_fake_quant(first, x), rtol=0, atol=1e-6)
        hidden = net.body(x)
        assert torch.equal(net(x), F.linear(hidden, net.classifier.weight, net.classifier.bias))  # plain head
    with fake_quant(net, activations=False):
        torch.testing.assert_close(first(x), F.linear(x, _torch_weight_fq(first.weight), first.bias), rtol=0, atol=1e-6)


def test_weight_parameters_match_torch_observers():
    w = torch.randn(6, 10, generator=torch.Generator().manual_seed(2))
    per_tensor = weight_params(w, FakeQuantSpec(per_channel=False))
    assert per_tensor.scale.item() == pytest.approx(w.abs().max().item() / 127.5)
    assert (per_tensor.qmin, per_tensor.qmax) == (-128, 127)
    four = weight_params(w, FakeQuantSpec(bits=4))
    torch.testing.assert_close(four.scale.squeeze(1), w.abs().amax(1) / 7.5)
    affine = weight_params(w, FakeQuantSpec(symmetric=False))
    observer = torch.ao.quantization.PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8,
                                                              qscheme=torch.per_channel_affine)  # fmt: skip
    observer(w)
    scale, zero = observer.calculate_qparams()
    torch.testing.assert_close(affine.scale.squeeze(1), scale.float())
    assert torch.equal(affine.zero_point.squeeze(1).long(), zero)


def test_gradients_pass_straight_through_to_the_float_weights():
    net = Net()
    layer = net.body[0]
    x = (torch.randn(4, 24, generator=torch.Generator().manual_seed(3)) + 0.5).requires_grad_()
    upstream = torch.randn(4, 16, generator=torch.Generator().manual_seed(4))
    with fake_quant(net):
        (layer(x) * upstream).sum().backward()
    # the straight-through estimator: d/dW = upstreamᵀ · fq(x), d/db = Σ upstream, d/dx = upstream · fq(W)
    x_fq, w_fq = _torch_input_fq(x), _torch_weight_fq(Net().body[0].weight)
    torch.testing.assert_close(layer.weight.grad, upstream.T @ x_fq, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(layer.bias.grad, upstream.sum(0))
    torch.testing.assert_close(x.grad, upstream @ w_fq, rtol=1e-5, atol=1e-6)
    assert layer.weight.grad.abs().sum() > 0 and net.body[2].weight.grad is None  # only what the loss used


def test_on_exit_the_model_is_plain_again():
    net = Net()
    x = torch.randn(3, 24, generator=torch.Generator().manual_seed(5))
    before = net(x)
    params = {k: v for k, v in net.named_parameters()}
    keys = list(net.state_dict())
    with fake_quant(net, include_head=True) as names:
        assert "classifier" in names
        assert list(net.state_dict()) == keys  # the training loop's best-state snapshot keeps its keys
        assert not torch.equal(net(x), before)
    assert torch.equal(net(x), before)
    assert list(net.state_dict()) == keys and dict(net.named_parameters()) == params
    for m in net.modules():
        assert not is_fake_quantized(m) and "forward" not in m.__dict__
        assert not m._forward_hooks and not m._forward_pre_hooks
    with pytest.raises(RuntimeError, match="boom"), fake_quant(net):
        raise RuntimeError("boom")
    assert torch.equal(net(x), before)  # restored after an error too


def test_copies_made_inside_keep_the_override_until_stripped():
    net = Net()
    x = torch.randn(3, 24, generator=torch.Generator().manual_seed(6))
    with fake_quant(net):
        copied = copy.deepcopy(net)
        inside = net(x)
    assert torch.equal(copied(x), inside)  # the copy runs fake-quantized, on its own weights
    assert strip_fake_quant(copied) == 2
    assert torch.equal(copied(x), net(x))


def test_bad_calls():
    net = Net()
    with pytest.raises(ConfigError, match="bits"), fake_quant(net, bits=9):
        pass
    with fake_quant(net), pytest.raises(CompressionError, match="already"), fake_quant(net):
        pass
    assert not any(is_fake_quantized(m) for m in net.modules())
    with (
        pytest.raises(NotApplicableError, match="outside its output head"),
        fake_quant(nn.Sequential(nn.Conv2d(1, 1, 1))),
    ):
        pass


def test_fake_quant_output_equals_the_int8_dynamic_model():
    handle = tiny_bert()
    result = compress(handle, DynamicQuantConfig(include_head=False, embeddings=False))
    quantized = outputs(result.handle)
    plain = outputs(handle)
    with fake_quant(handle.module):
        fake = outputs(handle)
    gap = (fake - quantized).abs().max().item()
    error = (plain - quantized).abs().max().item()
    assert gap < 1e-5 and error > 100 * gap


class _MSE:
    """A regression objective onto the batch's ``_target`` (an objective is any object with these two methods)."""

    def loss(self, model, batch):
        return F.mse_loss(model(batch), batch["_target"])

    def modules(self):
        return []


class _RegressionAdapter:
    """Feeds (x, target) features to the training loop; the :class:`_MSE` objective regresses onto ``_target``."""

    kind = "classification"
    positional = True

    def encode(self, examples):
        return examples

    def collate(self, features):
        return {
            "x": torch.stack([f["x"] for f in features]),
            "_target": torch.stack([f["_target"] for f in features]),
            "labels": torch.zeros(len(features), dtype=torch.long),
        }


def test_training_inside_the_context_lowers_the_int8_error():
    """The float model is already optimal for its targets, so plain training leaves it unchanged;
    QAT (same loop, same data) moves it to weights whose int8-dynamic version is several times closer."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 8))
    with torch.no_grad():
        model[0].weight[:, 0] = 3.0  # one large weight per row: a coarse int8 grid for the others
    x = 2 + torch.rand(256, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        target = model(x)
    features = [{"x": x[i], "_target": target[i]} for i in range(len(x))]

    def int8_error(m: nn.Module) -> float:
        q = quantize_linears(copy.deepcopy(m), ["0", "2"], per_channel=True, engine="x86")
        with torch.no_grad():
            return F.mse_loss(q(x), target).item()

    def trained(qat: bool) -> nn.Module:
        m = copy.deepcopy(model)
        inp = LoopInput(m, _RegressionAdapter(), features, [], "accuracy", objective=_MSE())
        cfg = FinetuneConfig(epochs=20, lr=1e-4, batch_size=64, weight_decay=0.0, warmup_ratio=0.0)
        with fake_quant(m) if qat else contextlib.nullcontext():
            train(inp, cfg, 1e-4, Accounting(time.perf_counter()))
        return m

    start = int8_error(model)
    plain, qat = int8_error(trained(False)), int8_error(trained(True))
    assert plain == pytest.approx(start, rel=1e-3)
    assert qat < start / 3
