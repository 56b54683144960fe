"""fvcore's ``tests/test_flop_count.py`` and ``tests/test_jit_model_analysis.py`` ported to steelyard.

Each test keeps the source test's name (``test_<fvcore name>``; ``TestFlopCountHandles`` cases are
prefixed ``test_handles_``). fvcore's "flops" are MACs (one multiply-add = 1), so fvcore numbers are
compared with steelyard's MACs. fvcore names ops after the traced aten op (``addmm``/``linear``,
``conv``, ``matmul``, ``einsum``); steelyard names them after the dispatched op (``addmm``,
``convolution``, ``mm``, ``bmm``), mapped explicitly below. steelyard attributes by the module call
stack, which is fvcore's ``ancestor_mode("caller")``. Deliberate differences (normalisation per
element, upsampling, ops fvcore skips) are tested at steelyard's number with fvcore's beside it.

Not ported: ``test_copy`` and ``test_disable_warnings`` exercise fvcore's analyzer API (``copy``,
tracer / warning switches), which has no counterpart; their counts are the ones tested below.
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from steelyard.profiling import op_table
from steelyard.profiling.counter import ROOT, CostCounter, CountResult
from steelyard.profiling.op_table_custom import OpFormula

aten = torch.ops.aten
LIN = "addmm"  # nn.Linear on 2-D input under no_grad dispatches aten.addmm
CONV = "convolution"


def flop_count(model: nn.Module, inputs: tuple, **options) -> CountResult:
    with torch.no_grad(), CostCounter(model, **options) as c:
        model(*inputs)
    return c.result


# -- test_flop_count.py: models --------------------------------------------------------------
class ThreeNet(nn.Module):
    def __init__(self, input_dim: int, conv_dim: int, linear_dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(input_dim, conv_dim, 1, 1)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.linear1 = nn.Linear(conv_dim, linear_dim)
        self.linear2 = nn.Linear(linear_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.conv(x))
        return self.linear2(self.linear1(torch.flatten(x, 1)))


class CustomNet(nn.Module):
    def __init__(self, input_dim: int, output_dim: int) -> None:
        super().__init__()
        self.conv = nn.Linear(input_dim, output_dim)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sigmoid(self.conv(x))


def _conv_net(dim: int, cin: int, cout: int, k: int, stride: int, padding: int, groups: int,
              transpose: bool = False, output_padding: int = 0) -> nn.Module:
    layers = [nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d] if transpose else [nn.Conv1d, nn.Conv2d,
                                                                                              nn.Conv3d]
    extra = {"output_padding": output_padding} if transpose else {}
    return layers[dim - 1](cin, cout, k, stride, padding, groups=groups, **extra)


def test_customized_ops():
    """fvcore: a sigmoid handle returning 10000 and an addmm handle returning 400000 are used as is.

    fvcore handles return MACs; steelyard formulas return FLOPs (torch's convention), so the
    ported handles return 2x and the MACs match fvcore's numbers.
    """
    net, x = CustomNet(5, 4), torch.rand(10, 5)
    r = flop_count(net, (x,), custom_mapping={aten.sigmoid: lambda *a, out_shape=None, **k: 2 * 10000})
    assert r.ops["sigmoid"].macs == 10000
    r = flop_count(net, (x,), custom_mapping={aten.addmm: lambda *a, out_shape=None, **k: 2 * 400000})
    assert r.ops[LIN].macs == 400000 and r.macs == 400000


def test_nn():
    """fvcore: nn.Linear(8, 4) on 5 rows = 5·8·4."""
    r = flop_count(nn.Linear(8, 4), (torch.randn(5, 8),))
    assert r.by_operator() == {LIN: 5 * 8 * 4}


def test_skip_ops():
    """fvcore skips ``aten::sigmoid`` (1 call); steelyard prices it as 1 elementwise FLOP per element."""
    r = flop_count(CustomNet(5, 4), (torch.rand(10, 5),))
    assert r.uncounted == {}
    assert r.ops["sigmoid"].other_flops == 10 * 4


def test_linear():
    """fvcore: 5·10·20; with an extra input dim (aten::linear traces) 5·5·10·20."""
    net = nn.Linear(10, 20)
    assert flop_count(net, (torch.randn(5, 10),)).macs == 5 * 10 * 20
    r = flop_count(net, (torch.randn(5, 5, 10),))
    assert r.macs == 5 * 5 * 10 * 20


CONV_CASES = [  # (dim, batch, cin, cout, spatial, k, padding, stride, groups, transpose, output_padding)
    (2, 5, 10, 3, 15, 3, 1, 1, 1, False, 0),
    (2, 2, 10, 6, 20, 3, 1, 2, 1, False, 0),
    (2, 5, 16, 8, 15, 5, 2, 1, 4, False, 0),
    (2, 5, 16, 8, 15, 3, 1, 1, 8, False, 0),
    (1, 5, 10, 3, 15, 3, 1, 1, 1, False, 0),
    (3, 5, 10, 3, 15, 3, 1, 1, 1, False, 0),
    (2, 5, 10, 3, 15, 3, 1, 1, 1, True, 0),
    (2, 5, 10, 3, 15, 3, 1, 2, 1, True, 0),
    (2, 5, 10, 3, 15, 3, 1, 3, 1, True, 2),
]


@pytest.mark.parametrize(("dim", "batch", "cin", "cout", "spatial", "k", "padding", "stride", "groups",
                          "transpose", "output_padding"), CONV_CASES)
def test_conv(dim, batch, cin, cout, spatial, k, padding, stride, groups, transpose, output_padding):
    """fvcore: batch·cin·cout·k^d·out^d / groups, out = input size for transposed convolutions."""
    net = _conv_net(dim, cin, cout, k, stride, padding, groups, transpose, output_padding)
    x = torch.randn(batch, cin, *([spatial] * dim))
    size = spatial if transpose else (spatial + 2 * padding - k) // stride + 1
    gt = batch * cin * cout * k**dim * size**dim // groups
    r = flop_count(net, (x,))
    assert r.macs_by_category == {"conv": gt}


def test_matmul():
    """fvcore: (20, 10) @ (10, 100) = 20·10·100."""
    r = flop_count(_Lambda(torch.matmul), (torch.randn(20, 10), torch.randn(10, 100)))
    assert r.macs == 20 * 10 * 100


@pytest.mark.parametrize(("a", "b", "gt"), [
    ((1, 20, 10), (1, 10, 100), 20 * 10 * 100),
    ((2, 2, 20, 10), (2, 2, 10, 100), 4 * 20 * 10 * 100),
    ((1, 20, 10), (10, 100), 20 * 10 * 100),
    ((2, 20, 10), (10, 100), 2 * 20 * 10 * 100),
])
def test_matmul_broadcast(a, b, gt):
    """fvcore: broadcast matmuls count batch·m·n·p."""
    assert flop_count(_Lambda(torch.matmul), (torch.randn(*a), torch.randn(*b))).macs == gt


def test_bmm():
    """fvcore: (2, 5, 2) bmm (2, 2, 12) = n·t·p·c = 240."""
    r = flop_count(_Lambda(torch.bmm), (torch.randn(2, 5, 2), torch.randn(2, 2, 12)))
    assert r.by_operator() == {"bmm": 2 * 2 * 12 * 5}


@pytest.mark.parametrize(("equation", "a", "b", "gt"), [
    ("nct,ncp->ntp", (1, 5, 2), (1, 5, 12), 1 * 2 * 12 * 5),
    ("ntg,ncg->nct", (1, 2, 6), (1, 5, 6), 1 * 2 * 6 * 5),
])
def test_einsum(equation, a, b, gt):
    """fvcore: einsum counted as the contraction it is."""
    net = _Lambda(lambda x, y: torch.einsum(equation, x, y))
    assert flop_count(net, (torch.randn(*a), torch.randn(*b))).macs == gt


@pytest.mark.parametrize(("norm", "shape", "fvcore_per_element"), [
    (nn.BatchNorm1d(10, affine=False).eval(), (10, 10), 1),
    (nn.BatchNorm2d(10, affine=False), (10, 10, 5, 5), 4),
    (nn.BatchNorm3d(10, affine=False), (10, 10, 5, 5, 5), 4),
])
def test_batchnorm(norm, shape, fvcore_per_element):
    """fvcore: 1 per element in eval (running stats), 4 in training, +1 with affine. steelyard counts
    every normalisation as NORM_FLOPS_PER_ELEMENT = 5 other FLOPs per element (mean, subtract,
    variance, normalise, affine), whatever the mode, and no MACs."""
    x = torch.randn(*shape)
    r = flop_count(norm, (x,))
    assert r.macs == 0
    assert r.other_flops_by_category["normalization"] == op_table.NORM_FLOPS_PER_ELEMENT * x.numel()
    # in training mode the module also bumps num_batches_tracked: one elementwise add
    assert r.other_flops_by_category.get("elementwise", 0) == int(norm.training)
    assert fvcore_per_element < op_table.NORM_FLOPS_PER_ELEMENT


def test_threeNet():
    """fvcore: conv 4000, linear 60 + 12, adaptive_avg_pool2d 2000 (1 per input element). steelyard: the
    same MACs, and the pool as 2000 reduction FLOPs (1 per input element too)."""
    x = torch.randn(4, 2, 10, 10)
    r = flop_count(ThreeNet(2, 5, 3), (x,))
    assert r.macs_by_category == {"conv": 4 * 5 * 2 * 10 * 10, "matmul": 4 * 5 * 3 + 4 * 3 * 1}
    assert r.other_flops_by_category["reduction"] == 4 * 5 * 10 * 10


def test_flop_counter_class():
    """fvcore ``by_module``: conv 4000, linear1 60, linear2 12, pool 2000, "" their sum. steelyard's
    by_module is in MACs, so the pool's 2000 (not multiply-adds) is in its other FLOPs."""
    r = flop_count(ThreeNet(2, 5, 3), (torch.randn(4, 2, 10, 10),))
    assert r.by_module() == {ROOT: 4000 + 60 + 12, "conv": 4000, "pool": 0, "linear1": 60, "linear2": 12}
    assert r.inclusive["pool"].other_flops == 4000 // 2


# -- test_flop_count.py: TestFlopCountHandles --------------------------------------------------
@pytest.mark.parametrize(("args", "fvcore"), [
    ((torch.rand(2), torch.rand(2), torch.rand(2), torch.rand(2)), 32),
    ((torch.rand(2), torch.rand(2), None, None), 16),
    ((torch.rand(2), torch.rand(2), torch.rand(2), torch.rand(2), True), 80),
])
def test_handles_batch_norm(args, fvcore):
    """fvcore: 32 / 16 / 80 for (2, 2, 2, 2) by affine and training; steelyard: 5·16 = 80 always."""
    r = flop_count(_Lambda(lambda x: F.batch_norm(x, *args)), (torch.rand(2, 2, 2, 2),))
    assert r.other_flops == 5 * 16
    assert fvcore in (32, 16, 80)


@pytest.mark.parametrize(("affine", "fvcore"), [(True, 80), (False, 64)])
def test_handles_group_norm(affine, fvcore):
    """fvcore: 80 with affine, 64 without, for (2, 2, 2, 2); steelyard: 5·16 = 80 either way."""
    weights = (torch.rand(2), torch.rand(2)) if affine else (None, None)
    r = flop_count(_Lambda(lambda x: F.group_norm(x, 2, *weights)), (torch.rand(2, 2, 2, 2),))
    assert r.other_flops == 80
    assert fvcore <= r.other_flops


def test_handles_upsample():
    """fvcore: 2⁴·4·4 = 256 (4 taps per output element, as MACs). steelyard: the same 4 taps at
    2 FLOPs each (one multiply-add), 512 other FLOPs: exactly 2x fvcore."""
    r = flop_count(_Lambda(lambda x: F.interpolate(x, None, 2, "bilinear", False)), (torch.rand(2, 2, 2, 2),))
    fvcore = 2**4 * 4 * 4
    assert r.other_flops_by_category == {"interpolation": 2 * fvcore}


def test_handles_complicated_einsum():
    """fvcore: "nc,nchw->hw" on (3, 4), (3, 4, 2, 3) = 72."""
    net = _Lambda(lambda a, b: torch.einsum("nc,nchw->hw", a, b))
    assert flop_count(net, (torch.rand(3, 4), torch.rand(3, 4, 2, 3))).macs == 72


@pytest.mark.parametrize("func", [torch.mm, torch.matmul])
def test_handles_torch_mm(func):
    """fvcore: (3, 4) @ (4, 5) = 60 for both aten::mm and aten::matmul."""
    assert flop_count(_Lambda(func), (torch.rand(3, 4), torch.rand(4, 5))).macs == 60


class _Lambda(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)


# -- test_jit_model_analysis.py: models --------------------------------------------------------
class NestedNetInnerModule(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2, 2, kernel_size=1)
        self.fc = nn.Linear(10, 10)
        fc, conv = Counter({LIN: 10 * 10}), Counter({CONV: 5 * 1 * 2 * 2})
        self.flops = {"": conv + fc, "fc": fc, "conv": conv}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x.reshape(-1, 2, 5))
        return 3 * self.fc(torch.flatten(x, 1)) + 1


class NestedNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.input_size = (4, 5)
        self.submod = NestedNetInnerModule()
        self.fc = nn.Linear(20, 10)
        self.conv = nn.Conv1d(4, 4, kernel_size=3, padding=1)
        fc, conv = Counter({LIN: 20 * 10}), Counter({CONV: 5 * 3 * 4 * 4})
        self.flops = {
            "": conv + fc + self.submod.flops[""],
            "fc": fc,
            "conv": conv,
            "submod": self.submod.flops[""],
            "submod.fc": self.submod.flops["fc"],
            "submod.conv": self.submod.flops["conv"],
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc(torch.flatten(self.conv(x), 1))
        return self.submod(x) ** 2


class UnusedNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.unused = nn.Linear(10, 10), nn.Linear(10, 1), nn.Linear(20, 20)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class RepeatedNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(10, 10), nn.Linear(10, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(3):
            x = self.fc1(x)
        for _ in range(2):
            x = self.fc2(x)
        return x


class NonForwardInnerModule(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(10, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def other_func(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class NonForwardNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.submod, self.fc = NonForwardInnerModule(), nn.Linear(10, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.submod.other_func(self.fc(x))


class SharedInnerModule(nn.Module):
    def __init__(self, submod: nn.Module) -> None:
        super().__init__()
        self.submod = submod

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.submod(x)


class SharedModuleNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        inner = nn.Linear(10, 10)
        self.submod1, self.submod2 = SharedInnerModule(inner), SharedInnerModule(inner)
        multiname = nn.Linear(10, 1)
        self.multiname1, self.multiname2 = multiname, multiname

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.submod1(x) + self.submod2(x)
        return self.multiname1(x) + self.multiname2(x)


class RecursiveScopeNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(10, 1)

    def forward(self, x: torch.Tensor, count: int = 3) -> torch.Tensor:
        if count > 0:
            return self(x, count - 1)
        return self.fc(x)


def _nested() -> tuple[NestedNet, CountResult]:
    model = NestedNet()
    return model, flop_count(model, (torch.randn(1, 4, 5),))


def test_total():
    """fvcore ``total(name)`` for every module of NestedNet (total 560)."""
    model, r = _nested()
    for name, counts in model.flops.items():
        assert r.total(name) == sum(counts.values()), name
    assert r.total() == 560


def test_by_module():
    model, r = _nested()
    assert r.by_module() == {name: sum(c.values()) for name, c in model.flops.items()}


def test_by_operator():
    model, r = _nested()
    for name, counts in model.flops.items():
        assert r.by_operator(name) == dict(counts), name


def test_by_module_and_operator():
    model, r = _nested()
    assert r.by_module_and_operator() == {name: dict(c) for name, c in model.flops.items()}


def test_unused_module():
    """fvcore: the unused module totals 0 with no operators, the model 110, and it is uncalled."""
    r = flop_count(UnusedNet(), (torch.randn(1, 10),))
    assert r.total("unused") == 0 and r.by_operator("unused") == {}
    assert r.total() == 100 + 10
    assert r.uncalled_modules() == {"unused"}


def test_repeated_module():
    """fvcore: fc1 called 3x (300), fc2 2x (200), total 500."""
    r = flop_count(RepeatedNet(), (torch.randn(1, 10),))
    assert (r.total("fc1"), r.total("fc2"), r.total()) == (300, 200, 500)
    assert r.by_operator("fc1") == {LIN: 300}
    assert r.uncalled_modules() == set()


def test_non_forward_func_call():
    """fvcore, caller mode: submod 0, submod.fc 10, total 110, submod uncalled. fvcore's owner mode
    (submod 10) has no steelyard counterpart: rows follow the forward call stack."""
    r = flop_count(NonForwardNet(), (torch.randn(1, 10),))
    assert (r.total("submod"), r.total("submod.fc"), r.total()) == (0, 10, 110)
    assert r.uncalled_modules() == {"submod"}


def test_shared_module():
    """fvcore, caller mode: shared modules keep their first name; other names are aliases."""
    r = flop_count(SharedModuleNet(), (torch.randn(1, 10),))
    assert r.by_module() == {"": 220, "submod1": 100, "submod1.submod": 200, "submod2": 100, "multiname1": 20}
    assert r.total("submod2.submod") == r.total("submod1.submod") == 200
    assert r.total("multiname2") == r.total("multiname1") == 20
    assert r.canonical_module_name("multiname2") == "multiname1"
    assert r.canonical_module_name("multiname1") == "multiname1"
    assert r.canonical_module_name("submod2.submod") == "submod1.submod"
    assert r.canonical_module_name("submod1.submod") == "submod1.submod"
    assert r.uncalled_modules() == set()


def test_recursive_scope():
    """fvcore: an op under the same module several times counts once: total 10, fc 10."""
    r = flop_count(RecursiveScopeNet(), (torch.randn(1, 10),))
    assert r.total() == r.total("fc") == 10
    assert r.uncalled_modules() == set()


def test_data_parallel():
    """fvcore: DataParallel prefixes every name with "module."; "" stays the total."""
    model = NestedNet()
    flops = {("module." + n if n else "module"): dict(c) for n, c in model.flops.items()}
    flops[""] = dict(model.flops[""])
    r = flop_count(nn.DataParallel(model).cpu(), (torch.randn(1, 4, 5),))
    for name, counts in flops.items():
        assert r.total(name) == sum(counts.values()), name
    assert r.by_module_and_operator() == flops
    assert r.uncalled_modules() == set()


def test_unsupported_ops():
    """fvcore (with only linear handles) skips aten::_convolution, add, mul (submod) and pow (root).
    steelyard prices them all, so nothing is uncounted: the elementwise ops and the bias adds are
    other FLOPs (1 per element: submod's 3·fc + 1 on (1, 10), the root's ** 2 on (1, 10))."""
    r = flop_count(NestedNet(), (torch.randn(1, 4, 5),))
    assert r.uncounted == {}
    assert dict(r.inclusive["submod"].other_flops_by_op) == {"mul": 10, "add": 10, LIN: 10, CONV: 2 * 5}
    assert r.inclusive[ROOT].other_flops_by_op["pow"] == 10


def test_changing_handles():
    """fvcore: overriding the linear handle with one returning ``1000 * 2`` puts 1000 per call under
    every module that calls a Linear; clearing handles leaves every module empty. Ported: a formula
    returning 2000 FLOPs = 1000 MACs per call, and ``ignore=`` for the cleared handles."""
    model = NestedNet()
    x = (torch.randn(1, 4, 5),)
    r = flop_count(model, x, custom_mapping={aten.addmm: OpFormula(lambda *a, out_shape=None, **k: 1000 * 2,
                                                                    category="dummy")})
    expected = {name: {op: n for op, n in c.items() if op != LIN} for name, c in model.flops.items()}
    for name, calls in {"": 2, "fc": 1, "submod": 1, "submod.fc": 1}.items():
        expected[name][LIN] = 1000 * calls
    assert r.by_module_and_operator() == expected
    cleared = flop_count(model, x, ignore=[aten.addmm, aten.convolution])
    assert cleared.by_module_and_operator() == {name: {} for name in model.flops}
    assert cleared.ignored == {LIN: 2, CONV: 2}


def test_skip_uncalled_containers_warnings():
    """fvcore: a ModuleList that is only indexed is not reported as never called."""

    class A(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.submod = nn.ModuleList([nn.Linear(3, 3)])

        def forward(self, x):
            return self.submod[0](x) + 1

    r = flop_count(A(), (torch.rand(1, 3),))
    assert r.uncalled_modules() == set()
    assert r.total("submod.0") == 9
