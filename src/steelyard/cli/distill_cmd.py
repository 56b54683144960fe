"""``steelyard distill``: train a smaller student on a teacher's soft labels; show what it kept and saves.

Bad input fails before any training: a spec that does not fit the teacher (``layers=0``, more
layers than the teacher has, a width the heads do not divide), a student whose classes differ
from the teacher's, α outside [0, 1], ``--nproc`` beyond the machine, an output folder that holds
something else. The student folder is written atomically, with its tokenizer, so
``steelyard evaluate <output>`` works on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from steelyard.cli.common import QuietOpt, console
from steelyard.cli.data_cmd import JsonOpt, SaveOpt
from steelyard.cli.finetune_cmd import OverwriteOpt, check_launch, interrupted_note, is_main_process, load_training_data
from steelyard.cli.option_groups import DATA, DISTILL, TRAIN
from steelyard.cli.options import with_options
from steelyard.cli.state import OPTIONS
from steelyard.errors import Interrupted
from steelyard.reporting.markup import escape

#: DistillConfig refuses these: the whole student trains, on targets cached per example.
DISTILL_TRAIN = TRAIN.without("target", "stop_at_target", "freeze_encoder", "augment")
#: The teacher's own task decides the data's (distill has no --task).
DISTILL_DATA = DATA.without("task")


@with_options(DISTILL, DISTILL_TRAIN, DISTILL_DATA)
def distill_command(
    teacher: Annotated[str, typer.Option(help="the fine-tuned classifier to learn from (hub id, folder, ...)")],
    student: Annotated[str, typer.Option(help="layers=K (keep K evenly spread teacher layers), hidden=H "
                                         "[,heads=A,ffn=F] (a narrower config), layers=K,hidden=H, or any model")],
    output: Annotated[Path, typer.Option(help="folder for the student (written atomically, with its tokenizer)")],
    overwrite: OverwriteOpt = False,
    json_out: JsonOpt = None,
    quiet: QuietOpt = False,
    save: SaveOpt = True,
    *,
    opts: dict[str, Any],
) -> None:
    """Distil a teacher into a smaller student; compare both (parameters, FLOPs, test metrics with CIs)."""
    from steelyard.cli.common import save_outputs
    from steelyard.cli.evaluate_cmd import load_handle
    from steelyard.distill.api import distill
    from steelyard.distill.student import parse_spec
    from steelyard.reporting.distill_view import render_distillation
    from steelyard.store.record import record_distillation
    from steelyard.training.finetune import objective

    train = DISTILL_TRAIN.build(opts)
    cfg = DISTILL.build(opts, train=train)
    check_launch(train, output, (teacher, student, opts.get("data")), overwrite)
    handle, data_opts, ds = load_training_data(teacher, opts, DISTILL_DATA)
    student_model = student if parse_spec(student) is not None else load_handle(student, None, train.max_length,
                                                                                "cpu")
    objective(train, ds.task)
    main = is_main_process()
    if main:
        console.print(f"distilling {escape(teacher)} into {escape(student)} on {escape(ds.name)} "
                      f"({', '.join(f'{k} {v:,}' for k, v in ds.sizes().items())})"
                      + (f" with {train.nproc} processes" if train.nproc > 1 else ""))
    try:
        result = distill(handle, student_model, ds, cfg, output=output, overwrite=overwrite)
    except KeyboardInterrupt:
        raise Interrupted(interrupted_note(output)) from None
    if not main:
        return
    render_distillation(result, console)
    console.print(f"student saved to {escape(result.output)}")
    save_outputs(result.to_dict(), json_out, None)
    if save:
        run_id, url = record_distillation(result, [cfg, data_opts], store_url=OPTIONS.store_url,
                                          labels=OPTIONS.labels, data=ds, command=OPTIONS.command)
        console.print(f"saved as run {run_id} in {escape(url)}")
