"""The loss functions the training objectives are built from (pure functions of tensors).

- ``next_token_loss``: mean next-token NLL of a causal LM over the predicted tokens (labels shifted
  by one, padding marked -100 left out), the loss transformers computes for ``labels=input_ids``.
- The distillation terms: soft-label KL (Hinton et al., 2015) and hidden-state matching.

``distillation_loss`` = α · CE(student, labels) + (1 − α) · T² · KL(p_T ‖ q_T), where
``p_T = softmax(teacher / T)`` and ``q_T = softmax(student / T)``. The gradient of the soft term
scales as 1/T², so the T² factor keeps its weight against the hard term the same whatever the
temperature (Hinton et al., §2). The KL is summed over classes and averaged over the batch
("batchmean"), which is the true KL per example; torch's default "mean" would also divide by
the number of classes. For a causal LM (``next_token_soft_loss``) the "examples" are the predicted
positions: the KL between the teacher's and the student's next-token distributions at each position
whose next token is not padding, averaged over those positions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from steelyard.evaluation.adapters import lm_token_nll

#: Label of a position that is not predicted (padding), as transformers and torch's ``ignore_index`` use.
IGNORE = -100


def next_token_labels(input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The inputs as their own targets, with padding positions (mask 0) set to :data:`IGNORE`."""
    if attention_mask is None:
        return input_ids
    return input_ids.masked_fill(attention_mask == 0, IGNORE)


def next_token_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean NLL of token ``t + 1`` given tokens ``≤ t``, over every position whose label is not ignored.

    Each predicted token weighs the same whatever the length of its sequence (a sum over the batch
    divided by the token count, not a mean of per-sequence means).
    """
    nll, count = lm_token_nll(logits, labels)
    return nll.sum() / count.sum().clamp(min=1)


def soft_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T² · KL(softmax(teacher/T) ‖ softmax(student/T)), averaged over the batch."""
    t = float(temperature)
    log_q = F.log_softmax(student_logits.float() / t, dim=-1)
    log_p = F.log_softmax(teacher_logits.float() / t, dim=-1)
    return (t * t) * F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)


def next_token_soft_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, temperature: float
) -> torch.Tensor:
    """T² · KL(softmax(teacher/T) ‖ softmax(student/T)) over a causal LM's vocabulary, averaged over
    the predicted positions: the logits at ``t`` predict token ``t + 1``, and a position whose next
    label is :data:`IGNORE` (padding) is left out, as :func:`next_token_loss` leaves it out."""
    valid = labels[:, 1:] != IGNORE
    if not bool(valid.any()):
        return student_logits.float().sum() * 0.0  # nothing predicted in this batch: no signal, no NaN
    return soft_loss(student_logits[:, :-1][valid], teacher_logits[:, :-1][valid], temperature)


def mix(hard: torch.Tensor, soft: torch.Tensor, alpha: float) -> torch.Tensor:
    """α · hard + (1 − α) · soft; a weight of 0 drops its term (so a NaN there cannot leak in)."""
    if alpha >= 1.0:
        return hard
    if alpha <= 0.0:
        return soft
    return alpha * hard + (1.0 - alpha) * soft


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    alpha: float,
    temperature: float,
) -> torch.Tensor:
    """α · cross-entropy(student, labels) + (1 − α) · T² · KL(softmax(teacher/T) ‖ softmax(student/T)).

    α = 1 is plain fine-tuning on the labels; α = 0 learns from the teacher alone.
    """
    hard = F.cross_entropy(student_logits.float(), labels)
    return mix(hard, soft_loss(student_logits, teacher_logits, temperature), alpha)


def hidden_state_loss(
    student_states: Sequence[torch.Tensor],
    teacher_states: Sequence[torch.Tensor],
    mask: torch.Tensor | None = None,
    projection: torch.nn.Module | None = None,
) -> torch.Tensor:
    """Mean over layer pairs of the MSE between (projected) student and teacher hidden states.

    ``student_states[i]`` is matched with ``teacher_states[i]`` (the caller pairs the layers).
    With an attention ``mask`` (batch, seq) padding positions are left out, so the loss does not
    depend on how a batch happened to be padded. Image models' states (no mask) are used whole.
    """
    if len(student_states) != len(teacher_states) or not student_states:
        raise ValueError(f"cannot match {len(student_states)} student states with {len(teacher_states)} teacher ones")
    total = student_states[0].new_zeros((), dtype=torch.float32)
    for s, t in zip(student_states, teacher_states, strict=True):
        s = projection(s) if projection is not None else s
        sq = (s.float() - t.float()).pow(2)
        if mask is not None and sq.dim() == 3 and mask.shape == sq.shape[:2]:
            m = mask.to(sq.dtype).unsqueeze(-1)
            total = total + (sq * m).sum() / (m.sum() * sq.shape[-1]).clamp(min=1)
        else:
            total = total + sq.mean()
    return total / len(student_states)
