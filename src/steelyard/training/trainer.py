"""The trainer every training workflow calls: fine-tuning, distillation and the recipe's steps.

:func:`fit` wraps the loop (:func:`steelyard.training.loop.train`) with what each front-end
needs around it, once: the counted FLOPs of one training sample (on the first training batch),
the clock and FLOP accounting (a run may have paid for cached features or teacher logits
already), restoring the best validation state, and the :class:`TrainingCost` of the run. What
is minimised is the job's objective (:mod:`steelyard.training.objectives`).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from steelyard.errors import ConfigError
from steelyard.training.config import FinetuneConfig
from steelyard.training.dist import DistContext
from steelyard.training.loop import Accounting, LoopInput, LoopOutcome, train
from steelyard.training.lora import AdapterSummary
from steelyard.training.result import DistributedInfo, TrainingCost
from steelyard.units import Flops


@dataclass
class Fitted(LoopOutcome):
    """The loop's outcome and the counted cost of the run (``adapters``: what LoRA trained, if it did)."""

    cost: TrainingCost
    adapters: AdapterSummary | None = None

    @property
    def flops_per_sample(self) -> Flops:
        return self.cost.flops_per_sample

    @property
    def basis(self) -> str:
        return self.cost.basis

    def summary(self) -> dict[str, Any]:
        """The fields every training result reports from its run (best step and value, why it
        stopped, the validation history, the target's cost)."""
        return {"best_step": self.best_step, "best_validation": self.best_value, "stopped": self.stopped,
                "history": self.history, "target": self.target}

    def distributed(self, dist: DistContext, digests: list[str]) -> DistributedInfo:
        """How many processes trained (``dist``) and each one's final-weights digest."""
        return DistributedInfo(dist.world, dist.backend, self.per_process_batch, digests)


@dataclass(frozen=True)
class Charges:
    """Work done before training that the run is charged for, and extra work in every step.

    ``seconds`` / ``flops``: a one-off pass (cached embeddings, cached teacher logits);
    ``flops_per_sample``: work each sample costs besides the model's forward + backward (an
    online teacher's forward), with ``basis`` saying what it is.
    """

    seconds: float = 0.0
    flops: Flops = field(default_factory=lambda: Flops(0.0))
    flops_per_sample: Flops = field(default_factory=lambda: Flops(0.0))
    basis: str = ""


def trainable_parameters(module: torch.nn.Module) -> int:
    """Parameters the optimizer will update: what picks the small-model learning rate."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch so a rerun draws the same initialisations and dropout masks."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def device_for(cfg: FinetuneConfig, dist: DistContext) -> torch.device:
    """The device this process trains on: under DDP on CUDA, the GPU of its local rank."""
    if cfg.device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda was asked for but no CUDA device is available")
        return torch.device(f"cuda:{dist.local_rank}" if dist.distributed else cfg.device)
    return torch.device(cfg.device)


def fit(
    job: LoopInput,
    cfg: FinetuneConfig,
    *,
    lr: float | None = None,
    dist: DistContext | None = None,
    device: torch.device | str = "cpu",
    progress: bool = False,
    start: float | None = None,
    charges: Charges | None = None,
    count_flops: bool = True,
    restore_best: bool = True,
) -> Fitted:
    """Train ``job.module`` in place on ``job.objective`` and say what it cost.

    ``start`` is when the run's clock started (default: now); ``charges`` what it already paid.
    With ``restore_best`` the best validation state is loaded back into the module (a gradual
    pruning run keeps its last state instead: an earlier "best" is less sparse than asked).
    ``count_flops`` False skips the counted forward + backward (the cost then says 0 FLOPs).
    With ``cfg.lora_rank`` only LoRA adapters train (:mod:`steelyard.training.lora`); they are
    merged into ``job.module`` before this returns (also when training fails), so the module keeps
    its original layers, keys and shapes.
    """
    adapters = None
    if cfg.lora_rank:
        from steelyard.training.lora import attach, parse_targets

        adapters = attach(job.module, cfg.lora_rank, cfg.lora_alpha, parse_targets(cfg.lora_targets),
                          train_head=job.adapter.kind != "lm")
    try:
        fitted = _fit(job, cfg, lr=lr, dist=dist, device=device, progress=progress, start=start, charges=charges,
                      count_flops=count_flops, restore_best=restore_best)
    finally:
        if adapters is not None:
            adapters.merge()
    if adapters is not None:
        fitted.adapters = adapters.summary
        fitted.best_state = None  # its keys are the adapted layers', restored above and merged since
    return fitted


def _fit(
    job: LoopInput, cfg: FinetuneConfig, *, lr: float | None, dist: DistContext | None, device: torch.device | str,
    progress: bool, start: float | None, charges: Charges | None, count_flops: bool, restore_best: bool,
) -> Fitted:
    """:func:`fit` on the module as it is (adapters, if any, already attached)."""
    from steelyard.training.flops import training_flops_per_sample

    start = time.perf_counter() if start is None else start
    charges = charges or Charges()
    per_sample, basis = Flops(0.0), "not counted"
    if count_flops and job.train_features:
        batch = job.adapter.collate(job.train_features[: cfg.batch_size])
        probe = {k: v.to(device) for k, v in batch.items() if not k.startswith("_")}  # not the targets
        job.module.to(device)
        per_sample, basis = training_flops_per_sample(job.module, probe, job.adapter.positional)
    per_sample = Flops(per_sample + charges.flops_per_sample)
    if charges.basis:
        basis += f"; {charges.basis}"
    acct = Accounting(start, charges.seconds, per_sample, charges.flops)
    lr = cfg.learning_rate(trainable_parameters(job.module)) if lr is None else lr
    outcome = train(job, cfg, lr, acct, dist=dist, device=device, progress=progress)
    if restore_best and outcome.best_state is not None:
        job.module.load_state_dict(outcome.best_state, strict=False)  # frozen weights are not in it (snapshot)
    cost = TrainingCost(
        flops_per_sample=per_sample,
        basis=basis,
        feature_flops=charges.flops,
        samples_seen=outcome.samples,
        steps=outcome.steps,
        total_flops=Flops(charges.flops + per_sample * outcome.samples),
        train_seconds=outcome.train_seconds,
        eval_seconds=outcome.eval_seconds,
    )
    return Fitted(**vars(outcome), cost=cost)
