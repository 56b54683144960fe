"""``steelyard finetune``: train a model on a task, save it, and say what it cost and what it is worth.

Bad input fails before any training: unknown optimizer or target metric, ``--nproc`` beyond the
machine, an output folder that holds something else, labels the model cannot take. The model
folder is written atomically, so a failed run never leaves half a model or destroys the old one.

On several machines, run the same command under ``torchrun`` on each (it then joins torchrun's
process group; see :mod:`steelyard.training.launch`)::

    torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint host0:29500 \\
        --rdzv-id job1 -m steelyard finetune MODEL --data SOURCE --output DIR
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from steelyard.cli.common import QuietOpt, console
from steelyard.cli.data_cmd import JsonOpt, SaveOpt, load_task_data
from steelyard.cli.evaluate_cmd import ModelArg
from steelyard.cli.option_groups import DATA, TRAIN
from steelyard.cli.options import with_options
from steelyard.cli.state import OPTIONS
from steelyard.errors import Interrupted
from steelyard.reporting.markup import escape


def interrupted_note(output: Path) -> str:
    """What a Ctrl-C left: the model is written only once training ends, atomically."""
    held = output.is_file() or (output.is_dir() and any(output.iterdir()))
    if held:
        return f"interrupted: nothing new saved; {output} still holds the model it held before"
    return f"interrupted: nothing saved to {output} (the model is written only when training ends)"


def is_main_process() -> bool:
    """False on torchrun ranks other than 0, which train but neither print nor save."""
    return int(os.environ.get("RANK", "0")) == 0


def load_training_data(model: str, opts: dict[str, Any], data: Any = DATA) -> tuple[Any, Any, Any]:
    """The model (on the CPU; the trainer moves it), the data options and the dataset of a training
    command, from its parsed options (``data``: the command's group of data options)."""
    from steelyard.cli.evaluate_cmd import load_handle
    from steelyard.data.options import data_task_for

    task = opts.get("task")
    handle = load_handle(model, task, opts["max_length"], "cpu")
    data_opts = data.build(opts, task=data_task_for(handle, task))
    return handle, data_opts, load_task_data(data_opts)


#: ``--overwrite`` of the commands that write a model folder.
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="replace an existing model folder at --output")]


def check_launch(cfg: Any, output: Path, inputs: tuple[str | None, ...], overwrite: bool) -> None:
    """``--nproc`` within the machine (unless torchrun launched us) and an output folder we may write:
    not one of the ``inputs`` (model, teacher, data), and an existing model only with ``--overwrite``."""
    from steelyard.outputs import check_output
    from steelyard.training.dist import launched_by_torchrun
    from steelyard.training.launch import check_nproc

    if cfg.nproc > 1 and not launched_by_torchrun():
        check_nproc(cfg)
    check_output(output, inputs, overwrite=overwrite)


@with_options(TRAIN, DATA)
def finetune_command(
    model: ModelArg,
    output: Annotated[Path, typer.Option(help="folder for the fine-tuned model (written atomically)")],
    overwrite: OverwriteOpt = False,
    json_out: JsonOpt = None,
    quiet: QuietOpt = False,
    save: SaveOpt = True,
    *,
    opts: dict[str, Any],
) -> None:
    """Fine-tune a model on a task; save it with save_pretrained; report test metrics with CIs and training cost.

    Several machines: start the same command on each with torchrun, e.g. `torchrun --nnodes 2
    --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint host0:29500 --rdzv-id job1 -m steelyard
    finetune MODEL --data SOURCE --output DIR`; global rank 0 saves the model, JSON and store row.
    """
    from steelyard.cli.common import save_outputs
    from steelyard.cli.evaluate_cmd import cost_card
    from steelyard.reporting.run_warnings import finetune_warnings, print_warnings
    from steelyard.reporting.training_view import render_finetune
    from steelyard.store.record import record_finetune
    from steelyard.training.finetune import finetune, objective

    cfg = TRAIN.build(opts)
    check_launch(cfg, output, (model, opts.get("data")), overwrite)
    handle, data_opts, ds = load_training_data(model, opts)
    objective(cfg, ds.task)
    main = is_main_process()
    if main:
        sizes = ", ".join(f"{k} {v:,}" for k, v in ds.sizes().items())
        console.print(f"fine-tuning {escape(model)} on {escape(ds.name)} ({sizes})"
                      + (f" with {cfg.nproc} processes" if cfg.nproc > 1 else ""))
    try:
        result = finetune(handle, ds, cfg, output=output, overwrite=overwrite)
    except KeyboardInterrupt:
        raise Interrupted(interrupted_note(output)) from None
    if not main:
        return
    render_finetune(result, console)
    warnings = finetune_warnings(result)
    print_warnings(warnings, console)
    console.print(f"model saved to {escape(result.output)}")
    from steelyard.models import InputSpec, LoadConfig, load_model

    card = cost_card(load_model(str(output), LoadConfig(inputs=InputSpec(seq_len=cfg.max_length))))
    data_out = {**result.to_dict(), "warnings": warnings}
    if card is not None:
        data_out["cost_card"] = card.to_dict()
    save_outputs(data_out, json_out, None)
    if save:
        run_id, url = record_finetune(result, [cfg, data_opts], card, OPTIONS.store_url, labels=OPTIONS.labels,
                                      data=ds, command=OPTIONS.command)
        console.print(f"saved as run {run_id} in {escape(url)}")
