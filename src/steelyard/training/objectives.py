"""What the trainer minimises: small objects the loop calls once per batch.

An objective has ``loss(model, batch) -> tensor`` and ``modules()``, the trainable modules it
owns besides the model (a projection onto a teacher's width); the loop puts those in the
optimizer and, under DDP, in the wrapped module so their gradients are averaged too. ``model``
is a :class:`Forward`: ``model(batch)`` runs the trained model (DDP-wrapped or not) on a
batch's inputs, keeping the batch's ``labels`` and ``_``-prefixed targets away from it.

- :class:`CrossEntropy`: classification on the labels.
- :class:`NextToken`: causal language modelling (labels shifted by one, padding ignored).
- :class:`LogitDistillation`: α·CE + (1 − α)·T²·KL against a teacher's logits, read from the
  batch when they were cached (:data:`TEACHER_KEY`) or computed by the teacher on the batch; for a
  causal LM (``causal``) the CE is the next-token NLL and the KL is taken per predicted position.
- :class:`HiddenStateMatching`: MSE between student and teacher hidden states through a
  learned projection, optionally plus a logit-distillation term from the same two forwards.

A new objective (a regression loss, a penalty) is one small class with these two methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from steelyard.errors import ConfigError
from steelyard.evaluation.adapters import Batch, call_model, logits_of
from steelyard.training.losses import (
    hidden_state_loss,
    mix,
    next_token_labels,
    next_token_loss,
    next_token_soft_loss,
    soft_loss,
)

#: Batch key of cached teacher logits (a leading "_" keeps it away from the model's inputs).
TEACHER_KEY = "_teacher_logits"


def model_inputs(batch: Batch) -> dict[str, torch.Tensor]:
    """A batch without its targets: what a model is called with."""
    return {k: v for k, v in batch.items() if k != "labels" and not k.startswith("_")}


@dataclass
class Forward:
    """The model an objective trains, callable on a whole batch."""

    module: nn.Module
    positional: bool = False

    def __call__(self, batch: Batch, **kwargs: Any) -> Any:
        if not kwargs:
            return call_model(self.module, batch, self.positional)
        if self.positional:
            raise ConfigError("this model takes positional inputs and cannot be asked for extra outputs")
        return self.module(**model_inputs(batch), **kwargs)


class Objective(Protocol):
    """The loss the loop minimises, and the extra trainable modules it owns."""

    def loss(self, model: Forward, batch: Batch) -> torch.Tensor: ...

    def modules(self) -> list[nn.Module]: ...


@dataclass
class CrossEntropy:
    """Cross-entropy of the model's logits against the batch's class labels."""

    def loss(self, model: Forward, batch: Batch) -> torch.Tensor:
        return F.cross_entropy(logits_of(model(batch)).float(), batch["labels"])

    def modules(self) -> list[nn.Module]:
        return []


@dataclass
class NextToken:
    """Next-token NLL of a causal LM, averaged over predicted tokens.

    The targets are the batch's ``labels`` (the LM adapter marks padding -100), or else the input
    ids with the positions the attention mask hides ignored; logits at position ``t`` are scored
    against the token at ``t + 1``.
    """

    def loss(self, model: Forward, batch: Batch) -> torch.Tensor:
        return next_token_loss(logits_of(model(batch)), lm_labels(batch))

    def modules(self) -> list[nn.Module]:
        return []


def lm_labels(batch: Batch) -> torch.Tensor:
    """A causal-LM batch's targets: its ``labels``, else its input ids with the masked positions ignored."""
    labels = batch.get("labels")
    if labels is None:
        labels = next_token_labels(batch["input_ids"], batch.get("attention_mask"))
    return labels


def task_objective(kind: str) -> Objective:
    """The plain objective of an adapter kind: next-token for ``"lm"``, cross-entropy otherwise."""
    return NextToken() if kind == "lm" else CrossEntropy()


def teacher_forward(teacher: nn.Module, model: Forward, batch: Batch, **kwargs: Any) -> Any:
    """The (frozen) teacher on the batch the student sees, without building a graph."""
    with torch.no_grad():
        return Forward(teacher, model.positional)(batch, **kwargs)


@dataclass
class LogitDistillation:
    """α · CE(student, labels) + (1 − α) · T² · KL(softmax(teacher/T) ‖ softmax(student/T)).

    The teacher's logits come from the batch (:data:`TEACHER_KEY`, when they were cached once per
    example) or from a teacher forward on the batch; either way the teacher is in eval mode, so
    the targets are the same numbers. With ``causal`` both models are causal LMs: the hard term is
    the next-token NLL (:func:`~steelyard.training.losses.next_token_loss`) and the soft term the
    KL between their next-token distributions, averaged over the predicted (non-padding) positions
    (:func:`~steelyard.training.losses.next_token_soft_loss`).
    """

    teacher: nn.Module
    alpha: float = 0.5
    temperature: float = 4.0
    causal: bool = False

    def term(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The mixed loss from both models' logits (shared with :class:`HiddenStateMatching`)."""
        if self.causal:
            labels = lm_labels(batch)
            soft = next_token_soft_loss(student_logits, teacher_logits, labels, self.temperature)
            hard = next_token_loss(student_logits, labels) if self.alpha > 0 else soft
            return mix(hard, soft, self.alpha)
        hard = F.cross_entropy(student_logits.float(), batch["labels"])
        return mix(hard, soft_loss(student_logits, teacher_logits, self.temperature), self.alpha)

    def loss(self, model: Forward, batch: Batch) -> torch.Tensor:
        student_logits = logits_of(model(batch))
        cached = batch.get(TEACHER_KEY)
        teacher_logits = cached if cached is not None else logits_of(teacher_forward(self.teacher, model, batch))
        return self.term(student_logits, teacher_logits, batch)

    def modules(self) -> list[nn.Module]:
        return []


@dataclass
class HiddenStateMatching:
    """``weight`` · mean MSE between the student's hidden states and the teacher's, plus ``logits``.

    ``pairs[i]`` is the index in the teacher's ``hidden_states`` matched with the student's state
    ``i`` (embeddings with embeddings, each layer with the teacher layer it replaces); the student's
    states go through ``projection`` (a learned linear map when the widths differ, trained with the
    student and owned by this objective, so it is not part of the trained model). Padding positions
    are left out through the attention mask. With ``logits`` the logit-distillation term is added,
    computed from the same two forwards.
    """

    teacher: nn.Module
    pairs: Sequence[int]
    projection: nn.Module = field(default_factory=nn.Identity)
    weight: float = 1.0
    logits: LogitDistillation | None = None

    def loss(self, model: Forward, batch: Batch) -> torch.Tensor:
        s_out = model(batch, output_hidden_states=True)
        t_out = teacher_forward(self.teacher, model, batch, output_hidden_states=True)
        s_states, t_states = tuple(s_out.hidden_states), tuple(t_out.hidden_states)
        if len(s_states) != len(self.pairs):
            raise ConfigError(f"hidden-state matching expected {len(self.pairs)} student states, got {len(s_states)}")
        matched = [t_states[j] for j in self.pairs]
        loss = self.weight * hidden_state_loss(s_states, matched, batch.get("attention_mask"), self.projection)
        if self.logits is not None:
            loss = self.logits.term(logits_of(s_out), logits_of(t_out), batch) + loss
        return loss

    def modules(self) -> list[nn.Module]:
        return [self.projection]
