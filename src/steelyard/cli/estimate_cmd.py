"""``steelyard estimate``: what training or fine-tuning a model costs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from steelyard.cli.common import console, parse_number, save_outputs, writable_file
from steelyard.cli.state import OPTIONS
from steelyard.reporting.markup import escape


def estimate_command(
    model: Annotated[str, typer.Argument(help="hub id, local folder, config .json, catalog name, or factory")],
    tokens: Annotated[str, typer.Option(help="training tokens (text) or samples (vision): 2e9, 500M, ...")],
    hardware: Annotated[str, typer.Option(help="comma-separated catalog names")] = "a100-80gb,h100-sxm",
    utilization: Annotated[float, typer.Option(help="model FLOPs utilisation of the dense peak, in (0, 1]")] = 0.4,
    method: Annotated[str, typer.Option(help="counted (forward+backward traced) or 6ND")] = "counted",
    seq_len: Annotated[int, typer.Option(help="tokens per training sequence")] = 2048,
    batch_size: Annotated[int, typer.Option(help="sequences per counted step")] = 1,
    image_size: Annotated[int | None, typer.Option(help="image side (vision models)")] = None,
    decoder_len: Annotated[int | None, typer.Option(help="decoder tokens (enc-dec; default: --seq-len)")] = None,
    audio_seconds: Annotated[
        float | None, typer.Option(help="seconds of audio (speech; default: Whisper's 30 s, 10 s of waveform)")
    ] = None,
    task: Annotated[str | None, typer.Option(help="task (default: from the config)")] = None,
    dtype: Annotated[str, typer.Option(help="training precision whose peak is used")] = "bfloat16",
    measure_step: Annotated[
        bool, typer.Option(help="also time real training steps on this machine (loads the weights)")
    ] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the estimate as JSON",
                                                  callback=writable_file)] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="write the estimate as CSV",
                                                 callback=writable_file)] = None,
    save: Annotated[bool, typer.Option("--save/--no-save", help="record the run in the results store")] = True,
) -> None:
    """Training / fine-tuning cost: device-hours, $, kWh and CO2 on catalog hardware."""
    from steelyard.hardware import parse_hardware_list
    from steelyard.models.loading import LoadConfig, load_model
    from steelyard.models.tasks import InputSpec
    from steelyard.profiling.training_cost import estimate_training
    from steelyard.reporting.console import render_training_estimate
    from steelyard.store.record import record_estimate

    count = parse_number(tokens, "--tokens")
    devices = parse_hardware_list(hardware)
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
