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
    TaskOpt,
    TextColumnOpt,
    load_task_data,
)
from steelyard.cli.evaluate_cmd import DeviceOpt, MaxLengthOpt, ModelArg, TokenizerOpt
from steelyard.cli.state import OPTIONS

EpochsOpt = Annotated[int | None, typer.Option(help="passes over the training data (default 3 full, 20 head-only)")]
LrOpt = Annotated[float | None, typer.Option(help="peak learning rate (default per optimizer and mode)")]
BatchOpt = Annotated[int, typer.Option(help="global batch size (split across --nproc processes)")]
OptimizerOpt = Annotated[str, typer.Option(help="adamw | adam | rmsprop | sgd (momentum 0.9)")]
WeightDecayOpt = Annotated[float, typer.Option(help="weight decay (not on biases and norm scales)")]
WarmupOpt = Annotated[float, typer.Option(help="share of steps with linear warm-up, then linear decay")]
ClipOpt = Annotated[float | None, typer.Option(help="clip the gradient norm to this (0: no clipping)")]
PatienceOpt = Annotated[int | None, typer.Option(help="stop after this many validations without improvement")]
EvalEveryOpt = Annotated[int | None, typer.Option(help="validate every N steps (default: each epoch)")]
MaxStepsOpt = Annotated[int | None, typer.Option(help="stop after this many optimizer steps")]
FreezeOpt = Annotated[bool, typer.Option("--freeze-encoder", help="train only a head (embedding models: a linear "
                                         "head on frozen mean-pooled embeddings)")]
AugmentOpt = Annotated[bool, typer.Option("--augment", help="text: token dropout/swap; images: small rotations")]


def is_main_process() -> bool:
    """False on torchrun ranks other than 0, which train but neither print nor save."""
    return int(os.environ.get("RANK", "0")) == 0


def finetune_command(
    model: ModelArg,
    data: DataOpt,
    output: Annotated[Path, typer.Option(help="folder for the fine-tuned model (written atomically)")],
    task: TaskOpt = None,
    epochs: EpochsOpt = None,
    lr: LrOpt = None,
    batch_size: BatchOpt = 16,
    optimizer: OptimizerOpt = "adamw",
    weight_decay: WeightDecayOpt = 0.01,
    warmup_ratio: WarmupOpt = 0.1,
    max_grad_norm: ClipOpt = 1.0,
    patience: PatienceOpt = None,
    target_metric: Annotated[str | None, typer.Option(help="e.g. accuracy=0.95: record the cost to reach it on "
                                                      "validation, and stop there")] = None,
    stop_at_target: Annotated[bool, typer.Option("--stop-at-target/--no-stop-at-target", help="stop when the target "
                                                 "is reached, or train on and only record when it was")] = True,
    eval_every: EvalEveryOpt = None,
    max_steps: MaxStepsOpt = None,
    max_length: MaxLengthOpt = 128,
    freeze_encoder: FreezeOpt = False,
    augment: AugmentOpt = False,
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
    """Fine-tune a model on a task; save it with save_pretrained; report test metrics with CIs and training cost.

    Several machines: start the same command on each with torchrun, e.g. `torchrun --nnodes 2
    --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint host0:29500 --rdzv-id job1 -m steelyard
    finetune MODEL --data SOURCE --output DIR`; global rank 0 saves the model, JSON and store row.
    """
    from steelyard.cli.common import save_outputs
    from steelyard.cli.evaluate_cmd import cost_card, data_task_for, load_handle
    from steelyard.reporting.training_view import render_finetune
    from steelyard.store.record import record_finetune
    from steelyard.training.checkpoint import check_output
    from steelyard.training.config import FinetuneConfig
    from steelyard.training.dist import launched_by_torchrun
    from steelyard.training.finetune import finetune, objective
    from steelyard.training.launch import check_nproc

    cfg = FinetuneConfig(
        epochs=epochs, lr=lr, batch_size=batch_size, optimizer=optimizer, weight_decay=weight_decay,
        warmup_ratio=warmup_ratio, max_grad_norm=max_grad_norm or None, patience=patience, target=target_metric,
        stop_at_target=stop_at_target, seed=seed, max_steps=max_steps, freeze_encoder=freeze_encoder,
        max_length=max_length, eval_every=eval_every, augment=augment, nproc=nproc, device=device, tokenizer=tokenizer,
    )
    if cfg.nproc > 1 and not launched_by_torchrun():
        check_nproc(cfg)
    check_output(output)
    handle = load_handle(model, task, max_length, "cpu")
    data_opts = DataOptions(data, data_task_for(handle, task), text_column, label_column, image_column, seed,
                            clean, max_train_examples, max_eval_examples)
    ds = load_task_data(data_opts)
    objective(cfg, ds.task)
    main = is_main_process()
    if main:
        console.print(f"fine-tuning {model} on {ds.name} ({', '.join(f'{k} {v:,}' for k, v in ds.sizes().items())})"
                      + (f" with {cfg.nproc} processes" if cfg.nproc > 1 else ""))
    result = finetune(handle, ds, cfg, output=output)
    if not main:
        return
    render_finetune(result, console)
    console.print(f"model saved to {result.output}")
    from steelyard.models import InputSpec, LoadConfig, load_model

    card = cost_card(load_model(str(output), LoadConfig(inputs=InputSpec(seq_len=max_length))))
    data_out = result.to_dict()
    if card is not None:
        data_out["cost_card"] = card.to_dict()
    save_outputs(data_out, json_out, None)
    if save:
        run_id, url = record_finetune(result, [cfg, data_opts], card, OPTIONS.store_url)
        console.print(f"saved as run {run_id} in {url}")
