"""``steelyard runtimes MODEL``: the uncompressed model in every installed runtime, timed side by side.

The baseline a user should see before compressing: torch fp32 eager, then each backend × precision
built, checked against torch and timed interleaved with it (one process, fixed threads). A backend
not installed is skipped with a note; asked for by name (``--backend openvino``) it is the one-line
error naming the extra (exit 2). With ``--data`` the timing batch is real examples and the int8
runtimes are calibrated on the training split; ``--output`` saves the fastest as an artifact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from steelyard.cli.common import QuietOpt, console
from steelyard.cli.data_cmd import JsonOpt, LabelColumnOpt, SeedOpt, TaskOpt, TextColumnOpt, ValFractionOpt
from steelyard.cli.evaluate_cmd import MaxLengthOpt, ModelArg, TokenizerOpt

BackendsOpt = Annotated[list[str] | None, typer.Option(
    "--backend", help="all (default), or backend[:precision] to try, repeatable: torch, torch-compile, "
    "onnxruntime, openvino (e.g. openvino:int8)")]


def runtimes_command(
    model: ModelArg,
    backend: BackendsOpt = None,
    data: Annotated[str | None, typer.Option("--data", help="real timing batch and calibration data "
                                             "(bbc-news, CSV/JSONL/Parquet, folder, hf:...)")] = None,
    batch_size: Annotated[int, typer.Option(help="rows per timed call")] = 32,
    max_length: MaxLengthOpt = 128,
    rounds: Annotated[int, typer.Option(help="interleaved timing rounds")] = 10,
    threads: Annotated[int | None, typer.Option(help="threads for every runtime (default: torch's)")] = None,
    calibration_batches: Annotated[int, typer.Option(help="calibration batches for the int8 runtimes")] = 8,
    max_drop: Annotated[float | None, typer.Option(help="accuracy points NNCF may lose (accuracy-aware int8; "
                                                   "needs --data)")] = None,
    output: Annotated[Path | None, typer.Option(help="save the fastest runtime's artifact to this folder")] = None,
    task: TaskOpt = None,
    text_column: TextColumnOpt = "text",
    label_column: LabelColumnOpt = "label",
    tokenizer: TokenizerOpt = None,
    seed: SeedOpt = 0,
    val_fraction: ValFractionOpt = 0.1,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace an existing --output model")] = False,
    json_out: JsonOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Time the model in every installed runtime against torch fp32 eager and name the fastest."""
    from steelyard.backends.registry import require_backend
    from steelyard.backends.select import candidates_for, runtime_table
    from steelyard.cli.common import save_outputs
    from steelyard.cli.data_cmd import load_task_data
    from steelyard.cli.evaluate_cmd import load_handle
    from steelyard.data.options import DataOptions, data_task_for
    from steelyard.errors import ConfigError
    from steelyard.outputs import check_output
    from steelyard.reporting.markup import escape

    names = [n.strip() for b in (backend or ["all"]) for n in b.split(",") if n.strip()]
    pairs, required = candidates_for(names)
    for name in sorted(required):
        require_backend(name)  # a backend asked for by name must be installed: fail before any work
    if max_drop is not None and data is None:
        raise ConfigError("--max-drop needs --data: the accuracy it bounds is measured on the data's validation split")
    if output is not None:  # before any work: never an input's files, an existing model only with --overwrite
        check_output(output, (model, data), overwrite=overwrite)
    handle = load_handle(model, task, max_length)
    if data is not None:
        from steelyard.backends.data import runtime_data

        dataset = load_task_data(DataOptions(data, data_task_for(handle, task), text_column, label_column, "image",
                                             seed, val_fraction=val_fraction))
        prepared = runtime_data(handle, dataset, batch_size=batch_size, max_length=max_length,
                                calibration_batches=calibration_batches,
                                max_drop=None if max_drop is None else max_drop / 100, tokenizer=tokenizer, seed=seed)
        module, inputs, calibration = prepared.module, prepared.inputs, prepared.calibration
    else:
        from steelyard.backends.data import synthetic_inputs

        module, inputs, calibration = handle.module, synthetic_inputs(handle, batch_size), None
    console.print(f"timing {model} in {len(pairs)} runtime configurations (batch {batch_size} × {max_length})")
    with console.status("building and checking each runtime"):
        table = runtime_table(module, inputs, candidates=pairs, required=required, calibration=calibration,
                              task=handle.task, threads=threads, rounds=rounds)
    result = {"model": model, "batch_size": batch_size, "max_length": max_length, **table.to_dict()}
    render(result)
    if output is not None:
        from steelyard.backends.artifact import save_artifact

        best = table.row(table.fastest)
        saved = save_artifact(best.model, handle.with_module(module, inputs), output, overwrite=overwrite)
        console.print(f"{table.fastest} saved to {escape(saved)}")
    save_outputs(result, json_out, None)
    failed = [r for r in table.rows if r.status == "failed" and r.backend in required]
    if failed:
        raise typer.Exit(2)


def render(d: dict) -> None:
    from rich.table import Table

    from steelyard.reporting.runtimes_view import COLUMNS, runtime_rows, verdict

    table = Table(title=f"{d['model']} · batch {d['batch_size']} × {d['max_length']}", title_justify="left")
    for i, col in enumerate(COLUMNS):
        table.add_column(col, justify="left" if i in (0, 1, len(COLUMNS) - 1) else "right")
    for row in runtime_rows(d):
        table.add_row(*row)
    console.print(table)
    console.print(f"• {verdict(d)}")
