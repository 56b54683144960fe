"""Turn typed results into store rows (config, environment, payload, headline metrics, provenance).

Every headline number is named from one table (:data:`METRIC_NAMES`, :func:`named`), whatever the
run kind: a profile, a compression, an evaluation and a study's answer all call the median latency
``latency_median_s`` and the test accuracy ``accuracy``, so ``runs diff`` and ``runs list`` line
them up. The numbers of the model a run measured or produced are plain; a second model's carry a
prefix (``before.`` in a compression, ``teacher.`` in a distillation, ``cost.`` for the cost card of
an evaluation, ``<candidate>@<hardware>.`` in a comparison).

Every ``record_*`` function takes ``labels`` (the run's name and tags) and stores the run's
provenance (:mod:`steelyard.store.provenance`: model revision, dataset fingerprint, git commit of
the working directory, steelyard version). Configs are stored as they were *used*: a field left
to the code (``epochs=None``: "the default for the mode") is written with the value it took.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from steelyard.profiling.report import CostReport, TrainingEstimate
from steelyard.serialize import to_dict
from steelyard.store.provenance import run_provenance
from steelyard.store.runs import RunLabels, open_store

#: The one name of each headline quantity → its unit (None: a count or a ratio). A metric row's last
#: dotted part is one of these, or a task metric (``accuracy``, ``f1`` ... with ``.ci_low`` / ``.ci_high``).
METRIC_NAMES: dict[str, str | None] = {
    "parameters": None, "flops": "FLOP", "macs": "MAC", "other_flops": "FLOP", "bytes_moved": "B",
    "weights_bytes": "B", "peak_activation_bytes": "B", "training_memory_bytes": "B", "peak_memory_bytes": "B",
    "memory_bytes": "B", "latency_median_s": "s", "latency_p90_s": "s", "latency_cv": None, "latency_per_batch_s": "s",
    "throughput_samples_per_s": "1/s", "energy_per_batch_j": "J", "ttft_s": "s", "tpot_s": "s",
    "speedup": None, "size_ratio": None, "flops_ratio": None, "params_ratio": None, "latency_ratio": None,
    "metric_drop_points": None, "seconds": "s", "training_flops": "FLOP", "total_flops": "FLOP", "steps": None,
    "examples": None, "device_hours": "h", "usd_per_day": "$", "cost_per_1k_usd": "$", "lifetime_cost_usd": "$",
    "decode_tokens_per_s": "1/s", "decode_speedup": None, "kv_bytes_per_token": "B", "greedy_agreement": None,
}
#: Other names the same quantities go by (search objectives, earlier recorders) → the one name.
METRIC_ALIASES: dict[str, str] = {
    "params": "parameters", "params_after": "parameters", "params_before": "before.parameters",
    "size": "weights_bytes", "bytes_after": "weights_bytes", "bytes_before": "before.weights_bytes",
    "latency_s": "latency_median_s", "latency_before_s": "before.latency_median_s",
    "latency_interleaved_s": "latency_median_s", "latency": "latency_ratio", "ttft": "ttft_s", "tpot": "tpot_s",
    "acc": "accuracy",
}
#: Units written differently in different places → the one spelling.
UNIT_ALIASES = {"USD": "$", "usd": "$", "sec": "s", "bytes": "B"}


def metric_name(name: str) -> str:
    """The store's name for ``name``: its last dotted part through :data:`METRIC_ALIASES`."""
    head, _, last = name.rpartition(".")
    last = METRIC_ALIASES.get(last, last)
    return f"{head}.{last}" if head else last


def named(metrics: dict[str, tuple[float | None, str | None]]) -> dict[str, tuple[float | None, str | None]]:
    """``metrics`` under their one name (:data:`METRIC_NAMES`), a missing unit filled from the table (a
    given one is kept: relabelling is not converting); the first of two rows that map to the same name
    wins, so a recorder's own plain name is never overwritten by an alias."""
    out: dict[str, tuple[float | None, str | None]] = {}
    for name, (value, unit) in metrics.items():
        key = metric_name(name)[:128]
        unit = UNIT_ALIASES.get(unit, unit) if unit else unit
        out.setdefault(key, (value, unit or METRIC_NAMES.get(key.rpartition(".")[2])))
    return out


def latency_rows(prefix: str, stats: Any) -> dict[str, tuple[float | None, str | None]]:
    """The median, p90 and CV of a :class:`~steelyard.profiling.report.LatencyStats` as metric rows."""
    return {f"{prefix}latency_median_s": (float(stats.median), "s"), f"{prefix}latency_p90_s": (float(stats.p90), "s"),
            f"{prefix}latency_cv": (float(stats.cv), None)}


def generation_rows(prefix: str, card: Any) -> dict[str, tuple[float | None, str | None]]:
    """A causal LM's generative rows of a compression (:class:`~steelyard.compression.recipe.generation.
    GenerationCard`): KV bytes per token, greedy agreement, and per decode batch ``batch<B>.``: tokens/s,
    TTFT, TPOT and (compressed model) the decode speedup, so ``runs diff`` lines up two recipes' decode."""
    rows: dict[str, tuple[float | None, str | None]] = {f"{prefix}kv_bytes_per_token": (float(card.kv_bytes_per_token),
                                                                                         "B")}
    if card.agreement is not None and not prefix:
        rows["greedy_agreement"] = (float(card.agreement), None)
    for run in card.runs:
        at = f"{prefix}batch{run.batch}."
        if run.tokens_per_second is not None:
            rows[f"{at}decode_tokens_per_s"] = (float(run.tokens_per_second), "1/s")
        if run.ttft is not None:
            rows[f"{at}ttft_s"] = (float(run.ttft), "s")
        if run.tpot is not None:
            rows[f"{at}tpot_s"] = (float(run.tpot), "s")
        if run.speedup is not None:
            rows[f"{at}decode_speedup"] = (float(run.speedup.ratio), None)
    return rows


def resolved(cfg: Any, result: Any = None, data: Any = None) -> Any:
    """``cfg`` with the defaults it leaves open filled in as the run used them.

    A :class:`~steelyard.training.config.FinetuneConfig` gets its epochs and learning rate (the
    result's, else the config's own rule) and the metric that decided early stopping; a config
    that holds one (``DistillConfig.train``) gets it resolved too; a
    :class:`~steelyard.data.options.DataOptions` gets the task of the data it loaded. (A profile's
    ``LoadConfig`` keeps ``task`` / ``dtype`` None as asked: "the model's own", which its payload
    states, and which its reproduce command should keep asking for.)
    """
    from steelyard.data.options import DataOptions
    from steelyard.training.config import FinetuneConfig

    if isinstance(cfg, FinetuneConfig):
        lr = getattr(result, "lr", None)
        metric = getattr(result, "metric", None)
        return dataclasses.replace(cfg, epochs=cfg.num_epochs(),
                                   lr=float(lr) if isinstance(lr, (int, float)) else cfg.learning_rate(),
                                   metric=cfg.metric or (metric if isinstance(metric, str) else None))
    if isinstance(cfg, DataOptions):
        task = cfg.task or getattr(data, "task", None) or getattr(result, "task", None)
        return dataclasses.replace(cfg, task=task if isinstance(task, str) else None)
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        nested = {f.name: resolved(getattr(cfg, f.name), result, data) for f in dataclasses.fields(cfg)
                  if isinstance(getattr(cfg, f.name), FinetuneConfig)}
        if nested:
            return dataclasses.replace(cfg, **nested)
    return cfg


def _config_dict(*configs: Any, result: Any = None, data: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for cfg in configs:
        cfg = resolved(cfg, result, data)
        out[type(cfg).__name__] = to_dict(cfg) if dataclasses.is_dataclass(cfg) else cfg
    return out


def _with_command(config: dict[str, Any], command: str | None) -> dict[str, Any]:
    """The config with the command line that reruns the run (what ``runs show`` prints), when there is one."""
    return {**config, "command": command} if command else config


def _provenance(models: Iterable[str | None], data: Any = None) -> dict[str, Any]:
    return run_provenance([m for m in models if m], data)


def profile_metrics(report: CostReport) -> dict[str, tuple[float | None, str | None]]:
    m: dict[str, tuple[float | None, str | None]] = {
        "parameters": (float(report.parameters.total), None),
        "flops": (float(report.compute.flops), "FLOP"),
        "macs": (float(report.compute.macs), "MAC"),
        "other_flops": (float(report.compute.other_flops), "FLOP"),
        "bytes_moved": (float(report.compute.bytes_moved), "B"),
        "weights_bytes": (float(report.memory.weights), "B"),
        "peak_activation_bytes": (float(report.memory.peak_activations), "B"),
    }
    if report.memory.training is not None:
        m["training_memory_bytes"] = (float(report.memory.training.total), "B")
    if report.measured is not None:
        m.update(latency_rows("", report.measured.latency))
        m["peak_memory_bytes"] = (float(report.measured.peak_memory), "B")
        best = max(report.measured.throughput, key=lambda p: p.samples_per_second)
        m["throughput_samples_per_s"] = (best.samples_per_second, "1/s")
    if report.energy is not None:
        m["energy_per_batch_j"] = (float(report.energy.joules_per_batch), "J")
    return m


def record_profile(report: CostReport, configs: list[Any], store_url: str | None = None, *,
                   labels: RunLabels | None = None, command: str | None = None) -> tuple[int, str]:
    """Save a profile; returns the run id and the store URL it went to."""
    store = open_store(store_url)
    run_id = store.save_run(
        "profile",
        report.model,
        config=_with_command(_config_dict(*configs, result=report), command),
        environment=to_dict(report.environment),
        payload=report.to_dict(),
        metrics=named(profile_metrics(report)),
        labels=labels,
        provenance=_provenance([report.model]),
    )
    return run_id, store.url


def record_estimate(
    model: str, est: TrainingEstimate, configs: list[Any], store_url: str | None = None, *,
    labels: RunLabels | None = None, command: str | None = None, options: dict[str, Any] | None = None,
) -> tuple[int, str]:
    """Save a training estimate; ``options``: the estimate's own settings (tokens, hardware, utilisation ...)."""
    from steelyard.environment import current_environment

    store = open_store(store_url)
    metrics: dict[str, tuple[float | None, str | None]] = {
        f"{r.hardware}.device_hours": (r.device_hours, "h") for r in est.rows
    }
    metrics["total_flops"] = (float(est.total_flops), "FLOP")
    run_id = store.save_run(
        "estimate",
        model,
        config=_with_command(_config_dict(*configs) | ({"estimate": options} if options else {}), command),
        environment=to_dict(current_environment()),
        payload=to_dict(est),
        metrics=named(metrics),
        labels=labels,
        provenance=_provenance([model]),
    )
    return run_id, store.url


def comparison_metrics(comparison: Any) -> dict[str, tuple[float | None, str | None]]:
    """Headline numbers of every (candidate, hardware) option, as ``<candidate>@<hardware>.<metric>`` rows."""
    m: dict[str, tuple[float | None, str | None]] = {}
    for c in comparison.candidates:
        if c.score is not None:
            m[f"{c.label}.{c.score.name}"[:128]] = (c.score.value, None)
        m[f"{c.label}.parameters"[:128]] = (float(c.report.parameters.total), None)
        m[f"{c.label}.flops"[:128]] = (float(c.report.compute.flops), "FLOP")
        if c.interleaved is not None:
            m[f"{c.label}.latency_median_s"[:128]] = (float(c.interleaved.median), "s")
    for o in comparison.options:
        key = f"{o.candidate}@{o.hardware}"
        m[f"{key}.latency_per_batch_s"[:128]] = (float(o.latency), "s")  # measured or projected
        m[f"{key}.memory_bytes"[:128]] = (float(o.memory), "B")
        m[f"{key}.fits_inference"[:128]] = (1.0 if o.fits_inference else 0.0, None)
        if o.cost_per_1k is not None:
            m[f"{key}.cost_per_1k_usd"[:128]] = (float(o.cost_per_1k), "$")
        if o.lifetime_cost is not None:
            m[f"{key}.lifetime_cost_usd"[:128]] = (float(o.lifetime_cost), "$")
    return m


def record_comparison(comparison: Any, store_url: str | None = None, command: str | None = None, *,
                      labels: RunLabels | None = None) -> tuple[int, str]:
    """Save a :class:`~steelyard.comparison.Comparison` as a run of kind "comparison" (``command``: how to rerun it)."""
    store = open_store(store_url)
    run_id = store.save_run(
        "comparison",
        " vs ".join(c.label for c in comparison.candidates),
        config=_config_dict(comparison.config) | {"models": [c.model for c in comparison.candidates],
                                                  "command": command},
        environment=to_dict(comparison.environment),
        payload=comparison.to_dict(),
        metrics=named(comparison_metrics(comparison)),
        labels=labels,
        provenance=_provenance([c.model for c in comparison.candidates]),
    )
    return run_id, store.url


def record_serving(rec: Any, models: list[str], store_url: str | None = None, *,
                   labels: RunLabels | None = None, command: str | None = None) -> tuple[int, str]:
    """Save a ``compare --workload`` :class:`~steelyard.comparison.workload.Recommendation` (kind "serving")."""
    from steelyard.environment import current_environment

    store = open_store(store_url)
    best = rec.best
    metrics: dict[str, tuple[float | None, str | None]] = {"options_considered": (float(rec.considered), None),
                                                           "options_feasible": (float(len(rec.feasible)), None)}
    if best is not None:
        metrics |= {"ttft_s": (float(best.ttft), "s"), "tpot_s": (float(best.tpot), "s"),
                    "batch": (float(best.batch), None), "devices": (float(best.devices), None)}
        if best.usd_per_day is not None:
            metrics["usd_per_day"] = (float(best.usd_per_day), "$")
    config = _with_command({"models": models, **to_dict(rec.workload), "limits": to_dict(rec.limits)}, command)
    run_id = store.save_run("serving", " vs ".join(models), config=config,
                            environment=to_dict(current_environment()), payload=to_dict(rec), metrics=named(metrics),
                            labels=labels, provenance=_provenance(models))
    return run_id, store.url


# --- quality runs: evaluate, finetune, compare-optimizers, data-needs ---------------------------


def metric_rows(prefix: str, values: dict[str, Any]) -> dict[str, tuple[float | None, str | None]]:
    """``accuracy`` → rows ``{prefix}accuracy``, ``…ci_low``, ``…ci_high`` from MetricValue-likes."""
    out: dict[str, tuple[float | None, str | None]] = {}
    for name, mv in values.items():
        out[f"{prefix}{name}"] = (float(mv.value), None)
        out[f"{prefix}{name}.ci_low"] = (float(mv.ci_low), None)
        out[f"{prefix}{name}.ci_high"] = (float(mv.ci_high), None)
    return out


def record_quality_run(
    kind: str,
    model: str,
    result: Any,
    configs: list[Any],
    metrics: dict[str, tuple[float | None, str | None]],
    cost_card: CostReport | None = None,
    store_url: str | None = None,
    device: str = "cpu",
    *,
    labels: RunLabels | None = None,
    data: Any = None,
    models: Iterable[str | None] | None = None,
    command: str | None = None,
) -> tuple[int, str]:
    """Save an evaluation or training run: its result, config, environment and the model's cost card.

    ``data``: the TaskDataset (or DataOptions) the run used, fingerprinted; ``models``: the sources
    whose revision is recorded (default ``model``; a training run adds the folder it wrote).
    """
    from steelyard.environment import current_environment

    store = open_store(store_url)
    payload: dict[str, Any] = {"result": result.to_dict() if hasattr(result, "to_dict") else to_dict(result)}
    if cost_card is not None:
        payload["cost_card"] = cost_card.to_dict()
        metrics = {**metrics, **{f"cost.{k}": v for k, v in profile_metrics(cost_card).items()}}
    run_id = store.save_run(
        kind,
        model,
        config=_with_command(_config_dict(*configs, result=result, data=data), command),
        environment=to_dict(current_environment(device)),
        payload=payload,
        metrics=named(metrics),
        labels=labels,
        provenance=_provenance([model] if models is None else models, data),
    )
    return run_id, store.url


def record_evaluation(result: Any, configs: list[Any], cost_card: CostReport | None = None,
                      store_url: str | None = None, *, labels: RunLabels | None = None,
                      data: Any = None, command: str | None = None) -> tuple[int, str]:
    metrics = metric_rows("", result.metrics)
    metrics["examples"] = (float(result.n), None)
    metrics["seconds"] = (float(result.seconds), "s")
    return record_quality_run("evaluate", result.model, result, configs, metrics, cost_card, store_url,
                              labels=labels, data=data, command=command)


def record_finetune(result: Any, configs: list[Any], cost_card: CostReport | None = None,
                    store_url: str | None = None, *, labels: RunLabels | None = None,
                    data: Any = None, command: str | None = None) -> tuple[int, str]:
    metrics = metric_rows("", result.test)  # test scores are plain, as evaluate and distill record them
    metrics["best_validation"] = (float(result.best_validation), None)
    metrics["seconds"] = (float(result.seconds), "s")
    metrics["training_flops"] = (float(result.cost.total_flops), "FLOP")
    metrics["steps"] = (float(result.cost.steps), None)
    if result.target is not None and result.target.reached:
        metrics["target.steps"] = (float(result.target.step), None)
        metrics["target.samples"] = (float(result.target.samples), None)
        metrics["target.seconds"] = (float(result.target.seconds), "s")
        metrics["target.flops"] = (float(result.target.flops), "FLOP")
    return record_quality_run("finetune", result.model, result, configs, metrics, cost_card, store_url,
                              device=result.config.device, labels=labels, data=data, command=command,
                              models=[result.model, result.output])


def record_optimizer_comparison(comparison: Any, configs: list[Any], cost_card: CostReport | None = None,
                                store_url: str | None = None, *, labels: RunLabels | None = None,
                                data: Any = None, command: str | None = None) -> tuple[int, str]:
    metrics: dict[str, tuple[float | None, str | None]] = {}
    for row in comparison.rows:
        metrics[f"{row.optimizer}.reached"] = (1.0 if row.reached else 0.0, None)
        if row.flops_to_target is not None:
            metrics[f"{row.optimizer}.flops_to_target"] = (float(row.flops_to_target), "FLOP")
            metrics[f"{row.optimizer}.seconds_to_target"] = (float(row.seconds_to_target), "s")
            metrics[f"{row.optimizer}.steps_to_target"] = (float(row.steps_to_target), None)
        if row.test is not None:
            metrics[f"{row.optimizer}.test.{comparison.metric}"] = (float(row.test.value), None)
    return record_quality_run("compare-optimizers", comparison.model, comparison, configs, metrics, cost_card,
                              store_url, labels=labels, data=data, command=command)


def record_data_needs(needs: Any, configs: list[Any], cost_card: CostReport | None = None,
                      store_url: str | None = None, *, labels: RunLabels | None = None,
                      data: Any = None, command: str | None = None) -> tuple[int, str]:
    metrics: dict[str, tuple[float | None, str | None]] = {
        f"curve.{p.size}.{p.repeat}": (float(p.value), None) for p in needs.points
    }
    metrics["needed_examples"] = (float(needs.needed) if needs.needed is not None else None, None)
    if needs.fit is not None:
        for name in ("a", "b", "c"):
            metrics[f"fit.{name}"] = (float(getattr(needs.fit, name)), None)
    return record_quality_run("data-needs", needs.model, needs, configs, metrics, cost_card, store_url,
                              labels=labels, data=data, command=command)


def record_compression(result: Any, configs: list[Any], command: str | None = None,
                       store_url: str | None = None, *, labels: RunLabels | None = None,
                       data: Any = None) -> tuple[int, str]:
    """Save a recipe run (kind "compression"): before / after cards, steps and headline ratios."""
    from steelyard.environment import current_environment

    payload = result.to_dict()
    metrics: dict[str, tuple[float | None, str | None]] = {}
    for prefix, card in (("", result.after), ("before.", result.before)):  # plain: the compressed model
        metrics[f"{prefix}parameters"] = (float(card.params), None)
        metrics[f"{prefix}weights_bytes"] = (float(card.bytes), "B")
        if card.flops is not None:
            metrics[f"{prefix}flops"] = (float(card.flops), "FLOP")
        if card.latency is not None:
            metrics.update(latency_rows(prefix, card.latency))
        if card.generation is not None:
            metrics.update(generation_rows(prefix, card.generation))
    metrics["size_ratio"] = (result.size_ratio, None)
    metrics["seconds"] = (result.seconds, "s")
    if result.speedup is not None:
        metrics["speedup"] = (result.speedup, None)
    if result.flops_ratio is not None:
        metrics["flops_ratio"] = (result.flops_ratio, None)
    if result.metric_drop is not None:
        metrics["metric_drop_points"] = (result.metric_drop, None)
        metrics.update(metric_rows("", result.after.metrics))
        metrics.update(metric_rows("before.", result.before.metrics))
    config = _config_dict(*[c for c in configs if not isinstance(c, str)], result=result, data=data)
    config["recipe"] = result.recipe
    if command:
        config["command"] = command
    store = open_store(store_url)
    run_id = store.save_run("compression", result.model, config=config,
                            environment=to_dict(current_environment("cpu")), payload=payload, metrics=named(metrics),
                            labels=labels, provenance=_provenance([result.model, result.output], data))
    return run_id, store.url


def record_distillation(result: Any, configs: list[Any], cost_card: CostReport | None = None,
                        store_url: str | None = None, *, labels: RunLabels | None = None,
                        data: Any = None, command: str | None = None) -> tuple[int, str]:
    """Save a :class:`~steelyard.distill.DistillResult` as a run of kind "distill".

    The plain ``parameters``, ``flops`` and metric rows are the student's (what ``runs list``
    shows); ``teacher.*`` rows hold the teacher's, for the before / after comparison.
    """
    metrics = metric_rows("", result.student_test)
    metrics.update(metric_rows("teacher.", result.teacher_test))
    metrics["parameters"] = (float(result.student_cost.parameters), None)
    metrics["flops"] = (float(result.student_cost.flops), "FLOP")
    metrics["teacher.parameters"] = (float(result.teacher_cost.parameters), None)
    metrics["teacher.flops"] = (float(result.teacher_cost.flops), "FLOP")
    metrics["retained"] = (result.retained, None)
    metrics["flops_ratio"] = (float(result.flops_ratio), None)
    metrics["params_ratio"] = (float(result.params_ratio), None)
    metrics["best_validation"] = (float(result.best_validation), None)
    metrics["training_flops"] = (float(result.training.total_flops), "FLOP")
    metrics["steps"] = (float(result.training.steps), None)
    metrics["seconds"] = (float(result.seconds), "s")
    return record_quality_run("distill", f"{result.teacher} → {result.student}", result, configs, metrics, cost_card,
                              store_url, device=result.config.train.device, labels=labels, data=data, command=command,
                              models=[result.teacher, result.output])


def record_study(summary: Any, command: str | None = None, extra: dict[str, Any] | None = None,
                 store_url: str | None = None, *, labels: RunLabels | None = None,
                 data: Any = None) -> tuple[int, str]:
    """Save a search or optimize study (:class:`~steelyard.search.summary.StudySummary`) as a run of
    kind "search" / "optimize": every trial, the Pareto front and the answer in the payload; the trial
    counts and the answer's numbers as metric rows. The study itself stays in its own storage."""
    from steelyard.environment import current_environment

    store = open_store(store_url)
    spec = summary.spec
    metrics: dict[str, tuple[float | None, str | None]] = {
        f"trials.{state}": (float(n), None) for state, n in summary.counts.items()
    }
    metrics["front_size"] = (float(len(summary.front)), None)
    best = summary.best
    if best is not None:
        metrics["best.trial"] = (float(best.number), None)
        for name, value in {**best.metrics, **best.values}.items():
            if value is not None:
                metrics[f"best.{name}"[:128]] = (float(value), None)
    config = {"study": summary.name, "storage": summary.storage, "command": command,
              "objectives": [[o.name, o.direction] for o in spec.objectives], "selection": spec.selection,
              "space": spec.space, "data": spec.data, "settings": spec.settings}
    run_id = store.save_run(spec.kind, spec.model, config=config, environment=to_dict(current_environment("cpu")),
                            payload={**summary.to_dict(), **(extra or {})}, metrics=named(metrics),
                            status="ok" if best is not None else "no-answer", labels=labels,
                            provenance=_provenance([spec.model], data))
    return run_id, store.url
