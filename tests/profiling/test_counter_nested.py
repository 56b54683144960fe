"""Jagged nested tensors (``layout=torch.jagged``) in the counter: counted from the real lengths.

Their shapes hold a symbolic nested int (``j1``) that no formula can multiply; the counter used to
crash on it (``ValueError: unsupported: NestedIntNode``). Plain ops on a jagged tensor now defer to
its own dispatch, whose dense ops on the values are counted; attention is counted per sequence.
(``inference_mode`` is not tested: torch's jagged SDPA fails there with or without the counter.)
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from steelyard.profiling.counter import CostCounter

H, E = 2, 8
LENGTHS = [3, 5, 2]


def jagged(lengths: list[int], *tail: int, device: str = "cpu") -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.nested.nested_tensor([torch.randn(n, *tail, device=device) for n in lengths], layout=torch.jagged)


def test_sdpa_on_jagged_tensors_counts_each_sequence():
    q = jagged(LENGTHS, H, E).transpose(1, 2)  # (B, H, j, E)
    with torch.no_grad(), CostCounter() as c:
        out = F.scaled_dot_product_attention(q, q, q)
    assert out.is_nested
    scores = sum(H * n * n for n in LENGTHS)
    assert c.result.macs == scores * (E + E)
    assert c.result.macs_by_category == {"attention": scores * 2 * E}
    assert c.result.other_flops_by_category == {"softmax": 5 * scores}
    assert c.result.uncounted == {}


def test_linear_on_jagged_tensor_counts_the_real_rows():
    lin = nn.Linear(E, 4)
    x = jagged(LENGTHS, E)
    with torch.no_grad(), CostCounter(lin) as c:
        lin(x)
    rows = sum(LENGTHS)
    assert c.result.macs == rows * E * 4
    assert c.result.other_flops_by_category == {"elementwise": rows * 4}  # bias add
    assert c.result.uncounted == {}


def test_jagged_attention_with_unmaterialised_lengths_is_uncounted_with_a_note():
    """On meta the offsets hold no numbers. torch's jagged SDPA cannot run on meta here (autocast has
    no meta dispatch key), so the counter's attention record is fed the meta inputs directly."""
    values = torch.empty(sum(LENGTHS), H, E, device="meta")
    offsets = torch.tensor([0, 3, 8, 10], device="meta")
    q = torch.nested.nested_tensor_from_jagged(values, offsets).transpose(1, 2)
    counter = CostCounter()
    with counter:
        counter.record_attention((q, q, q), {}, q)
    assert counter.result.uncounted == {"scaled_dot_product_attention": 1}
    assert "not materialised" in counter.result.notes["scaled_dot_product_attention"]
    assert counter.result.macs == 0
    assert counter.result.bytes_moved == 4 * values.numel() * 4  # q, k, v and the output's values
