"""Distillation of a causal LM on its teacher's logits, in closed form (training a tiny Llama:
tests/compression/test_llm_recovery.py, beside the LLM toys)."""

from __future__ import annotations

import math

import pytest
import torch

from steelyard.training.losses import next_token_soft_loss
from steelyard.training.objectives import LogitDistillation


def _softmax(xs: list[float], t: float) -> list[float]:
    e = [math.exp(x / t) for x in xs]
    return [v / sum(e) for v in e]


def test_the_causal_loss_is_the_hand_computed_mix_of_next_token_nll_and_kl_over_predicted_positions():
    # Two-token vocabulary, one sequence of 3 positions whose last is padding: positions 0 and 1 predict
    # tokens 1 and 2, but token 2 is padding, so only position 0 counts (and position 2 predicts nothing).
    student = torch.tensor([[[0.3, -0.4], [2.0, 1.0], [5.0, -5.0]]])
    teacher = torch.tensor([[[1.2, 0.1], [-3.0, 3.0], [-5.0, 5.0]]])
    batch = {"input_ids": torch.tensor([[0, 1, 0]]), "attention_mask": torch.tensor([[1, 1, 0]])}
    t, alpha = 2.0, 0.25
    p, q = _softmax([1.2, 0.1], t), _softmax([0.3, -0.4], t)
    kl = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
    nll = -math.log(_softmax([0.3, -0.4], 1.0)[1])  # the token at position 1 is id 1
    expected = alpha * nll + (1 - alpha) * t * t * kl
    got = LogitDistillation(torch.nn.Identity(), alpha, t, causal=True).term(student, teacher, batch)
    assert float(got) == pytest.approx(expected, rel=1e-5)
    # the batch's labels (the LM adapter marks padding -100) give the same, and a teacher equal to the student 0 KL
    labelled = {**batch, "labels": torch.tensor([[0, 1, -100]])}
    assert float(LogitDistillation(torch.nn.Identity(), alpha, t, causal=True).term(student, teacher, labelled)) == (
        pytest.approx(expected, rel=1e-5))
    assert float(next_token_soft_loss(student, student, labelled["labels"], t)) == pytest.approx(0.0, abs=1e-7)
    # a batch of padding only predicts nothing: a zero loss, not NaN
    assert float(next_token_soft_loss(student, teacher, torch.full((1, 3), -100), t)) == 0.0
