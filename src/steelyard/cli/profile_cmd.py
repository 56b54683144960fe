"""``steelyard profile``: the cost card of one model."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from steelyard.cli.common import QuietOpt, console, csv_option, json_option, parse_shape, save_outputs
from steelyard.cli.hardware_cmd import HARDWARE, apply_hardware_options
from steelyard.cli.options import Group, with_options
from steelyard.cli.state import OPTIONS
from steelyard.profiling.generation_config import GenerationWorkload, parse_batch_sizes
from steelyard.reporting.markup import escape

CsvOut = csv_option("the report")
JsonOut = json_option("the report")


#: ``--prompt-len``, ``--new-tokens`` and the projection's efficiencies, from the workload's fields.
GENERATION = Group.of(GenerationWorkload)


@with_options(GENERATION, HARDWARE)
def profile_command(
    model: Annotated[
        str, typer.Argument(help="hub id, local folder, config .json, catalog name, or pkg.module:factory")
    ],
    task: Annotated[
        str | None,
        typer.Option(
            help="text-classification | image-classification | causal-lm | "
            "feature-extraction (default: from the config)"
        ),
    ] = None,
    batch_size: Annotated[
        str, typer.Option(help="example batch size; with --new-tokens a list such as 1,8,32 (one generation each)")
    ] = "1",
    seq_len: Annotated[int, typer.Option(help="tokens per example (text models)")] = 128,
    image_size: Annotated[int | None, typer.Option(help="image side in pixels (vision; default: the config's)")] = None,
    decoder_len: Annotated[int | None, typer.Option(help="decoder tokens (enc-dec; default: --seq-len)")] = None,
    audio_seconds: Annotated[
        float | None, typer.Option(help="seconds of audio (speech; default: Whisper's 30 s, 10 s of waveform)")
    ] = None,
    dtype: Annotated[
        str | None,
        typer.Option(help="float32 | float16 | bfloat16, or fp32 | fp16 | bf16 | half (default: the config's own "
                     "with --config-only, else float32)"),
    ] = None,
    weights: Annotated[
        bool,
        typer.Option("--weights/--config-only", help="load real weights and measure, or weigh the architecture only"),
    ] = True,
    hardware: Annotated[str, typer.Option(help="comma-separated catalog names (see `steelyard hardware list`)")] = (
        "local,t4,a100-80gb"
    ),
    device: Annotated[str, typer.Option(help="cpu or cuda[:N] for measurements")] = "cpu",
    runs: Annotated[int, typer.Option(help="timed runs after warm-up")] = 20,
    warmup: Annotated[int, typer.Option(help="untimed warm-up runs")] = 3,
    threads: Annotated[int | None, typer.Option(help="torch intra-op threads (fixed and recorded)")] = None,
    measure: Annotated[
        bool, typer.Option("--measure/--no-measure", help="time the model when weights are real")
    ] = True,
    causal_attention: Annotated[
        str, typer.Option(help="count causal attention over the 'full' score matrix or only the 'visible' part")
    ] = "full",
    optimizer: Annotated[str, typer.Option(help="optimizer for the training-memory estimate")] = "adamw",
    input_shape: Annotated[
        list[str] | None,
        typer.Option(help="factory models: one shape per positional input, e.g. 1,3,224,224 (repeat for several)"),
    ] = None,
    input_dtype: Annotated[str, typer.Option(help="dtype of --input-shape tensors")] = "float32",
    num_labels: Annotated[int | None, typer.Option(help="classification head size")] = None,
    trust_remote_code: Annotated[bool, typer.Option(help="allow the model's own Python code (off by default)")] = False,
    json_out: JsonOut = None,
    csv_out: CsvOut = None,
    quiet: QuietOpt = False,
    save: Annotated[bool, typer.Option("--save/--no-save", help="record the run in the results store")] = True,
    *,
    opts: dict[str, Any],
) -> None:
    """Weigh what a model costs: parameters, FLOPs, memory, measured latency, hardware fit."""
    from steelyard.errors import ConfigError
    from steelyard.models.loading import LoadConfig, load_model
    from steelyard.models.tasks import InputSpec
    from steelyard.profiling.profile import ProfileConfig, profile
    from steelyard.reporting.console import render_cost_report
    from steelyard.reporting.generation_view import render_generation
    from steelyard.store.record import record_profile

    apply_hardware_options(opts, hardware)
    batches = parse_batch_sizes(batch_size)
    generating = opts["new_tokens"] > 0
    if len(batches) > 1 and not generating:
        raise ConfigError("several --batch-size values need --new-tokens (one generation per batch size)")
    if opts["kv_cache"] != "float" and not generating:
        raise ConfigError(f"--kv-cache {opts['kv_cache']} is measured on a generation: add --new-tokens N")
    workload = GENERATION.build(opts, batch_sizes=batches, runs=max(2, runs // 4), warmup=min(warmup, 1),
                                audio_seconds=audio_seconds) if generating else None
    if generating:
        seq_len = workload.prompt_len  # the one-forward card weighs the prompt

    load_cfg = LoadConfig(
        task=task,
        config_only=not weights,
        dtype=dtype,
        device=device,
        inputs=InputSpec(batch_size=batches[0], seq_len=seq_len, image_size=image_size, decoder_len=decoder_len,
                         audio_seconds=audio_seconds),
        input_shapes=tuple(parse_shape(s) for s in input_shape or []),
        input_dtype=input_dtype,
        trust_remote_code=trust_remote_code,
        num_labels=num_labels,
        generate=generating,
    )
    profile_cfg = ProfileConfig(
        hardware=tuple(h.strip() for h in hardware.split(",") if h.strip()),
        measure=measure,
        warmup=warmup,
        runs=runs,
        threads=threads,
        causal_attention=causal_attention,  # type: ignore[arg-type]
        optimizer=optimizer,
        generation=workload,
    )
    try:
        with console.status(f"loading {escape(model)}"):
            handle = load_model(model, load_cfg)
        with console.status("counting and measuring"):
            report = profile(handle, profile_cfg)
    except (MemoryError, RuntimeError) as exc:
        from steelyard.profiling.fits import batch_too_large, is_allocation_failure

        if not is_allocation_failure(exc):
            raise
        raise batch_too_large(model, load_cfg, exc) from None
    render_cost_report(report, console)
    if report.generation is not None:
        render_generation(report.generation, console)
    data = report.to_dict()
    save_outputs(data, json_out, csv_out)
    if save:
        run_id, url = record_profile(report, [load_cfg, profile_cfg], OPTIONS.store_url, labels=OPTIONS.labels,
                                      command=OPTIONS.command)
        console.print(f"saved as run {run_id} in {escape(url)}")
