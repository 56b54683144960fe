"""Train a student against a teacher on the shared training loop.

The trainer (:func:`steelyard.training.trainer.fit`) is the fine-tuning trainer; distillation only
changes its objective (:class:`~steelyard.training.objectives.LogitDistillation`, with
:class:`~steelyard.training.objectives.HiddenStateMatching` for hidden states). The teacher's
targets are computed once:

- **Cached logits** (default). The teacher runs in eval mode (no dropout) under inference mode,
  so its logits for an example never change; they are computed once per training example (each
  DDP rank does a shard and all gather, through :func:`steelyard.training.frozen.frozen_outputs`,
  the pass that also caches frozen embeddings) and travel in the batch under ``_teacher_logits``,
  which ``call_model`` does not pass to the model. Each step then costs one student forward + backward
  instead of that plus a teacher forward.
- **Online teacher** when hidden states are matched (they are too large to cache), when
  ``cache_teacher`` is off, and always for a causal LM: the teacher runs (in eval mode) on each
  batch under ``no_grad``. A causal LM's logits are one vocabulary-wide distribution per token
  (a 32k vocabulary × 512 tokens is 64 MiB of float32 per example), so they are never cached.

A causal-LM student (an adapter of kind ``"lm"``) learns the teacher's next-token distribution at
every predicted position, mixed with its own next-token NLL (``alpha``); see
:class:`~steelyard.training.objectives.LogitDistillation`.

Hidden-state matching pairs the embedding outputs and each student layer ``i`` with the teacher
layer :func:`~steelyard.distill.student.hidden_targets` gives (the last layer of the block the
student layer replaces), through one learned linear projection when the widths differ. The
projection is the objective's own trainable module (the loop optimizes it with the student) and
is dropped at the end: it is not part of the saved student.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from steelyard.data.dataset import Example
from steelyard.distill.config import DistillConfig
from steelyard.distill.student import hidden_targets
from steelyard.errors import ConfigError, DataError
from steelyard.evaluation.adapters import Adapter, Batch, Feature, logits_of
from steelyard.training.dist import DistContext
from steelyard.training.frozen import frozen_outputs
from steelyard.training.loop import LoopInput
from steelyard.training.objectives import (
    TEACHER_KEY,
    Forward,
    HiddenStateMatching,
    LogitDistillation,
    Objective,
    model_inputs,
)
from steelyard.training.trainer import Charges, Fitted, fit, seed_everything
from steelyard.units import Flops


@dataclass
class TeacherTargets:
    """An adapter that adds each example's cached teacher logits to the batches it collates."""

    inner: Adapter

    @property
    def kind(self) -> str:
        return self.inner.kind

    @property
    def positional(self) -> bool:
        return self.inner.positional

    def encode(self, examples: Sequence[Example]) -> list[Feature]:
        return self.inner.encode(examples)

    def collate(self, features: Sequence[Feature]) -> Batch:
        batch = self.inner.collate(features)
        if features and all(TEACHER_KEY in f for f in features):
            batch[TEACHER_KEY] = torch.stack([f[TEACHER_KEY] for f in features])
        return batch


@dataclass
class DistillOutcome(Fitted):
    """The trainer's outcome plus what the teacher cost.

    ``flops_per_sample`` is one training sample's counted work: student forward + backward, plus
    a teacher forward when the teacher runs online. ``teacher_cache_flops`` / ``_seconds`` are the
    one-off pass that cached the teacher's logits (0 when it ran online).
    """

    teacher_flops_per_sample: Flops = field(default_factory=lambda: Flops(0.0))
    teacher_cache_flops: Flops = field(default_factory=lambda: Flops(0.0))
    teacher_cache_seconds: float = 0.0
    teacher_online: bool = False
    notes: list[str] = field(default_factory=list)


def forward_flops(module: nn.Module, batch: Batch, positional: bool) -> Flops:
    """Counted matrix-class FLOPs of one (eval-mode) forward of ``module``, per row of ``batch``."""
    from steelyard.profiling.counting import flops_per_row

    inputs = model_inputs(batch)
    return flops_per_row(module, tuple(inputs.values()) if positional else inputs)


def cache_teacher_logits(
    teacher: nn.Module,
    adapter: Adapter,
    features: Sequence[Feature],
    batch_size: int,
    dist: DistContext,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> list[torch.Tensor]:
    """The teacher's logits for every feature, in order (float32, on the CPU).

    Each rank computes its shard and all ranks gather the whole list, so under DDP the pass costs
    1/world of a single process's.
    """
    return frozen_outputs(teacher, adapter, features, batch_size, dist, lambda output, _: logits_of(output),
                          device=device, progress=progress, description="teacher logits")


def with_teacher_logits(features: Sequence[Feature], logits: Sequence[torch.Tensor]) -> list[Feature]:
    """New feature dicts carrying the cached logits (the caller's features are left as they were)."""
    return [{**f, TEACHER_KEY: t} for f, t in zip(features, logits, strict=True)]


def _hidden_states(output: Any, who: str) -> tuple[torch.Tensor, ...]:
    states = getattr(output, "hidden_states", None)
    if not states or len(states) < 2:
        raise ConfigError(f"hidden-state matching needs the {who} to return its hidden states "
                          "(a transformers model with output_hidden_states); it returned none")
    return tuple(states)


def _check_states(student_states: Sequence[torch.Tensor], teacher_states: Sequence[torch.Tensor]) -> None:
    s, t = student_states[-1], teacher_states[-1]
    if s.dim() != 3 or t.dim() != 3 or s.shape[:2] != t.shape[:2]:
        raise ConfigError(
            "hidden-state matching needs token or patch sequences of the same length in teacher and student "
            f"(student states {tuple(s.shape)}, teacher {tuple(t.shape)}); use logits only (no --hidden-states)"
        )


def layer_pairs(student_layers: int, teacher_layers: int) -> list[int]:
    """Teacher layer matched to each student layer (a deeper student repeats the teacher's last)."""
    if student_layers <= teacher_layers:
        return hidden_targets(student_layers, teacher_layers)
    return [min(i, teacher_layers - 1) for i in range(student_layers)]


def state_pairs(student_layers: int, teacher_layers: int) -> list[int]:
    """Index in the teacher's hidden states of each student state: embeddings with embeddings,
    student layer i with teacher layer ``layer_pairs[i]``."""
    return [0, *(j + 1 for j in layer_pairs(student_layers, teacher_layers))]


def _probe(module: nn.Module, batch: Batch, positional: bool, hidden: bool) -> Any:
    was = module.training
    module.eval()
    try:
        with torch.no_grad():
            return Forward(module, positional)(batch, **({"output_hidden_states": True} if hidden else {}))
    finally:
        module.train(was)


def distill_module(
    student: nn.Module,
    teacher: nn.Module,
    adapter: Adapter,
    train_features: list[Feature],
    val_features: list[Feature],
    cfg: DistillConfig,
    *,
    metric: str = "accuracy",
    device: torch.device | str = "cpu",
    dist: DistContext | None = None,
    progress: bool = False,
    target: float | None = None,
    teacher_adapter: Adapter | None = None,
    teacher_features: list[Feature] | None = None,
) -> DistillOutcome:
    """Train ``student`` (in place) to match ``teacher`` and the labels; the best validation state
    is loaded into ``student`` at the end and returned as ``best_state`` (student keys only).

    ``adapter`` feeds both models. When the teacher reads its inputs differently (another
    tokenizer or image size), pass its ``teacher_adapter`` and ``teacher_features`` for the same
    training examples in the same order: its logits are then cached from those (hidden-state
    matching and an uncached teacher need one shared input).
    """
    dist = dist or DistContext()
    start = time.perf_counter()
    seed_everything(cfg.train.seed)
    if not train_features:
        raise DataError("nothing to distil on: the training set is empty")
    separate = teacher_adapter is not None
    if separate and (teacher_features is None or len(teacher_features) != len(train_features)):
        raise DataError("teacher_features must hold the teacher's encoding of every training example, in order")
    causal = adapter.kind == "lm"
    online = cfg.hidden_states or not cfg.cache_teacher or causal
    if causal and separate:
        raise ConfigError("distilling a causal LM matches next-token distributions token by token: the teacher and "
                          "the student must share a tokenizer; this pair does not")
    if online and separate:
        raise ConfigError("hidden-state matching and an uncached teacher need the teacher and the student to read "
                          "the same inputs (same tokenizer / image size); this pair does not")
    positional = adapter.positional
    teacher.to(device)
    student.to(device)
    teacher_was_training = teacher.training
    teacher.eval()
    try:
        probe = {k: v.to(device) for k, v in adapter.collate(train_features[: min(8, len(train_features))]).items()}
        k_student = probe_classes(student, probe, positional)
        objective, notes = _objective(student, teacher, probe, positional, cfg, separate, device, k_student, causal)
        teacher_per_sample = forward_flops(teacher, probe, positional) if not separate else Flops(0.0)
        loop_adapter: Adapter = adapter
        cache_seconds, cache_flops = 0.0, Flops(0.0)
        if not online:
            t0 = time.perf_counter()
            source_adapter = teacher_adapter or adapter
            source = teacher_features if separate else train_features
            assert source is not None
            if separate:
                tprobe = source_adapter.collate(source[: min(8, len(source))])
                teacher_per_sample = forward_flops(teacher, {k: v.to(device) for k, v in tprobe.items()},
                                                   source_adapter.positional)
            logits = cache_teacher_logits(teacher, source_adapter, source, cfg.train.eval_batch_size, dist, device,
                                          progress)
            _check_classes(int(logits[0].shape[-1]) if logits else None, k_student)
            train_features = with_teacher_logits(train_features, logits)
            loop_adapter = TeacherTargets(adapter)
            cache_seconds = time.perf_counter() - t0
            cache_flops = Flops(teacher_per_sample * len(train_features))
            # the clock started before the cache pass: its seconds are in the run's time already
            charges = Charges(flops=cache_flops)
            notes.append(f"teacher logits cached once per training example ({len(train_features):,} examples): "
                         "no teacher forward in the training steps")
        else:
            charges = Charges(flops_per_sample=teacher_per_sample,
                              basis="plus the teacher's forward per sample (it runs on every step)")
            if cfg.hidden_states:
                notes.append("the teacher runs on every step (hidden states are matched online; its logits come "
                             "from the same pass)")
            elif causal:
                notes.append(f"the teacher's next-token distributions ({k_student:,}-token vocabulary) are computed "
                             "on every step, not cached")
            else:
                notes.append("the teacher runs on every step (cache_teacher off)")
        fitted = fit(
            LoopInput(student, loop_adapter, train_features, val_features, metric, target, objective=objective),
            cfg.train, dist=dist, device=device, progress=progress, start=start,
            charges=charges,
        )
    finally:
        teacher.train(teacher_was_training)
    student.eval()
    return DistillOutcome(
        **vars(fitted), teacher_flops_per_sample=teacher_per_sample, teacher_cache_flops=cache_flops,
        teacher_cache_seconds=cache_seconds, teacher_online=online, notes=notes,
    )


def probe_classes(module: nn.Module, probe: Batch, positional: bool) -> int:
    """How many classes ``module`` predicts, from one forward on the probe batch."""
    return int(logits_of(_probe(module, probe, positional, False)).shape[-1])


def _check_classes(teacher: int | None, student: int, causal: bool = False) -> None:
    if teacher is not None and teacher != student:
        if causal:
            raise DataError(f"teacher and student vocabularies differ: the teacher predicts {teacher} tokens, the "
                            f"student {student}; distillation on logits needs the same tokenizer")
        raise DataError(f"teacher and student label sets differ: the teacher predicts {teacher} classes, "
                        f"the student {student}")


def _objective(student: nn.Module, teacher: nn.Module, probe: Batch, positional: bool, cfg: DistillConfig,
               separate: bool, device: torch.device | str, k_student: int,
               causal: bool = False) -> tuple[Objective, list[str]]:
    """The distillation objective (logits, plus hidden states when asked) and what it says about them."""
    logits = LogitDistillation(teacher, cfg.alpha, cfg.temperature, causal=causal)
    if not cfg.hidden_states:
        if not separate:
            _check_classes(probe_classes(teacher, probe, positional), k_student, causal)
        return logits, []
    s_out, t_out = _probe(student, probe, positional, True), _probe(teacher, probe, positional, True)
    _check_classes(int(logits_of(t_out).shape[-1]), k_student, causal)
    s_states, t_states = _hidden_states(s_out, "student"), _hidden_states(t_out, "teacher")
    _check_states(s_states, t_states)
    ws, wt = s_states[-1].shape[-1], t_states[-1].shape[-1]
    projection = nn.Linear(ws, wt).to(device) if ws != wt else nn.Identity()
    ns, nt = len(s_states) - 1, len(t_states) - 1
    note = (f"hidden states: embeddings and student layers 0..{ns - 1} matched to teacher layers "
            f"{layer_pairs(ns, nt)} (MSE, weight {cfg.hidden_weight:g}"
            + (f", learned projection {ws} → {wt}" if ws != wt else "") + ")")
    objective = HiddenStateMatching(teacher, state_pairs(ns, nt), projection, cfg.hidden_weight, logits)
    return objective, [note]
