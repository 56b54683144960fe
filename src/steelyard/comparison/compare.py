"""``compare``: weigh several models on one harness and recommend one under constraints.

Every candidate is loaded with the same :class:`InputSpec` (batch, sequence length, image size),
dtype, device and thread count, profiled with the same :class:`ProfileConfig`, and — when the
weights are real — timed again in interleaved rounds (A B A B …) so that the ratios between
candidates are fair even when the machine drifts. Each candidate is then projected onto every
hardware target (the :class:`CostReport` verdicts), and each (candidate, hardware) pair becomes
an :class:`Option` on which the Pareto front and the recommendation are computed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from steelyard.comparison.config import LABELS, OBJECTIVES, CompareConfig, objective_name
from steelyard.comparison.result import CandidateResult, Comparison, Option
from steelyard.errors import ConfigError
from steelyard.metrics import MetricValue
from steelyard.profiling.report import CostReport, Environment, HardwareVerdict, TrainingEstimate
from steelyard.search.pareto import Candidate, Constraint, Objective, Requirement, recommend
from steelyard.units import Bytes, Joules, KilowattHours, Seconds, Usd

Progress = Callable[[str], None]


def candidate_labels(models: Sequence[str]) -> list[str]:
    """Short unique names: the last path component (``runs/tiny-bert`` → ``tiny-bert``), numbered on a clash."""
    base = [Path(m.rstrip("/")).name or m for m in models]
    out: list[str] = []
    for i, name in enumerate(base):
        label = name if base.count(name) == 1 else f"{name}#{base[:i + 1].count(name)}"
        out.append(label)
    return out


def check_models(models: Sequence[str]) -> None:
    if len(models) < 2:
        shown = f" (got only '{models[0]}')" if models else ""
        raise ConfigError(f"compare needs at least two models{shown}; use `steelyard profile` to weigh one")
    seen: set[str] = set()
    for m in models:
        if m in seen:
            raise ConfigError(f"model '{m}' is listed twice")
        seen.add(m)


# -- evaluation adapter -----------------------------------------------------------------------
def evaluate_candidate(handle: Any, dataset: Any, cfg: CompareConfig) -> tuple[list[MetricValue], Any]:
    """Scores of ``handle`` on ``dataset``'s ``cfg.split`` through :func:`steelyard.evaluation.evaluate`, and
    its per-example outputs (for the paired tests between candidates).

    The one place compare touches the evaluation API. Text is truncated to the harness's sequence
    length, so every candidate sees the same tokens it was timed on.
    """
    from steelyard.evaluation import evaluate

    result = evaluate(handle, dataset, cfg.split, list(cfg.metrics) or None, max_examples=cfg.max_examples,
                      max_length=cfg.inputs.seq_len, tokenizer=cfg.tokenizer, progress=False)
    return list(result.metrics.values()), result.outputs


def paired_against_first(first: Any, other: Any, names: Sequence[str], task: str | None) -> dict[str, Any]:
    """Each metric of ``other`` against the first candidate on the same examples, with its paired test
    (McNemar for accuracy; :mod:`steelyard.significance`); empty when the examples do not line up (another
    tokenizer cut other LM blocks)."""
    import numpy as np

    from steelyard.significance import paired_changes

    if first is None or other is None or len(first) != len(other) or not len(first):
        return {}
    if first.labels is not None and (other.labels is None or not np.array_equal(first.labels, other.labels)):
        return {}
    if first.n_tokens is not None and (other.n_tokens is None or not np.array_equal(first.n_tokens, other.n_tokens)):
        return {}
    return paired_changes(names, first.labels, first.proba, other.proba, task=task, nll_before=first.nll,
                          nll_after=other.nll, n_tokens=first.n_tokens)


def load_data(cfg: CompareConfig) -> Any:
    from steelyard.data import load_dataset

    return load_dataset(cfg.data, cfg.task) if cfg.data else None


# -- options ------------------------------------------------------------------------------------
def _training_row(est: TrainingEstimate | None, hardware: str) -> Any:
    if est is None:
        return None
    return next((r for r in est.rows if r.hardware == hardware), None)


def build_option(c: CandidateResult, v: HardwareVerdict, cfg: CompareConfig) -> Option:
    report = c.report
    batch = report.input.batch_size
    latency = Seconds(float(v.projected_latency_per_batch))
    source = f"projected-{v.efficiency_source}-efficiency"
    energy = Joules(float(v.energy_per_sample))
    cost = v.cost_per_1k_samples
    if v.hardware == "local" and c.interleaved is not None:
        latency = Seconds(float(c.interleaved.median))
        source = "measured"
        if report.energy is not None:
            energy = Joules(float(report.energy.joules_per_sample))
    requests = cfg.requests_per_day * cfg.days
    serving = None if cost is None else Usd(float(cost) * requests / 1000)
    row = _training_row(c.training, v.hardware)
    if cfg.finetune_tokens == 0:
        ft_hours, ft_cost, ft_energy = 0.0, Usd(0.0), KilowattHours(0.0)
    elif row is None:
        ft_hours = ft_cost = ft_energy = None
    else:
        ft_hours, ft_cost, ft_energy = row.device_hours, row.cost, row.energy
    lifetime = None if serving is None or ft_cost is None else Usd(float(serving) + float(ft_cost))
    return Option(
        candidate=c.label,
        hardware=v.hardware,
        display_name=v.display_name,
        latency=latency,
        latency_source=source,
        throughput=batch / float(latency) if float(latency) > 0 else 0.0,
        memory=Bytes(float(v.inference_memory)),
        device_memory=Bytes(float(v.usable_memory)),
        fits_inference=v.fits_inference,
        fits_finetune=v.fits_finetune,
        devices_for_inference=v.devices_for_inference,
        cost_per_1k=cost,
        energy_per_inference=energy,
        finetune_hours=ft_hours,
        finetune_cost=ft_cost,
        finetune_energy=ft_energy,
        serving_cost=serving,
        lifetime_cost=lifetime,
        suggestions=list(v.suggestions),
    )


def option_values(option: Option, c: CandidateResult) -> dict[str, float | None]:
    score = c.score
    storage = c.report.storage.on_disk
    if storage is None:
        storage = Bytes(float(c.report.storage.parameters) + float(c.report.storage.buffers))
    return {
        "accuracy": None if score is None else score.value,
        "latency": float(option.latency),
        "cost_per_1k": None if option.cost_per_1k is None else float(option.cost_per_1k),
        "memory": float(option.memory),
        "throughput": option.throughput,
        "energy": float(option.energy_per_inference),
        "lifetime_cost": None if option.lifetime_cost is None else float(option.lifetime_cost),
        "storage": float(storage),
        "parameters": float(c.report.parameters.total),
    }


def pareto_candidates(options: list[Option], candidates: list[CandidateResult]) -> list[Candidate]:
    by_label = {c.label: c for c in candidates}
    out = []
    for o in options:
        c = by_label[o.candidate]
        intervals = {}
        if c.score is not None:
            intervals["accuracy"] = (c.score.ci_low, c.score.ci_high)
        blocker = None if o.fits_inference else Requirement(
            f"does not fit in {o.hardware} memory", "memory", float(o.memory), float(o.device_memory))
        out.append(Candidate(o.name, option_values(o, c), intervals, {"fits in memory": blocker}))
    return out


def objectives_for(cfg: CompareConfig, headline: MetricValue | None) -> list[Objective]:
    """The Pareto objectives; "accuracy" stands for the headline metric (perplexity is minimised)."""
    names = [objective_name(n) for n in cfg.objectives]
    names = list(dict.fromkeys(n for n in names if headline is not None or n != "accuracy"))
    if not names:
        names = ["latency"]
    out = []
    for n in names:
        if n == "accuracy" and headline is not None:
            out.append(Objective(n, "max" if headline.higher_is_better else "min", headline.name))
        else:
            out.append(Objective(n, OBJECTIVES[n], LABELS[n]))  # type: ignore[arg-type]
    return out


def constraints_for(cfg: CompareConfig) -> list[Constraint]:
    return [Constraint(m, k, b, label) for m, k, b, label in cfg.constraints.as_list()]  # type: ignore[arg-type]


def local_paths(models: Sequence[str], cfg: CompareConfig) -> dict[str, str]:
    """Each model or data argument that is a local path → its absolute path, so a reproduce command
    built later (:func:`steelyard.reporting.commands.compare_command`) runs from any folder."""
    given = [*models, *([cfg.data] if cfg.data else [])]
    out = {}
    for text in given:
        path = Path(text).expanduser()
        if path.exists():
            out[text] = str(path.resolve())
    return out


def compare(models: Sequence[str], cfg: CompareConfig | None = None, progress: Progress | None = None) -> Comparison:
    """Profile (and evaluate, with ``cfg.data``) every model on one harness; project, rank, recommend."""
    import torch

    from steelyard.environment import current_environment
    from steelyard.hardware import parse_hardware_list
    from steelyard.models.loading import LoadConfig, load_model
    from steelyard.profiling.interleaved import time_interleaved
    from steelyard.profiling.profile import ProfileConfig, profile
    from steelyard.profiling.training_cost import estimate_training

    cfg = cfg or CompareConfig()
    say = progress or (lambda _msg: None)
    models = list(models)
    check_models(models)
    hardware = parse_hardware_list(",".join(cfg.hardware))  # unknown names fail before any model loads
    labels = candidate_labels(models)
    threads = cfg.threads or torch.get_num_threads()
    dataset = None
    if cfg.data:
        say(f"loading data {cfg.data}")
        dataset = load_data(cfg)
    load_cfg = LoadConfig(task=cfg.task, config_only=cfg.config_only, dtype=cfg.dtype, device=cfg.device,
                          inputs=cfg.inputs)
    profile_cfg = ProfileConfig(hardware=tuple(h.name for h in hardware), measure=not cfg.config_only,
                                warmup=cfg.warmup, runs=cfg.runs, threads=threads)
    handles, results, outputs = [], [], []
    for model, label in zip(models, labels, strict=True):
        say(f"loading {model}")
        handle = load_model(model, load_cfg)
        say(f"profiling {label}")
        report: CostReport = profile(handle, profile_cfg)
        scores: list[MetricValue] = []
        if dataset is not None:
            say(f"evaluating {label} on {cfg.data}")
            scores, examples = evaluate_candidate(handle, dataset, cfg)
            outputs.append(examples)
        training = None
        # a runtime artifact (ONNX Runtime, OpenVINO) has no torch parameters: it serves, it does not train
        if cfg.finetune_tokens > 0 and any(p.requires_grad for p in handle.module.parameters()):
            say(f"counting a training step of {label}")
            training = estimate_training(handle, cfg.finetune_tokens, hardware, utilization=cfg.utilization,
                                         dtype=cfg.finetune_dtype)
        handles.append(handle)
        results.append(CandidateResult(label=label, model=model, report=report, scores=scores, training=training))
    if outputs:
        for r, examples in zip(results[1:], outputs[1:], strict=True):
            r.changes = paired_against_first(outputs[0], examples, [m.name for m in results[0].scores],
                                             dataset.task if dataset is not None else None)
    real = [h for h in handles if not h.on_meta]
    if cfg.interleave and len(real) == len(handles) and not cfg.config_only:
        say(f"timing {len(handles)} models interleaved ({cfg.runs} rounds)")
        timing = time_interleaved({r.label: h.forward for r, h in zip(results, handles, strict=True)},
                                  device=handles[0].device, warmup=cfg.warmup, rounds=cfg.runs, threads=threads,
                                  batch_size={r.label: r.report.input.batch_size for r in results})
        for r in results:
            r.interleaved = timing.stats[r.label]
            ratio = timing.speedups[r.label]
            r.speedup_vs_first, r.speedup_ci = ratio.ratio, (ratio.ci_low, ratio.ci_high)
    env = current_environment(str(handles[0].device) if not cfg.config_only else "meta")
    env.threads = threads
    return assemble(models, results, [h.name for h in hardware], cfg, env, threads)


def assemble(
    models: Sequence[str],
    results: list[CandidateResult],
    hardware: list[str],
    cfg: CompareConfig,
    environment: Environment,
    threads: int,
    created_at: str | None = None,
) -> Comparison:
    """From profiled (and scored) candidates: options per hardware, the Pareto front, the recommendation.

    Pure: no model runs here, so hand-made candidates give the same comparison every time. ``threads``
    (the count every timing used) is recorded in the environment.
    """
    options = [build_option(r, v, cfg) for r in results for v in r.report.hardware]
    headline = results[0].score if all(r.scores for r in results) else None
    if headline is not None and cfg.constraints.min_accuracy is not None and not headline.higher_is_better:
        raise ConfigError(f"--min-accuracy does not apply to {headline.name} (lower is better); choose a metric "
                          "where higher is better with --metric")
    objectives = objectives_for(cfg, headline)
    rec = recommend(pareto_candidates(options, results), objectives, constraints_for(cfg))
    return Comparison(
        config=cfg,
        candidates=results,
        hardware=hardware,
        options=options,
        objectives=objectives,
        recommendation=rec,
        environment=dataclasses.replace(environment, threads=threads),
        created_at=created_at or dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        paths=local_paths(models, cfg),
    )
