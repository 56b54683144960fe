"""``compare``: weigh several models on one harness and recommend one under constraints.

Every candidate is loaded with the same :class:`InputSpec` (batch, sequence length, image size),
dtype, device and thread count, profiled with the same :class:`ProfileConfig`, and — when the
weights are real — timed again in interleaved rounds (A B A B …) so that the ratios between
candidates are fair even when the machine drifts. Each candidate is then projected onto every
hardware target (the :class:`CostReport` verdicts), and each (candidate, hardware) pair becomes
an :class:`Option` on which the Pareto front and the recommendation are computed.
"""

from __future__ import annotations

import datetime as dt
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from steelyard.comparison.config import LABELS, OBJECTIVES, CompareConfig, objective_name
from steelyard.comparison.result import CandidateResult, Comparison, Option
from steelyard.errors import ConfigError
from steelyard.metrics import MetricValue
from steelyard.profiling.report import CostReport, Environment, HardwareVerdict, TrainingEstimate
from steelyard.search.pareto import Candidate, Constraint, Objective, recommend
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
def evaluate_candidate(handle: Any, dataset: Any, cfg: CompareConfig) -> list[MetricValue]:
    """Scores of ``handle`` on ``dataset``'s ``cfg.split`` through :func:`steelyard.evaluation.evaluate`.

    The one place compare touches the evaluation API. Text is truncated to the harness's sequence
    length, so every candidate sees the same tokens it was timed on.
    """
    from steelyard.evaluation import evaluate

    result = evaluate(handle, dataset, cfg.split, list(cfg.metrics) or None, max_examples=cfg.max_examples,
                      max_length=cfg.inputs.seq_len, tokenizer=cfg.tokenizer, progress=False)
    return list(result.metrics.values())


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
    latency = Seconds(float(v.projected_latency))
    source = f"projected-{v.efficiency_source}-efficiency"
    energy = Joules(float(v.energy_per_inference) / batch)
    cost = v.cost_per_1k_inferences
    if v.hardware == "local" and c.interleaved is not None:
        latency = Seconds(float(c.interleaved.median))
        source = "measured"
        if report.energy is not None:
            energy = Joules(float(report.energy.joules_per_inference) / batch)
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
        blocker = None
        if not o.fits_inference:
            blocker = (f"does not fit in {o.hardware} memory ({_gib(o.memory)} needed, {_gib(o.device_memory)} "
                       "usable)")
        out.append(Candidate(o.name, option_values(o, c), intervals, {"fits in memory": blocker}))
    return out


def _gib(b: float) -> str:
    from steelyard.reporting.formatting import fmt

    return fmt(Bytes(b))


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


def value_formatter(metric: str, value: float) -> str:
    from steelyard.reporting.formatting import fmt, fmt_amount, fmt_count, fmt_seconds, human

    if metric == "latency":
        return fmt_seconds(value)
    if metric in ("memory", "storage"):
        return fmt(Bytes(value))
    if metric in ("cost_per_1k", "lifetime_cost"):
        return fmt_amount(value, prefix="$")
    if metric == "accuracy":
        return f"{value:.3f}"
    if metric == "energy":
        return human(value, "J")
    if metric == "throughput":
        return f"{value:.3g}/s"
    if metric == "parameters":
        return fmt_count(value)
    return f"{value:.4g}"


# -- the command ---------------------------------------------------------------------------------
def reproduce_command(models: Sequence[str], cfg: CompareConfig) -> str:
    """The CLI call that runs this comparison again (same harness, constraints and volume)."""
    from steelyard.reporting.formatting import fmt_seconds

    args = ["steelyard", "compare", *(_path_or_name(m) for m in models), "--hardware", ",".join(cfg.hardware),
            "--batch-size", str(cfg.inputs.batch_size), "--seq-len", str(cfg.inputs.seq_len)]
    if cfg.inputs.image_size:
        args += ["--image-size", str(cfg.inputs.image_size)]
    if cfg.task:
        args += ["--task", cfg.task]
    if cfg.dtype != "float32":
        args += ["--dtype", cfg.dtype]
    if cfg.device != "cpu":
        args += ["--device", cfg.device]
    if cfg.config_only:
        args.append("--config-only")
    else:
        args += ["--runs", str(cfg.runs), "--warmup", str(cfg.warmup)]
        if cfg.threads:
            args += ["--threads", str(cfg.threads)]
        if not cfg.interleave:
            args.append("--no-interleave")
    if cfg.data:
        args += ["--data", _path_or_name(cfg.data), "--split", cfg.split]
        for m in cfg.metrics:
            args += ["--metric", m]
        if cfg.tokenizer:
            args += ["--tokenizer", cfg.tokenizer]
        if cfg.max_examples:
            args += ["--max-examples", str(cfg.max_examples)]
    k = cfg.constraints
    if k.max_latency is not None:
        args += ["--max-latency", fmt_seconds(float(k.max_latency)).replace(" ", "").replace("µs", "us")]
    if k.max_memory is not None:
        args += ["--max-memory", _bytes_text(float(k.max_memory))]
    if k.min_accuracy is not None:
        args += ["--min-accuracy", f"{k.min_accuracy:g}"]
    if k.max_cost_per_1k is not None:
        args += ["--max-cost-per-1k", f"{float(k.max_cost_per_1k):g}"]
    args += ["--objectives", ",".join(cfg.objectives), "--requests-per-day", _count_text(cfg.requests_per_day),
             "--days", f"{cfg.days:g}", "--finetune-tokens", _count_text(cfg.finetune_tokens),
             "--utilization", f"{cfg.utilization:g}"]
    return shlex.join(args)


def _path_or_name(text: str) -> str:
    """Local paths made absolute so the command works from any folder; names unchanged."""
    path = Path(text).expanduser()
    return str(path.resolve()) if path.exists() else text


def _bytes_text(n: float) -> str:
    for unit, size in (("TiB", 2.0**40), ("GiB", 2.0**30), ("MiB", 2.0**20), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= size and (n / size) == round(n / size, 3):
            return f"{n / size:g}{unit}"
    return f"{n:.0f}B"


def _count_text(n: float) -> str:
    for suffix, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size and (n / size) == round(n / size, 3):
            return f"{n / size:g}{suffix}"
    return f"{n:g}"


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
    handles, results = [], []
    for model, label in zip(models, labels, strict=True):
        say(f"loading {model}")
        handle = load_model(model, load_cfg)
        say(f"profiling {label}")
        report: CostReport = profile(handle, profile_cfg)
        scores: list[MetricValue] = []
        if dataset is not None:
            say(f"evaluating {label} on {cfg.data}")
            scores = evaluate_candidate(handle, dataset, cfg)
        training = None
        # a runtime artifact (ONNX Runtime, OpenVINO) has no torch parameters: it serves, it does not train
        if cfg.finetune_tokens > 0 and any(p.requires_grad for p in handle.module.parameters()):
            say(f"counting a training step of {label}")
            training = estimate_training(handle, cfg.finetune_tokens, hardware, utilization=cfg.utilization,
                                         dtype=cfg.finetune_dtype)
        handles.append(handle)
        results.append(CandidateResult(label=label, model=model, report=report, scores=scores, training=training))
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

    Pure: no model runs here, so hand-made candidates give the same comparison every time.
    """
    options = [build_option(r, v, cfg) for r in results for v in r.report.hardware]
    headline = results[0].score if all(r.scores for r in results) else None
    if headline is not None and cfg.constraints.min_accuracy is not None and not headline.higher_is_better:
        raise ConfigError(f"--min-accuracy does not apply to {headline.name} (lower is better); choose a metric "
                          "where higher is better with --metric")
    objectives = objectives_for(cfg, headline)
    rec = recommend(pareto_candidates(options, results), objectives, constraints_for(cfg),
                    formatter=value_formatter)
    return Comparison(
        config=cfg,
        candidates=results,
        hardware=hardware,
        options=options,
        objectives=objectives,
        recommendation=rec,
        environment=environment,
        created_at=created_at or dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        command=reproduce_command(models, cfg),
        assumptions=_assumptions(cfg, threads, results),
    )


def _assumptions(cfg: CompareConfig, threads: int, results: list[CandidateResult]) -> list[str]:
    spec = cfg.inputs
    out = [
        f"one harness: batch {spec.batch_size}, sequence length {spec.seq_len}"
        + (f", image {spec.image_size}px" if spec.image_size else "")
        + f", {cfg.dtype}, {threads} thread(s), device {cfg.device}",
    ]
    if cfg.config_only:
        out.append("config only: nothing was timed; every latency is a roofline projection at an assumed efficiency")
    elif cfg.interleave:
        out.append(f"local latency: median of {cfg.runs} interleaved rounds (A B A B …) after {cfg.warmup} warm-up "
                   "calls each; other hardware: roofline projections (catalog figures)")
    out.append("throughput = batch / latency at the harness batch; energy and $ per single inference "
               "(batch cost divided by the batch)")
    out.append("options that do not fit a device's usable memory are never recommended")
    if cfg.data:
        names = ", ".join(s.name for s in results[0].scores) or ", ".join(cfg.metrics)
        out.append(f"quality: {names} on the '{cfg.split}' split of {cfg.data} (text cut to {spec.seq_len} tokens), "
                   "95% bootstrap interval; the first is the headline column")
    tokens = f"{cfg.finetune_tokens:,.0f} tokens (samples for vision)" if cfg.finetune_tokens else "no fine-tuning"
    out.append(f"lifetime cost = fine-tuning on {tokens} at {cfg.utilization:.0%} utilisation of the "
               f"{cfg.finetune_dtype} peak + serving {cfg.requests_per_day:,.0f} requests/day for {cfg.days:g} days "
               "at the on-demand price; hardware without a price has no $ figure")
    return out
