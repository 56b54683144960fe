"""PyTorch's ``test/test_flop_counter.py`` ported to steelyard's counter.

Each test keeps the source test's name. torch counts matrix FLOPs = 2·MACs and nothing else, so
every torch number is compared with ``result.flops`` (= 2·MACs); steelyard additionally books
bias adds, softmax and elementwise work under ``other_flops``, which torch does not count.
Convention differences are stated where they occur, with torch's number and steelyard's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from steelyard.profiling.counter import CostCounter, CountResult
from steelyard.profiling.op_table_custom import OpFormula


def T(*shape: int, requires_grad: bool = False) -> torch.Tensor:  # torch's helper name
    return torch.randn(*shape, requires_grad=requires_grad)


def counted(fn, model: nn.Module | None = None, **options) -> CountResult:
    with CostCounter(model, **options) as c:
        fn()
    return c.result


def test_flop_counter_variety():
    """torch: 3012. mm 240 + addmm 240 + matmul 420 + einsum 672 + Linear(9, 10) on 8 rows 1440."""
    mod = nn.Linear(9, 10)

    def run():
        torch.mm(T(4, 5), T(5, 6))
        torch.addmm(T(4, 6), T(4, 5), T(5, 6), beta=0.5, alpha=0.5)
        torch.matmul(T(5, 6), T(6, 7))
        torch.einsum("ab,bc->ac", T(6, 7), T(7, 8))
        mod(T(8, 9))

    r = counted(run)
    assert r.flops == 3012
    # steelyard also books the two bias adds (addmm's 4·6 and Linear's 8·10) as elementwise work
    assert r.other_flops_by_category == {"elementwise": 4 * 6 + 8 * 10}


def test_op():
    """torch: mm 240; bmm 720; three addmm 720; baddbmm 720; conv2d 28800; conv1d 1440."""
    assert counted(lambda: torch.mm(T(4, 5), T(5, 6))).flops == 240
    assert counted(lambda: torch.bmm(T(3, 4, 5), T(3, 5, 6))).flops == 720

    def addmms():
        torch.addmm(T(4, 6), T(4, 5), T(5, 6))
        torch.addmm(T(4, 1), T(4, 5), T(5, 6))
        torch.addmm(T(6), T(4, 5), T(5, 6))

    assert counted(addmms).flops == 720
    assert counted(lambda: torch.baddbmm(T(3, 4, 6), T(3, 4, 5), T(3, 5, 6))).flops == 720
    assert counted(lambda: torch.conv2d(T(2, 3, 6, 6), T(6, 3, 4, 4), padding=1)).flops == 28800
    assert counted(lambda: torch.conv1d(T(2, 3, 6), T(6, 3, 4), padding=1)).flops == 1440


def test_backward():
    """torch: 5184 (mm forward 240 + bmm forward 2016, and their backward)."""

    def run():
        a = T(4, 5, requires_grad=True)
        a = torch.mm(a, T(5, 6))
        a = a.unsqueeze(0).expand(7, 4, 6)
        a = torch.bmm(a, T(7, 6, 7))
        a.sum().backward()

    assert counted(run).flops == 5184


def test_torchscript():
    """torch: a scripted function counts as its eager twin."""

    def foo(x):
        return torch.mm(x, x)

    eager = counted(lambda: foo(T(5, 5))).flops
    scripted = torch.jit.script(foo)
    assert counted(lambda: scripted(T(5, 5))).flops == eager == 2 * 5 * 5 * 5


def test_autograd_op():
    """torch: 750 = forward mm 250 + backward's two mm 500."""

    class _CustomOp(torch.autograd.Function):
        @staticmethod
        def forward(ctx, input: torch.Tensor) -> torch.Tensor:
            return torch.mm(input, input)

        @staticmethod
        def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
            return torch.mm(grad_output, grad_output) + torch.mm(grad_output, grad_output)

    def run():
        a = T(5, 5, requires_grad=True)
        _CustomOp.apply(a).sum().backward()

    assert counted(run).flops == 750


class _BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock, same layers and names (torchvision is not a dependency)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class _ResNet18(nn.Module):
    """torchvision.models.resnet18's layer structure, for torch's ``test_module``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = [(64, 64, 1), (64, 128, 2), (128, 256, 2), (256, 512, 2)]
        for i, (cin, cout, stride) in enumerate(widths, start=1):
            self.add_module(f"layer{i}", nn.Sequential(_BasicBlock(cin, cout, stride), _BasicBlock(cout, cout, 1)))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _resnet18() -> nn.Module:
    try:
        from torchvision import models
    except ImportError:
        return _ResNet18()
    return models.resnet18()


def test_module():
    """torch: resnet18 forward + backward 10884440064 FLOPs; layer1's convolution 924844032 and
    convolution_backward 1849688064 (backward attributed to the module, as steelyard now does).
    torchvision's resnet18 when installed, else the same layers built here."""
    resnet18 = _resnet18()
    r = counted(lambda: resnet18(T(1, 3, 224, 224, requires_grad=True)).sum().backward(), resnet18)
    assert r.flops == 10884440064
    layer1 = r.by_operator("layer1")
    assert 2 * layer1["convolution"] == 924844032
    assert 2 * layer1["convolution_backward"] == 1849688064


def test_custom():
    """torch: ``custom_mapping={aten.add: lambda *args, out_shape: 5}`` gives 5.

    torch's test writes the keyword as ``out``, which torch 2.13's own shape wrapper no longer
    accepts (it passes ``out_shape``): ported with ``out_shape``. A 5-FLOP add cannot be matrix
    work (2 FLOPs per MAC), so it is registered as ``kind="other"``: other_flops == 5.
    """
    formula = OpFormula(lambda *args, out_shape: 5, kind="other")

    def run():
        a = T(4, 5)
        a + a

    r = counted(run, custom_mapping={torch.ops.aten.add: formula})
    assert r.other_flops == 5 and r.flops == 0


def test_noop():
    """torch: only checks ``cos`` runs; steelyard counts it as 1 elementwise FLOP per element."""
    r = counted(lambda: T(4, 5).cos())
    assert r.flops == 0 and r.other_flops_by_category == {"elementwise": 20}


def _sdpa_flops(b, h, lq, lk, e, ev, backward: bool) -> int:
    q = torch.randn(b, h, lq, e, requires_grad=backward)
    k = torch.randn(b, h, lk, e, requires_grad=backward)
    v = torch.randn(b, h, lk, ev, requires_grad=backward)

    def run():
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=0, is_causal=True)
        if backward:
            out.sum().backward()

    return counted(run).flops


def test_sdpa():
    """torch (CUDA only there; steelyard counts SDPA from shapes on every device, so on CPU here).

    Forward: 134217728 (uniform) and 268435456 (Lq=128, Lk=256, same head dims), whatever the
    backend, causal counted over the full score matrix in both. Forward + backward, math backend:
    3x the forward (805306368 non-uniform). torch counts the flash / memory-efficient backward as
    2.5 forwards (it recomputes Q·Kᵀ: fw+bw = 3.5x, 939524096); steelyard counts the algorithm's
    four backward matmuls on every backend: 2 forwards, fw+bw = 3x.
    """
    b, h, lq, lk, e = 4, 8, 128, 256, 64
    uniform = _sdpa_flops(b, h, lq, lq, e, e, backward=False)
    assert uniform == 134217728
    assert _sdpa_flops(b, h, lq, lq, e, e, backward=True) == 3 * uniform
    nonuniform = _sdpa_flops(b, h, lq, lk, e, e, backward=False)
    assert nonuniform == 268435456
    assert _sdpa_flops(b, h, lq, lk, e, e, backward=True) == 805306368
    torch_flash_fw_bw = 939524096
    assert torch_flash_fw_bw == nonuniform * 7 // 2  # torch's flash number, for the record
