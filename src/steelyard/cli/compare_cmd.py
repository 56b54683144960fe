"""``steelyard compare``: several models on one harness, the Pareto front and a recommendation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from steelyard.cli.common import QuietOpt, console, json_option, save_outputs, writable_file
from steelyard.cli.hardware_cmd import HARDWARE, apply_hardware_options
from steelyard.cli.options import with_options
from steelyard.cli.state import OPTIONS
from steelyard.reporting.markup import escape

JsonOut = json_option("the comparison")


@with_options(HARDWARE)
def compare_command(
    models: Annotated[
        list[str], typer.Argument(help="two or more: hub ids, folders, config .json, catalog names")
    ],
    data: Annotated[str | None, typer.Option(help="evaluate every model on this data source (same split)")] = None,
    split: Annotated[str, typer.Option(help="split to evaluate on")] = "test",
    metrics: Annotated[
        list[str] | None,
        typer.Option(help="metric(s) to evaluate, comma-separated or repeated (default: the task's); the first is "
                     "the headline column"),
    ] = None,
    max_examples: Annotated[int | None, typer.Option(help="evaluate on at most this many examples")] = None,
    tokenizer: Annotated[str | None, typer.Option(help="tokenizer source for models saved without one")] = None,
    hardware: Annotated[str, typer.Option(help="comma-separated catalog names")] = "local,t4,a100-80gb",
    weights: Annotated[
        bool, typer.Option("--weights/--config-only", help="load and time real weights, or compare architectures")
    ] = True,
    task: Annotated[str | None, typer.Option(help="task (default: from each config)")] = None,
    batch_size: Annotated[int, typer.Option(help="example batch size (same for every model)")] = 1,
    seq_len: Annotated[int, typer.Option(help="tokens per example (text models)")] = 128,
    image_size: Annotated[int | None, typer.Option(help="image side in pixels (vision)")] = None,
    decoder_len: Annotated[int | None, typer.Option(help="decoder tokens (enc-dec; default: --seq-len)")] = None,
    audio_seconds: Annotated[
        float | None, typer.Option(help="seconds of audio (speech; default: Whisper's 30 s, 10 s of waveform)")
    ] = None,
    dtype: Annotated[str, typer.Option(help="float32 | float16 | bfloat16 (or fp32, fp16, bf16)")] = "float32",
    device: Annotated[str, typer.Option(help="cpu or cuda[:N]")] = "cpu",
    threads: Annotated[int | None, typer.Option(help="torch intra-op threads (fixed and recorded)")] = None,
    runs: Annotated[int, typer.Option(help="timed rounds (each model once per round)")] = 20,
    warmup: Annotated[int, typer.Option(help="untimed warm-up calls per model")] = 3,
    interleave: Annotated[bool, typer.Option(help="time the models interleaved (A B A B ...)")] = True,
    max_latency: Annotated[str | None, typer.Option(help="e.g. 50ms, 0.2s")] = None,
    max_memory: Annotated[str | None, typer.Option(help="e.g. 4GB (10^9 bytes) or 4GiB (2^30 bytes)")] = None,
    min_accuracy: Annotated[str | None, typer.Option(help="e.g. 0.9 or 90% (needs --data)")] = None,
    max_cost_per_1k: Annotated[str | None, typer.Option("--max-cost-per-1k", help="$ per 1,000 inferences")] = None,
    objectives: Annotated[
        str, typer.Option(help="Pareto objectives, the first decides the recommendation: accuracy, latency, cost, "
                               "memory, throughput, energy, lifetime, storage, params")
    ] = "accuracy,latency,cost",
    requests_per_day: Annotated[str, typer.Option(help="serving volume for the lifetime cost (10k, 1M)")] = "10k",
    days: Annotated[str, typer.Option(help="serving period: 365, 90d, 6mo, 1y")] = "365",
    finetune_tokens: Annotated[str, typer.Option(help="fine-tuning budget in tokens (0: none)")] = "10M",
    utilization: Annotated[float, typer.Option(help="training FLOPs utilisation in (0, 1]")] = 0.4,
    html: Annotated[Path | None, typer.Option(help="also write the HTML report here", callback=writable_file)] = None,
    markdown: Annotated[Path | None, typer.Option(help="also write a Markdown report here",
                                                  callback=writable_file)] = None,
    json_out: JsonOut = None,
    quiet: QuietOpt = False,
    save: Annotated[bool, typer.Option("--save/--no-save", help="record the run in the results store")] = True,
    workload: Annotated[
        str | None, typer.Option(help="serving workload, e.g. prompt=1024,output=256,rps=5: recommend model, "
                                      "precision (--dtype may list several), hardware and batch for generation")
    ] = None,
    max_ttft: Annotated[str | None, typer.Option(help="with --workload: time to first token, e.g. 500ms")] = None,
    max_tpot: Annotated[str | None, typer.Option(help="with --workload: time per output token, e.g. 50ms")] = None,
    max_cost_per_1m: Annotated[
        str | None, typer.Option("--max-cost-per-1m", help="with --workload: $ per 1M output tokens")
    ] = None,
    *,
    opts: dict[str, Any],
) -> None:
    """Compare models on one harness: accuracy, latency, memory, cost per hardware; Pareto front; recommendation."""
    apply_hardware_options(opts, hardware)
    if workload is not None:
        _serving(models, workload, hardware, dtype, max_ttft, max_tpot, max_cost_per_1m, json_out,
                 save=save, html=html, markdown=markdown)
        return
    if max_ttft or max_tpot or max_cost_per_1m:
        from steelyard.errors import ConfigError

        raise ConfigError("--max-ttft, --max-tpot and --max-cost-per-1m need --workload")
    from steelyard.comparison import CompareConfig, Constraints, compare
    from steelyard.comparison.compare import check_models
    from steelyard.comparison.config import objective_name
    from steelyard.models.tasks import InputSpec
    from steelyard.reporting.compare_console import render_comparison
    from steelyard.units_parse import parse_bytes, parse_count, parse_days, parse_duration, parse_fraction, parse_usd

    check_models(models)
    constraints = Constraints(
        max_latency=parse_duration(max_latency, "--max-latency") if max_latency else None,
        max_memory=parse_bytes(max_memory, "--max-memory") if max_memory else None,
        min_accuracy=parse_fraction(min_accuracy, "--min-accuracy") if min_accuracy else None,
        max_cost_per_1k=parse_usd(max_cost_per_1k, "--max-cost-per-1k") if max_cost_per_1k else None,
    )
    cfg = CompareConfig(
        hardware=tuple(h.strip() for h in hardware.split(",") if h.strip()),
        config_only=not weights,
        task=task,
        dtype=dtype,
        device=device,
        inputs=InputSpec(batch_size=batch_size, seq_len=seq_len, image_size=image_size, decoder_len=decoder_len,
                         audio_seconds=audio_seconds),
        threads=threads,
        warmup=warmup,
        runs=runs,
        interleave=interleave,
        data=data,
        split=split,
        metrics=tuple(m.strip() for given in metrics or () for m in given.split(",") if m.strip()),
        max_examples=max_examples,
        tokenizer=tokenizer,
        constraints=constraints,
        objectives=tuple(objective_name(o) for o in objectives.split(",") if o.strip()),
        requests_per_day=parse_count(requests_per_day, "--requests-per-day"),
        days=parse_days(days, "--days"),
        finetune_tokens=parse_count(finetune_tokens, "--finetune-tokens"),
        utilization=utilization,
    )
    with console.status("comparing") as status:
        comparison = compare(models, cfg, progress=lambda msg: status.update(msg))
    render_comparison(comparison, console)
    save_outputs(comparison.to_dict(), json_out)
    run_id, failure = None, None
    if save:
        from steelyard.errors import StoreError
        from steelyard.reporting.commands import compare_command
        from steelyard.store.record import record_comparison

        try:
            run_id, url = record_comparison(comparison, OPTIONS.store_url, compare_command(comparison),
                                              labels=OPTIONS.labels)
            console.print(f"saved as run {run_id} in {escape(url)}")
        except StoreError as exc:  # still write the files asked for, then fail
            failure = exc
    if html is not None or markdown is not None:
        from steelyard.reporting.html import report_document, write_report

        doc = report_document([("comparison", comparison, run_id)])
        for path in write_report(doc, html=html, markdown=markdown):
            console.print(f"wrote {escape(path)}")
    if failure is not None:
        raise failure


#: Batch sizes tried for each device in a serving recommendation (the largest that fits is added).
SERVING_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def _serving(models: list[str], workload: str, hardware: str, dtypes: str, max_ttft: str | None,
             max_tpot: str | None, max_cost: str | None, json_out: Path | None, *, save: bool = False,
             html: Path | None = None, markdown: Path | None = None) -> None:
    """``--workload``: count each model config-only at each precision, project, and recommend."""
    from steelyard.comparison.workload import ServingLimits, parse_workload, recommend, serving_options
    from steelyard.hardware import parse_hardware_list
    from steelyard.models.loading import LoadConfig, load_model
    from steelyard.profiling.generation import profile_generation
    from steelyard.profiling.generation_config import GenerationWorkload
    from steelyard.reporting.generation_view import render_recommendation
    from steelyard.units_parse import parse_duration, parse_usd

    load = parse_workload(workload)
    limits = ServingLimits(
        max_ttft=parse_duration(max_ttft, "--max-ttft") if max_ttft else None,
        max_tpot=parse_duration(max_tpot, "--max-tpot") if max_tpot else None,
        max_cost_per_1m=parse_usd(max_cost, "--max-cost-per-1m") if max_cost else None,
    )
    devices = [hw for hw in parse_hardware_list(hardware) if hw.name != "local"]
    shape = GenerationWorkload(prompt_len=load.prompt, new_tokens=load.output, batch_sizes=SERVING_BATCHES)
    options = []
    for model in models:
        for dtype in (d.strip() for d in dtypes.split(",") if d.strip()):
            with console.status(f"counting {model} ({dtype})"):
                handle = load_model(model, LoadConfig(config_only=True, dtype=dtype, task="causal-lm"))
                report = profile_generation(handle, shape, devices, measure=False)
            options.extend(serving_options(report, load))
    rec = recommend(load, limits, options)
    render_recommendation(rec, console)
    if json_out is not None:
        from steelyard.serialize import to_dict

        save_outputs(to_dict(rec), json_out)
    run_id = None
    if save:
        from steelyard.store.record import record_serving

        run_id, url = record_serving(rec, models, OPTIONS.store_url, labels=OPTIONS.labels,
                                     command=OPTIONS.command)
        console.print(f"saved as run {run_id} in {url}")
    if html is not None or markdown is not None:
        from steelyard.reporting.html import report_document, write_report

        for path in write_report(report_document([("serving", rec, run_id)]), html=html, markdown=markdown):
            console.print(f"wrote {path}")
