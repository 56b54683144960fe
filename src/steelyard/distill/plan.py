"""Everything a distillation run decides before training, and one process's training.

:func:`plan_run` checks the inputs (a teacher with weights and a head, classification data whose
labels fit it; or a causal LM and plain text), puts the data in the teacher's label order, builds
the student and the adapters that feed both models. It runs in the calling process first, so bad
input fails there with one clear error before any worker starts, and again in every DDP worker (deterministically: same
seed, same student).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from steelyard.data.dataset import TaskDataset
from steelyard.distill.config import DistillConfig
from steelyard.distill.student import Student, build_student, teacher_classes
from steelyard.distill.train import DistillOutcome, distill_module
from steelyard.errors import ConfigError, DataError
from steelyard.evaluation.adapters import Adapter, tokenizer_source
from steelyard.evaluation.labels import match_labels
from steelyard.evaluation.predictor import check_modality, check_runnable, make_adapter
from steelyard.models.handle import ModelHandle
from steelyard.training.dist import DistContext, weights_digest
from steelyard.training.finetune import check_data, objective, relabel, with_validation
from steelyard.training.trainer import device_for

TASKS = ("text-classification", "image-classification", "causal-lm")

#: The file a launched run's rank 0 writes the trained student to, for the calling process.
STATE_FILE = "student.safetensors"


@dataclass
class Plan:
    """The prepared run: data in the teacher's label order, the student, and how to feed both."""

    teacher: ModelHandle
    student: Student
    dataset: TaskDataset
    label_names: list[str]
    adapter: Adapter
    #: The teacher's own adapter when it reads inputs differently from the student, else None.
    teacher_adapter: Adapter | None
    metric: str
    target: float | None
    notes: list[str] = field(default_factory=list)

    @property
    def task(self) -> str:
        if self.dataset.task == "causal-lm":
            return "causal-lm"
        return "image-classification" if self.dataset.modality == "image" else "text-classification"


def _adapter_for(handle: ModelHandle, task: str, cfg: DistillConfig) -> Adapter:
    """The handle's adapter; ``--tokenizer`` serves only a model that has no tokenizer of its own."""
    own = tokenizer_source(handle) if task == "text-classification" else None
    return make_adapter(handle, task, max_length=cfg.train.max_length, tokenizer=None if own else cfg.train.tokenizer)


def _same_inputs(a: Adapter, b: Adapter, examples: list[Any]) -> bool:
    """Whether two adapters turn the same examples into the same model inputs."""
    fa, fb = a.encode(examples), b.encode(examples)
    if a.positional != b.positional or len(fa) != len(fb):
        return False
    for x, y in zip(fa, fb, strict=True):
        if set(x) != set(y):
            return False
        for key in x:
            u, v = x[key], y[key]
            if isinstance(u, torch.Tensor) or isinstance(v, torch.Tensor):
                if not (isinstance(u, torch.Tensor) and isinstance(v, torch.Tensor) and u.shape == v.shape
                        and torch.equal(u, v)):
                    return False
            elif u != v:
                return False
    return True


def check_teacher(teacher: ModelHandle, dataset: TaskDataset) -> None:
    """A teacher must have weights, read the data's modality and classify (or be a causal LM, on text)."""
    check_runnable(teacher)
    if dataset.task not in TASKS:
        raise DataError(f"distillation needs a classification dataset or plain text for a causal LM; "
                        f"{dataset.name!r} is {dataset.task}")
    check_modality(teacher, dataset)
    if dataset.task == "causal-lm":
        if teacher.task != "causal-lm":
            raise DataError(f"plain text distils a causal language model; the teacher {teacher.name!r} is "
                            f"{teacher.task}")
        return
    if teacher.task in ("causal-lm", "feature-extraction") and teacher.source_kind != "factory":
        raise DataError(f"the teacher {teacher.name!r} is a {teacher.task} model without a classification head; "
                        f"fine-tune it first (steelyard finetune {teacher.name} --data ... --output ...)")


def plan_run(teacher: ModelHandle, student: str | ModelHandle, dataset: TaskDataset, cfg: DistillConfig) -> Plan:
    """Check the inputs and prepare the run (see the module docstring)."""
    metric, target = objective(cfg.train, dataset.task)
    check_teacher(teacher, dataset)
    check_data(dataset)
    if dataset.task == "causal-lm":
        return _plan_lm(teacher, student, dataset, cfg, metric, target)
    ds, notes = with_validation(dataset, cfg.train.seed)
    k = teacher_classes(teacher)
    config = getattr(teacher.module, "config", None) or teacher.config
    labels = match_labels(teacher.name, k, config if teacher.source_kind != "factory" else None, ds.label_names)
    if labels.note:
        notes.append(f"teacher: {labels.note}")
    ds = relabel(ds, labels.to_model, labels.names)
    built = build_student(teacher, student, cfg.train.seed)
    task = "image-classification" if ds.modality == "image" else "text-classification"
    teacher_adapter = _adapter_for(teacher, task, cfg)
    teacher_adapter_out: Adapter | None = None
    if built.preprocessing is teacher:
        adapter = teacher_adapter
    else:
        adapter = _adapter_for(built.preprocessing, task, cfg)
        if not _same_inputs(adapter, teacher_adapter, ds.train[:16]):
            teacher_adapter_out = teacher_adapter
            notes.append("teacher and student read the inputs differently (tokenizer or image size): the teacher's "
                         "logits are computed from its own encoding of each example")
    if teacher_adapter_out is not None and (cfg.hidden_states or not cfg.cache_teacher):
        raise ConfigError("hidden-state matching (and an uncached teacher) needs the teacher and the student to read "
                          "the same inputs; this student uses another tokenizer or image size")
    if cfg.train.target is not None and not ds.validation:
        raise DataError(f"{ds.name!r} has too few examples for a validation split, which a target metric needs")
    return Plan(teacher, built, ds, list(labels.names), adapter, teacher_adapter_out, metric, target, notes)


def _plan_lm(teacher: ModelHandle, student: str | ModelHandle, dataset: TaskDataset, cfg: DistillConfig,
             metric: str, target: float | None) -> Plan:
    """A causal-LM teacher and student on plain text: the same tokenizer feeds both (their next-token
    distributions are matched token by token), no labels to order."""
    ds, notes = with_validation(dataset, cfg.train.seed)
    built = build_student(teacher, student, cfg.train.seed)
    adapter = make_adapter(teacher, "causal-lm", max_length=cfg.train.max_length, tokenizer=cfg.train.tokenizer)
    if built.preprocessing is not teacher:
        own = make_adapter(built.preprocessing, "causal-lm", max_length=cfg.train.max_length,
                           tokenizer=cfg.train.tokenizer)
        if not _same_inputs(own, adapter, ds.train[:16]):
            raise ConfigError(f"the student {built.label!r} tokenizes the text differently from the teacher; "
                              "distilling a causal LM on logits needs one tokenizer for both")
    return Plan(teacher, built, ds, [], adapter, None, metric, target, notes)


def train_process(plan: Plan, cfg: DistillConfig, dist: DistContext, progress: bool = False) -> DistillOutcome:
    """One process's share of the training (the whole of it for a world of one)."""
    device = device_for(cfg.train, dist)
    ds = plan.dataset
    train_features = plan.adapter.encode(ds.train)
    val_features = plan.adapter.encode(ds.validation)
    teacher_features = plan.teacher_adapter.encode(ds.train) if plan.teacher_adapter is not None else None
    if not train_features:
        raise DataError(f"{ds.name!r}: nothing to train on after encoding (all training texts empty?)")
    return distill_module(
        plan.student.module, plan.teacher.module, plan.adapter, train_features, val_features, cfg,
        metric=plan.metric, device=device, dist=dist, progress=progress, target=plan.target,
        teacher_adapter=plan.teacher_adapter, teacher_features=teacher_features,
    )


def train_worker(teacher: ModelHandle, student: str | ModelHandle, dataset: TaskDataset, cfg: DistillConfig,
                 staging: Path, dist: DistContext) -> tuple[DistillOutcome, list[str]]:
    """One launched process's distillation (:func:`steelyard.training.launch.launch` calls it).

    Each worker rebuilds the plan (deterministic: same seed, same student), caches its shard of
    the teacher's logits and gathers the rest, and trains under DDP; rank 0 writes the trained
    weights to ``staging`` for the calling process, which then evaluates, counts and saves once,
    exactly as after a single-process run. Returns the outcome and every rank's weights digest.
    """
    plan = plan_run(teacher, student, dataset, cfg)
    outcome = train_process(plan, cfg, dist)
    digests = dist.all_objects(weights_digest(plan.student.module))
    if dist.main:
        from safetensors.torch import save_model

        save_model(plan.student.module, str(staging / STATE_FILE))
    dist.barrier()
    outcome.best_state = None  # the weights travel through the staging file
    return outcome, digests


def label_config(module: torch.nn.Module, names: list[str]) -> None:
    """Write the class names into the student's config, so it is scored and saved in that order."""
    config = getattr(module, "config", None)
    if config is None or not names:
        return
    config.num_labels = len(names)
    config.id2label = dict(enumerate(names))
    config.label2id = {n: i for i, n in enumerate(names)}
