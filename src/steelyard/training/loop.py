"""The training loop: one code path for a single process and for every DDP rank.

Each epoch draws its order from ``DistributedSampler`` (a world of one is a plain seeded
shuffle), so the data order depends only on the seed and the epoch. Validation is sharded
over ranks and gathered, so every rank sees the same metric and takes the same early-stopping
and target decisions without extra messages.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from steelyard.data.dataset import Example
from steelyard.evaluation.adapters import Adapter, Feature
from steelyard.evaluation.predict import Outputs, predict
from steelyard.evaluation.progress import progress_bar
from steelyard.metrics import METRICS, perplexity, reached
from steelyard.outputs import pause_point
from steelyard.training.config import FinetuneConfig
from steelyard.training.dist import DistContext
from steelyard.training.objectives import Forward, Objective, task_objective
from steelyard.training.optim import clip_gradients, make_optimizer, make_scheduler, warmup_steps
from steelyard.training.result import EvalPoint, TargetProgress
from steelyard.units import Flops


@dataclass
class LoopInput:
    """What the loop trains on. ``augment`` re-draws perturbed training examples per epoch.

    ``objective`` is the loss (:mod:`steelyard.training.objectives`; None: the adapter's task
    loss, cross-entropy or next-token). ``after_step(step)`` runs after each optimizer step
    (re-apply pruning masks, advance a gradual pruning schedule).
    """

    module: torch.nn.Module
    adapter: Adapter
    train_features: list[Feature]
    val_features: list[Feature]
    metric: str
    target: float | None = None
    train_examples: list[Example] | None = None
    augment: Callable[[list[Example], int], list[Example]] | None = None
    objective: Objective | None = None
    after_step: Callable[[int], None] | None = None


@dataclass
class Accounting:
    """Where the clock and the FLOP count start: a run may have paid for encoding already."""

    clock_start: float
    time_offset: float = 0.0
    flops_per_sample: Flops = field(default_factory=lambda: Flops(0.0))
    flops_offset: Flops = field(default_factory=lambda: Flops(0.0))

    def elapsed(self) -> float:
        return time.perf_counter() - self.clock_start + self.time_offset

    def flops(self, samples: int) -> Flops:
        return Flops(self.flops_offset + self.flops_per_sample * samples)


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """What training can change, copied to the CPU: the trainable parameters and the buffers.

    Frozen parameters are left out (they are the same at every step), so a LoRA or frozen-body run
    does not keep a second copy of the whole base model; restore with ``load_state_dict(strict=False)``.
    """
    frozen = {n for n, p in module.named_parameters() if not p.requires_grad}
    return {k: v.detach().clone().cpu() for k, v in module.state_dict().items() if k not in frozen}


@dataclass
class LoopOutcome:
    history: list[EvalPoint]
    steps: int
    samples: int
    best_step: int
    best_value: float
    best_state: dict[str, torch.Tensor] | None
    stopped: str
    target: TargetProgress | None
    train_seconds: float
    eval_seconds: float
    lrs: list[float]
    per_process_batch: int


class WithExtras(nn.Module):
    """The model plus an objective's trainable modules, so one optimizer and one DDP wrapper see
    them all; calling it calls the model (the extras are used by the objective's loss)."""

    def __init__(self, model: nn.Module, extras: list[nn.Module]) -> None:
        super().__init__()
        self.model = model
        self.extras = nn.ModuleList(extras)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)


def metric_value(metric: str, outputs: Outputs) -> float:
    """Point value of ``metric`` (no bootstrap: validation only needs the number)."""
    if outputs.nll is not None:
        return perplexity(outputs.n_tokens, outputs.nll)
    return float(METRICS[metric].fn(outputs.labels, outputs.proba))


def predict_sharded(
    module: torch.nn.Module,
    adapter: Adapter,
    features: list[Feature],
    batch_size: int,
    dist: DistContext,
    device: torch.device | str,
) -> Outputs:
    """Predictions over all features, each rank doing a shard, every rank getting everything."""
    local = predict(module, adapter, dist.shard(features), batch_size, device=device, by_document=False)
    if local.nll is not None:
        rows = dist.gather(list(zip(local.nll.tolist(), local.n_tokens.tolist(), strict=True)), len(features))  # type: ignore[union-attr]
        return Outputs(nll=np.array([r[0] for r in rows]), n_tokens=np.array([r[1] for r in rows]))
    rows = dist.gather(list(zip(local.proba, local.labels, strict=True)), len(features))  # type: ignore[arg-type]
    if not rows:
        return Outputs(proba=np.zeros((0, 0)), labels=np.zeros(0, dtype=np.int64))
    return Outputs(proba=np.stack([r[0] for r in rows]), labels=np.array([r[1] for r in rows]))


def validate(
    module: torch.nn.Module,
    adapter: Adapter,
    features: list[Feature],
    metric: str,
    batch_size: int,
    dist: DistContext,
    device: torch.device | str,
) -> float:
    """The validation metric, computed over shards and gathered so every rank agrees."""
    return metric_value(metric, predict_sharded(module, adapter, features, batch_size, dist, device))


def better(metric: str, value: float, best: float | None) -> bool:
    if best is None or math.isnan(best):
        return not math.isnan(value)
    return value > best if METRICS[metric].higher_is_better else value < best


def schedule(cfg: FinetuneConfig, n_train: int, world: int = 1) -> tuple[int, int, int]:
    """Rows per process per step, steps per epoch and total steps of a run on ``n_train`` examples.

    Each of ``world`` processes takes ``ceil(batch_size / world)`` rows of its ``ceil(n / world)``
    examples, so the step count matches a single process's.
    """
    per_rank = math.ceil(cfg.batch_size / world)
    steps_per_epoch = math.ceil(math.ceil(n_train / world) / per_rank)
    total = steps_per_epoch * cfg.num_epochs(steps_per_epoch)
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    return per_rank, steps_per_epoch, total


def train(
    inp: LoopInput,
    cfg: FinetuneConfig,
    lr: float,
    acct: Accounting,
    *,
    dist: DistContext | None = None,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> LoopOutcome:
    """Train ``inp.module`` in place; returns the history and the best state seen on validation.

    The best state holds the module's own weights only (an objective's extra modules, such as a
    projection onto a teacher's width, train alongside but are not part of the model).
    """
    from torch.utils.data import DistributedSampler

    dist = dist or DistContext()
    module = inp.module.to(device)
    objective = inp.objective if inp.objective is not None else task_objective(inp.adapter.kind)
    extras = [m for m in objective.modules() if any(True for _ in m.parameters())]
    trained: nn.Module = WithExtras(module, extras).to(device) if extras else module
    model: nn.Module = trained
    if dist.distributed:
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [torch.device(device).index] if str(device).startswith("cuda") else None
        model = DistributedDataParallel(trained, device_ids=device_ids)
    forward = Forward(model, inp.adapter.positional)
    trainable = [p for p in trained.parameters() if p.requires_grad]
    optimizer = make_optimizer(cfg.optimizer, trained.named_parameters(), lr, cfg.weight_decay)
    n = len(inp.train_features)
    sampler = DistributedSampler(
        range(n), num_replicas=dist.world, rank=dist.rank, shuffle=True, seed=cfg.seed, drop_last=False
    )
    per_rank, steps_per_epoch, total = schedule(cfg, n, dist.world)
    scheduler = make_scheduler(optimizer, warmup_steps(total, cfg.warmup_ratio), total)
    has_val = bool(inp.val_features)
    epochs = cfg.num_epochs(steps_per_epoch)
    patience = cfg.early_stop_patience()

    history: list[EvalPoint] = []
    lrs: list[float] = []
    best_value: float | None = None
    best_step = 0
    best_state: dict[str, torch.Tensor] | None = None
    since_best = 0
    target: TargetProgress | None = None
    if inp.target is not None:
        target = TargetProgress(inp.metric, inp.target, False)
    step = samples = 0
    loss_sum, loss_n, grad_max = 0.0, 0, 0.0
    train_seconds = eval_seconds = 0.0
    stopped = "epochs" if cfg.max_steps is None or total < cfg.max_steps else "max_steps"

    def evaluate_now(epoch_float: float) -> str | None:
        nonlocal best_value, best_step, best_state, since_best, loss_sum, loss_n, grad_max, eval_seconds
        t0 = time.perf_counter()
        dist.sync_buffers(module)
        value = validate(module, inp.adapter, inp.val_features, inp.metric, cfg.eval_batch_size, dist, device)
        eval_seconds += time.perf_counter() - t0
        improved = better(inp.metric, value, best_value)
        history.append(EvalPoint(
            step=step, epoch=round(epoch_float, 4), samples=samples, seconds=acct.elapsed(),
            train_loss=loss_sum / loss_n if loss_n else None, lr=lrs[-1] if lrs else lr,
            value=value, improved=improved, grad_norm_max=grad_max,
        ))
        loss_sum, loss_n, grad_max = 0.0, 0, 0.0
        if improved:
            best_value, best_step, since_best = value, step, 0
            best_state = snapshot(module)
        else:
            since_best += 1
        if target is not None and not target.reached and reached(inp.metric, value, target.target):
            target.reached, target.step, target.samples = True, step, samples
            target.seconds, target.flops, target.epoch = acct.elapsed(), acct.flops(samples), round(epoch_float, 4)
            if cfg.stop_at_target:
                return "target_reached"
        if patience is not None and since_best >= patience:
            return "early_stopping"
        return None

    done = False
    with progress_bar("training", total, progress) as bar:
        for epoch in range(epochs):
            sampler.set_epoch(epoch)
            features = inp.train_features
            if inp.augment is not None and inp.train_examples is not None:
                features = inp.adapter.encode(inp.augment(inp.train_examples, epoch))
            order = list(sampler)
            for b in range(steps_per_epoch):
                chunk = [features[i] for i in order[b * per_rank : (b + 1) * per_rank]]
                if not chunk:
                    continue
                pause_point("train-step")  # tests press Ctrl-C here: nothing is saved, the command says so
                t0 = time.perf_counter()
                batch = {k: v.to(device) for k, v in inp.adapter.collate(chunk).items()}
                model.train()
                loss = objective.loss(forward, batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_max = max(grad_max, clip_gradients(trainable, cfg.max_grad_norm))
                lrs.append(float(optimizer.param_groups[0]["lr"]))
                optimizer.step()
                scheduler.step()
                step += 1
                if inp.after_step is not None:
                    inp.after_step(step)
                samples += len(chunk) * dist.world
                loss_sum += float(loss.detach())
                loss_n += 1
                train_seconds += time.perf_counter() - t0
                bar.advance()
                last_of_epoch = b == steps_per_epoch - 1
                due = (cfg.eval_every is not None and step % cfg.eval_every == 0) or last_of_epoch or step >= total
                if has_val and due:
                    reason = evaluate_now(epoch + (b + 1) / steps_per_epoch)
                    bar.describe(f"training (val {inp.metric} {history[-1].value:.4f})")
                    if reason is not None:
                        stopped, done = reason, True
                if step >= total:
                    done = True
                if done:
                    break
            if done:
                break
    dist.sync_buffers(module)
    if best_value is None:
        best_value, best_step = float("nan"), step
    return LoopOutcome(
        history=history, steps=step, samples=samples, best_step=best_step, best_value=best_value,
        best_state=best_state, stopped=stopped, target=target, train_seconds=train_seconds,
        eval_seconds=eval_seconds, lrs=lrs, per_process_batch=per_rank,
    )
