"""Train a student against a teacher on the shared training loop.

The loop (:func:`steelyard.training.loop.train`) is the fine-tuning loop; distillation only
replaces its loss through the ``LoopInput.loss`` hook. The teacher's targets are computed once:

- **Cached logits** (default). The teacher runs in eval mode (no dropout) under inference mode,
  so its logits for an example never change; they are computed once per training example (each
  DDP rank does a shard and all gather) and travel in the batch under ``_teacher_logits``, which
  ``call_model`` does not pass to the model. Each step then costs one student forward + backward
  instead of that plus a teacher forward.
- **Online teacher** when hidden states are matched (they are too large to cache) or when
  ``cache_teacher`` is off: the teacher runs on each batch under ``no_grad``.

Hidden-state matching pairs the embedding outputs and each student layer ``i`` with the teacher
layer :func:`~steelyard.distill.student.hidden_targets` gives (the last layer of the block the
student layer replaces), through one learned linear projection when the widths differ. The
projection trains with the student (it sits in a wrapper module so the loop's optimizer sees it)
and is dropped at the end: it is not part of the saved student.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import nn

from steelyard.data.dataset import Example
from steelyard.distill.config import DistillConfig
from steelyard.distill.loss import hidden_state_loss, mix, soft_loss
from steelyard.distill.student import hidden_targets
from steelyard.errors import ConfigError, DataError
from steelyard.evaluation.adapters import Adapter, Batch, Feature, call_model, iter_batches, logits_of
from steelyard.evaluation.progress import progress_bar
from steelyard.training.dist import DistContext
from steelyard.training.finetune import seed_everything
from steelyard.training.loop import Accounting, LoopInput, LoopOutcome, train
from steelyard.units import Flops

#: Batch key of the cached teacher logits (a leading "_" keeps it away from the model's inputs).
TEACHER_KEY = "_teacher_logits"


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


class HiddenMatch(nn.Module):
    """The student run with ``output_hidden_states``, plus the projection onto the teacher's width."""

    def __init__(self, student: nn.Module, projection: nn.Module) -> None:
        super().__init__()
        self.student = student
        self.projection = projection

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.student(*args, **kwargs, output_hidden_states=True)


@dataclass
class DistillOutcome(LoopOutcome):
    """The loop's outcome plus what the teacher cost.

    ``flops_per_sample`` is one training sample's counted work: student forward + backward, plus
    a teacher forward when the teacher runs online. ``teacher_cache_flops`` / ``_seconds`` are the
    one-off pass that cached the teacher's logits (0 when it ran online).
    """

    flops_per_sample: Flops = field(default_factory=lambda: Flops(0.0))
    basis: str = ""
    teacher_flops_per_sample: Flops = field(default_factory=lambda: Flops(0.0))
    teacher_cache_flops: Flops = field(default_factory=lambda: Flops(0.0))
    teacher_cache_seconds: float = 0.0
    teacher_online: bool = False
    notes: list[str] = field(default_factory=list)


def model_inputs(batch: Batch) -> dict[str, torch.Tensor]:
    return {k: v for k, v in batch.items() if k != "labels" and not k.startswith("_")}


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
    local = dist.shard(list(features))
    rows: list[torch.Tensor] = []
    was = teacher.training
    teacher.eval()
    batches = iter_batches(local, batch_size) if local else []
    try:
        with torch.inference_mode(), progress_bar("teacher logits", len(batches), progress) as bar:
            for chunk in batches:
                batch = {k: v.to(device) for k, v in adapter.collate(chunk).items()}
                rows.extend(logits_of(call_model(teacher, batch, adapter.positional)).float().cpu())
                bar.advance()
    finally:
        teacher.train(was)
    return dist.gather(rows, len(features))


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


def pair_states(student_states: Sequence[torch.Tensor], teacher_states: Sequence[torch.Tensor]) -> tuple[
        list[torch.Tensor], list[torch.Tensor]]:
    """Embeddings with embeddings, student layer i with teacher layer ``layer_pairs[i]``."""
    targets = layer_pairs(len(student_states) - 1, len(teacher_states) - 1)
    return list(student_states), [teacher_states[0], *(teacher_states[j + 1] for j in targets)]


def _probe(module: nn.Module, batch: Batch, positional: bool, hidden: bool) -> Any:
    was = module.training
    module.eval()
    try:
        with torch.no_grad():
            if hidden:
                return module(**model_inputs(batch), output_hidden_states=True)
            return call_model(module, batch, positional)
    finally:
        module.train(was)


def _student_state(state: dict[str, torch.Tensor] | None, wrapped: bool) -> dict[str, torch.Tensor] | None:
    if state is None or not wrapped:
        return state
    return {k.removeprefix("student."): v for k, v in state.items() if k.startswith("student.")}


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
    online = cfg.hidden_states or not cfg.cache_teacher
    if online and separate:
        raise ConfigError("hidden-state matching and an uncached teacher need the teacher and the student to read "
                          "the same inputs (same tokenizer / image size); this pair does not")
    positional = adapter.positional
    teacher.to(device)
    student.to(device)
    teacher_was_training = teacher.training
    teacher.eval()
    notes: list[str] = []

    probe = {k: v.to(device) for k, v in adapter.collate(train_features[: min(8, len(train_features))]).items()}
    s_out = _probe(student, probe, positional, cfg.hidden_states)
    k_student = int(logits_of(s_out).shape[-1])
    module: nn.Module = student
    projection: nn.Module | None = None
    if cfg.hidden_states:
        t_out = _probe(teacher, probe, positional, True)
        s_states, t_states = _hidden_states(s_out, "student"), _hidden_states(t_out, "teacher")
        _check_states(s_states, t_states)
        ws, wt = s_states[-1].shape[-1], t_states[-1].shape[-1]
        projection = nn.Linear(ws, wt).to(device) if ws != wt else nn.Identity()
        module = HiddenMatch(student, projection)
        ns, nt = len(s_states) - 1, len(t_states) - 1
        pairs = layer_pairs(ns, nt)
        notes.append(f"hidden states: embeddings and student layers 0..{ns - 1} matched to teacher layers {pairs} "
                     f"(MSE, weight {cfg.hidden_weight:g}" + (f", learned projection {ws} → {wt}" if ws != wt else "")
                     + ")")
    else:
        t_out = _probe(teacher, probe, positional, False) if not separate else None
    if t_out is not None and int(logits_of(t_out).shape[-1]) != k_student:
        raise DataError(f"teacher and student label sets differ: the teacher predicts "
                        f"{int(logits_of(t_out).shape[-1])} classes, the student {k_student}")

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
        if logits and int(logits[0].shape[-1]) != k_student:
            raise DataError(f"teacher and student label sets differ: the teacher predicts {int(logits[0].shape[-1])} "
                            f"classes, the student {k_student}")
        train_features = with_teacher_logits(train_features, logits)
        loop_adapter = TeacherTargets(adapter)
        cache_seconds = time.perf_counter() - t0
        cache_flops = Flops(teacher_per_sample * len(train_features))
        notes.append(f"teacher logits cached once per training example ({len(train_features):,} examples, "
                     f"{cache_seconds:.1f} s): no teacher forward in the training steps")
    elif cfg.hidden_states:
        notes.append("the teacher runs on every step (hidden states are matched online; its logits come from the "
                     "same pass)")
    else:
        notes.append("the teacher runs on every step (cache_teacher off)")

    alpha, temperature, weight = cfg.alpha, cfg.temperature, cfg.hidden_weight

    def loss_hook(output: Any, batch: Batch, default: torch.Tensor) -> torch.Tensor:
        student_logits = logits_of(output)
        if not online:
            return mix(default, soft_loss(student_logits, batch[TEACHER_KEY], temperature), alpha)
        with torch.no_grad():
            if cfg.hidden_states:
                t_output = teacher(**model_inputs(batch), output_hidden_states=True)
            else:
                t_output = call_model(teacher, batch, positional)
        loss = mix(default, soft_loss(student_logits, logits_of(t_output), temperature), alpha)
        if cfg.hidden_states and weight > 0:
            s_pairs, t_pairs = pair_states(output.hidden_states, t_output.hidden_states)
            loss = loss + weight * hidden_state_loss(s_pairs, t_pairs, batch.get("attention_mask"), projection)
        return loss

    from steelyard.training.flops import training_flops_per_sample

    per_sample, basis = training_flops_per_sample(module, probe, positional)
    if online:
        per_sample = Flops(per_sample + teacher_per_sample)
        basis += "; plus the teacher's forward per sample (it runs on every step)"
    acct = Accounting(start, 0.0, per_sample, cache_flops)
    try:
        outcome = train(
            LoopInput(module, loop_adapter, train_features, val_features, metric, target, loss=loss_hook),
            cfg.train, cfg.train.learning_rate(), acct, dist=dist, device=device, progress=progress,
        )
    finally:
        teacher.train(teacher_was_training)
    if outcome.best_state is not None:
        module.load_state_dict(outcome.best_state)
    values = {f.name: getattr(outcome, f.name) for f in fields(LoopOutcome)}
    values["best_state"] = _student_state(outcome.best_state, module is not student)
    student.eval()
    return DistillOutcome(
        **values, flops_per_sample=per_sample, basis=basis, teacher_flops_per_sample=teacher_per_sample,
        teacher_cache_flops=cache_flops, teacher_cache_seconds=cache_seconds, teacher_online=online, notes=notes,
    )

