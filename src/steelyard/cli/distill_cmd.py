"""``steelyard distill``: train a smaller student on a teacher's soft labels; show what it kept and saves.

Bad input fails before any training: a spec that does not fit the teacher (``layers=0``, more
layers than the teacher has, a width the heads do not divide), a student whose classes differ
from the teacher's, α outside [0, 1], ``--nproc`` beyond the machine, an output folder that holds
something else. The student folder is written atomically, with its tokenizer, so
``steelyard evaluate <output>`` works on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from steelyard.cli.common import console
from steelyard.cli.data_cmd import (
    CleanOpt,
    DataOpt,
    DataOptions,
    ImageColumnOpt,
    JsonOpt,
    LabelColumnOpt,
    MaxEvalOpt,
    MaxTrainOpt,
    SaveOpt,
    SeedOpt,
    TextColumnOpt,
    load_task_data,
)
from steelyard.cli.evaluate_cmd import DeviceOpt, MaxLengthOpt, TokenizerOpt
from steelyard.cli.finetune_cmd import (
    BatchOpt,
    ClipOpt,
    EpochsOpt,
    EvalEveryOpt,
    LrOpt,
    MaxStepsOpt,
    OptimizerOpt,
    PatienceOpt,
    WarmupOpt,
    WeightDecayOpt,
    is_main_process,
)
from steelyard.cli.state import OPTIONS


def distill_command(
    teacher: Annotated[str, typer.Option(help="the fine-tuned classifier to learn from (hub id, folder, ...)")],
    student: Annotated[str, typer.Option(help="layers=K (keep K evenly spread teacher layers), hidden=H "
                                         "[,heads=A,ffn=F] (a narrower config), layers=K,hidden=H, or any model")],
    data: DataOpt,
    output: Annotated[Path, typer.Option(help="folder for the student (written atomically, with its tokenizer)")],
    alpha: Annotated[float, typer.Option(help="weight of the hard-label loss; 1 − alpha goes to the teacher's "
                                         "soft labels")] = 0.5,
    temperature: Annotated[float, typer.Option(help="softmax temperature of the soft labels (loss scaled by "
                                               "T²)")] = 4.0,
    hidden_states: Annotated[bool, typer.Option("--hidden-states", help="also match hidden states layer to layer "
                                                "(MSE; the teacher then runs on every step)")] = False,
    hidden_weight: Annotated[float, typer.Option(help="weight of the hidden-state loss")] = 1.0,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="run the teacher on every step instead of caching "
                                           "its logits once per example (same result, slower)")] = False,
    epochs: EpochsOpt = None,
    lr: LrOpt = None,
    batch_size: BatchOpt = 16,
    optimizer: OptimizerOpt = "adamw",
    weight_decay: WeightDecayOpt = 0.01,
    warmup_ratio: WarmupOpt = 0.1,
    max_grad_norm: ClipOpt = 1.0,
    patience: PatienceOpt = None,
    eval_every: EvalEveryOpt = None,
    max_steps: MaxStepsOpt = None,
    max_length: MaxLengthOpt = 128,
    clean: CleanOpt = False,
    max_train_examples: MaxTrainOpt = None,
    max_eval_examples: MaxEvalOpt = None,
    nproc: Annotated[int, typer.Option(help="data-parallel processes on this machine (DDP; gloo on CPU, nccl on "
                                       "GPU); for several machines run under torchrun")] = 1,
    device: DeviceOpt = "cpu",
    text_column: TextColumnOpt = "text",
    label_column: LabelColumnOpt = "label",
    image_column: ImageColumnOpt = "image",
    tokenizer: TokenizerOpt = None,
    seed: SeedOpt = 0,
    json_out: JsonOpt = None,
    save: SaveOpt = True,
) -> None:
    """Distil a teacher into a smaller student; compare both (parameters, FLOPs, test metrics with CIs)."""
    from steelyard.cli.common import save_outputs
    from steelyard.cli.evaluate_cmd import data_task_for, load_handle
    from steelyard.distill.api import distill
    from steelyard.distill.config import DistillConfig
    from steelyard.distill.student import parse_spec
    from steelyard.reporting.distill_view import render_distillation
    from steelyard.store.record import record_distillation
    from steelyard.training.checkpoint import check_output
    from steelyard.training.config import FinetuneConfig
    from steelyard.training.dist import launched_by_torchrun
    from steelyard.training.finetune import objective
    from steelyard.training.launch import check_nproc

    train = FinetuneConfig(
        epochs=epochs, lr=lr, batch_size=batch_size, optimizer=optimizer, weight_decay=weight_decay,
        warmup_ratio=warmup_ratio, max_grad_norm=max_grad_norm or None, patience=patience, seed=seed,
        max_steps=max_steps, max_length=max_length, eval_every=eval_every, nproc=nproc, device=device,
        tokenizer=tokenizer,
    )
    cfg = DistillConfig(alpha=alpha, temperature=temperature, hidden_states=hidden_states,
                        hidden_weight=hidden_weight, cache_teacher=not no_cache, train=train)
    if train.nproc > 1 and not launched_by_torchrun():
        check_nproc(train)
    check_output(output)
    handle = load_handle(teacher, None, max_length, "cpu")
    student_model = student if parse_spec(student) is not None else load_handle(student, None, max_length, "cpu")
    data_opts = DataOptions(data, data_task_for(handle, None), text_column, label_column, image_column, seed,
                            clean, max_train_examples, max_eval_examples)
    ds = load_task_data(data_opts)
    objective(train, ds.task)
    main = is_main_process()
    if main:
        console.print(f"distilling {teacher} into {student} on {ds.name} "
                      f"({', '.join(f'{k} {v:,}' for k, v in ds.sizes().items())})"
                      + (f" with {train.nproc} processes" if train.nproc > 1 else ""))
    result = distill(handle, student_model, ds, cfg, output=output)
    if not main:
        return
    render_distillation(result, console)
    console.print(f"student saved to {result.output}")
    save_outputs(result.to_dict(), json_out, None)
    if save:
        run_id, url = record_distillation(result, [cfg, data_opts], store_url=OPTIONS.store_url)
        console.print(f"saved as run {run_id} in {url}")
