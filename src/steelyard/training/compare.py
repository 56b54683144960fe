"""``compare_optimizers``: what each optimizer costs to reach a target metric.

Same model, same data, same seed, same schedule; only the optimizer (and its learning rate)
changes. Each run validates often (by default four times per epoch) so the step at which the
target is first reached is measured with some resolution, and stops there. For head-only runs
the embeddings are computed once and every run is charged their cost.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from steelyard.data.dataset import TaskDataset
from steelyard.errors import ConfigError
from steelyard.metrics import MetricValue
from steelyard.models.handle import ModelHandle
from steelyard.models.loading import LoadConfig
from steelyard.serialize import to_dict
from steelyard.training.config import OPTIMIZERS, FinetuneConfig
from steelyard.training.features import FeatureCache, build_cache
from steelyard.training.finetune import finetune, objective, resolve_handle, with_validation
from steelyard.training.result import FinetuneResult
from steelyard.training.setup import prepare
from steelyard.units import Flops


@dataclass
class OptimizerRun:
    """One optimizer's row: cost to the target (None when not reached) and the final quality."""

    optimizer: str
    lr: float
    reached: bool
    steps_to_target: int | None
    samples_to_target: int | None
    seconds_to_target: float | None
    flops_to_target: Flops | None
    #: The part of ``flops_to_target`` spent in optimizer steps (without a one-off embedding pass),
    #: which is what differs between optimizers when a head trains on cached features.
    step_flops_to_target: Flops | None
    best_validation: float
    test: MetricValue | None
    steps: int
    seconds: float
    stopped: str


@dataclass
class OptimizerComparison:
    model: str
    dataset: str
    metric: str
    target: float
    mode: str
    rows: list[OptimizerRun]
    runs: list[FinetuneResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = {k: to_dict(v) for k, v in vars(self).items() if k != "runs"}
        data["runs"] = [r.to_dict() for r in self.runs]
        return data

    def fastest(self) -> list[OptimizerRun]:
        """The optimizers that reached the target with the fewest counted FLOPs (several on a tie)."""
        done = [r for r in self.rows if r.reached and r.flops_to_target is not None]
        if not done:
            return []
        least = min(float(r.flops_to_target or 0) for r in done)
        return [r for r in done if math.isclose(float(r.flops_to_target or 0), least, rel_tol=1e-9)]


def parse_optimizers(text: str | Sequence[str]) -> list[str]:
    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if not names:
        raise ConfigError(f"no optimizers given; choose from {', '.join(OPTIMIZERS)}")
    bad = [n for n in names if n not in OPTIMIZERS]
    if bad:
        raise ConfigError(f"unknown optimizer {bad[0]!r}; choose from {', '.join(OPTIMIZERS)}")
    return list(dict.fromkeys(names))


def default_eval_every(n_train: int, cfg: FinetuneConfig, per_epoch: int = 4) -> int:
    steps = math.ceil(n_train / cfg.batch_size)
    return max(1, steps // per_epoch)


def compare_optimizers(
    model: ModelHandle | str,
    dataset: TaskDataset,
    optimizers: Sequence[str],
    config: FinetuneConfig,
    *,
    lrs: dict[str, float] | None = None,
    load: LoadConfig | None = None,
) -> OptimizerComparison:
    """Fine-tune once per optimizer and tabulate the cost of reaching ``config.target``.

    ``lrs`` sets a learning rate per optimizer; otherwise ``config.lr`` is used for all, or, when
    it is None, each optimizer's default (:data:`~steelyard.training.config.DEFAULT_LR`).
    """
    names = parse_optimizers(optimizers)
    if config.target is None:
        raise ConfigError("compare-optimizers needs a target metric, for example --target-metric accuracy=0.9")
    metric, target = objective(config, dataset.task)
    assert target is not None
    handle = resolve_handle(model, load)
    ds, notes = with_validation(dataset, config.seed)
    base = config
    if base.eval_every is None:
        base = replace(base, eval_every=default_eval_every(len(ds.train), base))
    base = replace(base, stop_at_target=True)
    cache: FeatureCache | None = None
    mode = "full"
    if base.nproc == 1:
        prep = prepare(handle, ds, base)
        mode = prep.mode
        if prep.mode == "head-only":
            assert prep.encoder is not None
            from steelyard.evaluation.progress import progress_enabled
            from steelyard.training.dist import DistContext

            splits = {"train": ds.train, "validation": ds.validation, "test": ds.test}
            cache = build_cache(prep.encoder, prep.adapter, splits, base.eval_batch_size, DistContext(),
                                progress=progress_enabled(base.progress))
            notes.append(f"embeddings computed once in {cache.seconds:.1f} s; every run is charged that time "
                         "and the embedding FLOPs")
    rows: list[OptimizerRun] = []
    runs: list[FinetuneResult] = []
    for name in names:
        lr = (lrs or {}).get(name, base.lr)
        cfg = replace(base, optimizer=name, lr=lr)
        result = finetune(handle, ds, cfg, cache=cache)
        result.trained = None  # keep the numbers, not one model per optimizer in memory
        mode = result.mode
        t = result.target
        rows.append(OptimizerRun(
            optimizer=name,
            lr=result.lr,
            reached=bool(t and t.reached),
            steps_to_target=t.step if t else None,
            samples_to_target=t.samples if t else None,
            seconds_to_target=t.seconds if t else None,
            flops_to_target=t.flops if t else None,
            step_flops_to_target=Flops(float(t.flops) - float(result.cost.feature_flops))
            if t is not None and t.flops is not None else None,
            best_validation=result.best_validation,
            test=result.test.get(metric),
            steps=result.cost.steps,
            seconds=result.seconds,
            stopped=result.stopped,
        ))
        runs.append(result)
    return OptimizerComparison(handle.name, ds.name, metric, target, mode, rows, runs, notes)
