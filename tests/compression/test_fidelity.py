"""Output fidelity between an original and a compressed model's outputs: closed forms on planted noise."""

from __future__ import annotations

import math

import torch

from steelyard.compression.fidelity import compare_outputs


def test_cosine_of_millions_of_logits_matches_its_closed_form_and_never_exceeds_one():
    # b = a + noise with std 1/16 of a's: cos = 1 / sqrt(1 + (1/16)^2) in expectation. float32 sums over
    # 16 M values drifted (a cosine of 1.027 was printed for an int4 decoder); float64 does not.
    torch.manual_seed(0)
    a = torch.randn(16, 128, 8192) * 8
    b = a + torch.randn_like(a) * 0.5
    fid = compare_outputs({"logits": a}, {"logits": b}, "causal-lm")
    assert abs(fid.cosine - 1 / math.sqrt(1 + (0.5 / 8) ** 2)) < 2e-4
    assert compare_outputs({"logits": a}, {"logits": a.clone()}, "causal-lm").cosine <= 1.0 + 1e-12
