"""``steelyard estimate``: what training or fine-tuning a model costs."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from steelyard.cli.common import QuietOpt, console, csv_option, json_option, parse_number, save_outputs
from steelyard.cli.hardware_cmd import HARDWARE, apply_hardware_options
from steelyard.cli.options import with_options
from steelyard.cli.state import OPTIONS
from steelyard.reporting.markup import escape

CsvOut = csv_option("the estimate")
JsonOut = json_option("the estimate")


@with_options(HARDWARE)
def estimate_command(
    model: Annotated[str, typer.Argument(help="hub id, local folder, config .json, catalog name, or factory")],
    tokens: Annotated[str, typer.Option(help="training tokens (text) or samples (vision): 2e9, 500M, ...")],
    hardware: Annotated[str, typer.Option(help="comma-separated catalog names")] = "a100-80gb,h100-sxm",
    utilization: Annotated[float, typer.Option(help="model FLOPs utilisation of the dense peak, in (0, 1]")] = 0.4,
    method: Annotated[str, typer.Option(help="counted (forward+backward traced) or 6ND")] = "counted",
    seq_len: Annotated[int | None, typer.Option(help="tokens per training sequence (default: the model's own "
                                                "limit, at most 2048)")] = None,
    batch_size: Annotated[int, typer.Option(help="sequences per counted step")] = 1,
    image_size: Annotated[int | None, typer.Option(help="image side (vision models)")] = None,
    decoder_len: Annotated[int | None, typer.Option(help="decoder tokens (enc-dec; default: --seq-len)")] = None,
    audio_seconds: Annotated[
        float | None, typer.Option(help="seconds of audio (speech; default: Whisper's 30 s, 10 s of waveform)")
    ] = None,
    task: Annotated[str | None, typer.Option(help="task (default: from the config)")] = None,
    dtype: Annotated[str, typer.Option(help="training precision whose peak is used (or bf16, fp16)")] = "bfloat16",
    measure_step: Annotated[
        bool, typer.Option(help="also time real training steps on this machine (loads the weights)")
    ] = False,
    json_out: JsonOut = None,
    csv_out: CsvOut = None,
    quiet: QuietOpt = False,
    save: Annotated[bool, typer.Option("--save/--no-save", help="record the run in the results store")] = True,
    *,
    opts: dict[str, Any],
) -> None:
    """Training / fine-tuning cost: device-hours, $, kWh and CO2 on catalog hardware."""
    from steelyard.hardware import parse_hardware_list
    from steelyard.models.loading import LoadConfig, float_dtype, load_model
    from steelyard.models.tasks import InputSpec
    from steelyard.profiling.training_cost import estimate_training
    from steelyard.reporting.console import render_training_estimate
    from steelyard.store.record import record_estimate

    apply_hardware_options(opts, hardware)
    count = parse_number(tokens, "--tokens")
    dtype = float_dtype(dtype)  # bf16, fp16, fp32 ... as aliases
    devices = parse_hardware_list(hardware)
    chosen = None
    if seq_len is None:
        from steelyard.training.sequence import default_seq_len

        with console.status(f"reading {model}'s sequence limit"):
            meta = load_model(model, LoadConfig(task=task, config_only=True, inputs=InputSpec(seq_len=1)))
        chosen = default_seq_len(meta.config, meta.path)
        seq_len = chosen.tokens
    load_cfg = LoadConfig(
        task=task,
        config_only=not measure_step,
        inputs=InputSpec(batch_size=batch_size, seq_len=seq_len, image_size=image_size, decoder_len=decoder_len,
                         audio_seconds=audio_seconds),
    )
    with console.status(f"loading {model}"):
        handle = load_model(model, load_cfg)
    with console.status("counting forward + backward"):
        est = estimate_training(
            handle, count, devices, utilization=utilization, dtype=dtype, method=method, measure_step=measure_step
        )
    if chosen is not None:
        from steelyard.reporting.run_warnings import sequence_length_note

        est.assumptions.insert(0, sequence_length_note(chosen))
    render_training_estimate(handle.name, est, console)
    from steelyard.serialize import to_dict

    data = {"model": handle.name, **to_dict(est)}
    save_outputs(data, json_out, csv_out)
    if save:
        options = {"tokens": count, "hardware": [d.name for d in devices], "utilization": utilization, "dtype": dtype,
                   "method": method, "measure_step": measure_step}
        run_id, url = record_estimate(handle.name, est, [load_cfg], OPTIONS.store_url, labels=OPTIONS.labels,
                                      command=OPTIONS.command, options=options)
        console.print(f"saved as run {run_id} in {escape(url)}")
