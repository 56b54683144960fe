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
import torch.nn.functional as F

from steelyard.data.dataset import Example
from steelyard.evaluation.adapters import Adapter, Feature, call_model, lm_token_nll, logits_of
from steelyard.evaluation.predict import Outputs, predict
from steelyard.evaluation.progress import progress_bar
from steelyard.metrics import METRICS, perplexity, reached
from steelyard.training.config import FinetuneConfig
from steelyard.training.dist import DistContext
from steelyard.training.optim import clip_gradients, make_optimizer, make_scheduler, warmup_steps
from steelyard.training.result import EvalPoint, TargetProgress
from steelyard.units import Flops


@dataclass
class LoopInput:
    """What the loop trains on. ``augment`` re-draws perturbed training examples per epoch.

    Hooks for the methods built on this loop (distillation, regularised or gradual pruning,
    quantization-aware training):

    - ``loss(output, batch, default)`` replaces the loss; ``default`` is the task loss
      (cross-entropy or LM NLL) already computed, so a hook can add to it or mix it;
    - ``after_step(step)`` runs after each optimizer step (e.g. re-apply pruning masks).
    """

    module: torch.nn.Module
    adapter: Adapter
    train_features: list[Feature]
    val_features: list[Feature]
    metric: str
    target: float | None = None
    train_examples: list[Example] | None = None
    augment: Callable[[list[Example], int], list[Example]] | None = None
    loss: Callable[[Any, dict[str, torch.Tensor], torch.Tensor], torch.Tensor] | None = None
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


def loss_of(output: Any, batch: dict[str, torch.Tensor], kind: str) -> torch.Tensor:
    """Cross-entropy for classification, mean next-token NLL for causal LM."""
    logits = logits_of(output)
    if kind == "lm":
        nll, count = lm_token_nll(logits, batch["labels"])
        return nll.sum() / count.sum().clamp(min=1)
    return F.cross_entropy(logits.float(), batch["labels"])


def metric_value(metric: str, outputs: Outputs) -> float:
    """Point value of ``metric`` (no bootstrap: validation only needs the number)."""
    if outputs.nll is not None:
        return perplexity(outputs.n_tokens, outputs.nll)
    return float(METRICS[metric].fn(outputs.labels, outputs.proba))


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
    local = predict(module, adapter, dist.shard(features), batch_size, device=device)
    if local.nll is not None:
        rows = list(zip(local.nll.tolist(), local.n_tokens.tolist(), strict=True))  # type: ignore[union-attr]
        allrows = dist.gather(rows, len(features))
        outputs = Outputs(nll=np.array([r[0] for r in allrows]), n_tokens=np.array([r[1] for r in allrows]))
    else:
        rows = list(zip(local.proba, local.labels, strict=True))  # type: ignore[arg-type]
        allrows = dist.gather(rows, len(features))
        outputs = Outputs(proba=np.stack([r[0] for r in allrows]), labels=np.array([r[1] for r in allrows]))
    return metric_value(metric, outputs)


def better(metric: str, value: float, best: float | None) -> bool:
    if best is None or math.isnan(best):
        return not math.isnan(value)
    return value > best if METRICS[metric].higher_is_better else value < best


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
    """Train ``inp.module`` in place; returns the history and the best state seen on validation."""
    from torch.utils.data import DistributedSampler

    dist = dist or DistContext()
    module = inp.module.to(device)
    model: torch.nn.Module = module
    if dist.distributed:
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [torch.device(device).index] if str(device).startswith("cuda") else None
        model = DistributedDataParallel(module, device_ids=device_ids)
    trainable = [p for p in module.parameters() if p.requires_grad]
    optimizer = make_optimizer(cfg.optimizer, module.named_parameters(), lr, cfg.weight_decay)
    per_rank = math.ceil(cfg.batch_size / dist.world)
    n = len(inp.train_features)
    sampler = DistributedSampler(
        range(n), num_replicas=dist.world, rank=dist.rank, shuffle=True, seed=cfg.seed, drop_last=False
    )
    steps_per_epoch = math.ceil(len(sampler) / per_rank)
    total = steps_per_epoch * cfg.num_epochs()
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    scheduler = make_scheduler(optimizer, warmup_steps(total, cfg.warmup_ratio), total)
    kind = inp.adapter.kind
    has_val = bool(inp.val_features)

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
            best_state = {k: v.detach().clone().cpu() for k, v in module.state_dict().items()}
        else:
            since_best += 1
        if target is not None and not target.reached and reached(inp.metric, value, target.target):
            target.reached, target.step, target.samples = True, step, samples
            target.seconds, target.flops, target.epoch = acct.elapsed(), acct.flops(samples), round(epoch_float, 4)
            if cfg.stop_at_target:
                return "target_reached"
        if cfg.patience is not None and since_best >= cfg.patience:
            return "early_stopping"
        return None

    done = False
    with progress_bar("training", total, progress) as bar:
        for epoch in range(cfg.num_epochs()):
            sampler.set_epoch(epoch)
            features = inp.train_features
            if inp.augment is not None and inp.train_examples is not None:
                features = inp.adapter.encode(inp.augment(inp.train_examples, epoch))
            order = list(sampler)
            for b in range(steps_per_epoch):
                chunk = [features[i] for i in order[b * per_rank : (b + 1) * per_rank]]
                if not chunk:
                    continue
                t0 = time.perf_counter()
                batch = {k: v.to(device) for k, v in inp.adapter.collate(chunk).items()}
                model.train()
                output = call_model(model, batch, inp.adapter.positional)
                loss = loss_of(output, batch, kind)
                if inp.loss is not None:
                    loss = inp.loss(output, batch, loss)
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
