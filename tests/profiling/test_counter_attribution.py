"""Module attribution: backward work goes to the module whose forward created it; inclusive rows,
per-operator breakdowns and alias names for shared modules (fvcore's ``by_module_and_operator``).
"""

from __future__ import annotations

import torch
from torch import nn

from steelyard.profiling.counter import ROOT, CostCounter


def test_backward_work_lands_on_the_forward_module_not_the_root():
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    x = torch.randn(5, 8, requires_grad=True)
    with CostCounter(net) as c:
        net(x).sum().backward()
    r = c.result
    # forward addmm + grad_input mm + grad_weight mm, each 5·in·out MACs, on the layer's own row
    assert r.modules["0"].macs_by_op == {"addmm": 5 * 8 * 16, "mm": 2 * 5 * 8 * 16}
    assert r.modules["2"].macs_by_op == {"addmm": 5 * 16 * 4, "mm": 2 * 5 * 16 * 4}
    assert r.modules[ROOT].macs == 0
    assert sum(m.macs for m in r.modules.values()) == r.macs == 3 * 5 * (8 * 16 + 16 * 4)
    assert r.by_module() == {ROOT: r.macs, "0": 3 * 5 * 8 * 16, "1": 0, "2": 3 * 5 * 16 * 4}


def test_backward_of_a_composite_call_is_attributed_whole():
    """einsum creates several autograd nodes in one call: all of them belong to the caller."""

    class Mix(nn.Module):
        def forward(self, a, b):
            return torch.einsum("bij,bjk->bik", a, b)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.mix = Mix()

        def forward(self, a, b):
            return self.mix(a, b)

    net = Net()
    a, b = torch.randn(2, 3, 4, requires_grad=True), torch.randn(2, 4, 5, requires_grad=True)
    with CostCounter(net) as c:
        net(a, b).sum().backward()
    assert c.result.modules["mix"].macs == 3 * 2 * 3 * 4 * 5
    assert c.result.modules[ROOT].macs == 0


def test_shared_module_aliases_resolve_to_the_canonical_name():
    shared = nn.Linear(4, 4)
    net = nn.ModuleDict({"a": shared, "b": shared})
    with torch.no_grad(), CostCounter(net) as c:
        net["a"](torch.randn(1, 4))
        net["b"](torch.randn(1, 4))
    r = c.result
    assert r.aliases == {"b": "a"}
    assert r.canonical_module_name("b") == "a"
    assert r.total("a") == r.total("b") == 2 * 16
    assert r.module_names == ["a"]
