"""``steelyard compare-optimizers``: steps, samples, wall time and FLOPs each optimizer needs to reach a target."""

from __future__ import annotations

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
from steelyard.cli.finetune_cmd import (
    BatchOpt,
    ClipOpt,
    EpochsOpt,
    FreezeOpt,
    LrOpt,
    MaxStepsOpt,
    WarmupOpt,
    WeightDecayOpt,
)
from steelyard.cli.state import OPTIONS


def parse_lrs(text: str | None) -> dict[str, float]:
    """``adamw=5e-5,sgd=1e-2`` → {"adamw": 5e-5, "sgd": 0.01}."""
    from steelyard.errors import ConfigError

    out: dict[str, float] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        try:
            out[name.strip().lower()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ConfigError(f"--lrs must look like adamw=5e-5,sgd=1e-2, got {text!r}")
    return out


def compare_optimizers_command(
    model: ModelArg,
    data: DataOpt,
    target_metric: Annotated[str, typer.Option(help="the quality to reach on validation, e.g. accuracy=0.9")],
    optimizers: Annotated[str, typer.Option(help="comma-separated: adamw,adam,rmsprop,sgd")] = "adamw,rmsprop,sgd",
    task: TaskOpt = None,
    lr: LrOpt = None,
    lrs: Annotated[str | None, typer.Option(help="per-optimizer learning rates, e.g. adamw=5e-5,sgd=1e-2")] = None,
    epochs: EpochsOpt = None,
    batch_size: BatchOpt = 16,
    weight_decay: WeightDecayOpt = 0.01,
    warmup_ratio: WarmupOpt = 0.1,
    max_grad_norm: ClipOpt = 1.0,
    eval_every: Annotated[int | None, typer.Option(help="validate every N steps (default: 4 times per epoch)")] = None,
    max_steps: MaxStepsOpt = None,
    max_length: MaxLengthOpt = 128,
    freeze_encoder: FreezeOpt = False,
    clean: CleanOpt = False,
    max_train_examples: MaxTrainOpt = None,
    max_eval_examples: MaxEvalOpt = None,
    device: DeviceOpt = "cpu",
    text_column: TextColumnOpt = "text",
    label_column: LabelColumnOpt = "label",
    image_column: ImageColumnOpt = "image",
    tokenizer: TokenizerOpt = None,
    seed: SeedOpt = 0,
    json_out: JsonOpt = None,
    save: SaveOpt = True,
) -> None:
    """Same model, data and seed; each optimizer's steps, samples, wall time and counted FLOPs to the target."""
    from steelyard.cli.common import save_outputs
    from steelyard.cli.evaluate_cmd import cost_card, data_task_for, load_handle
    from steelyard.reporting.training_view import render_comparison
    from steelyard.store.record import record_optimizer_comparison
    from steelyard.training.compare import compare_optimizers, parse_optimizers
    from steelyard.training.config import FinetuneConfig
    from steelyard.training.finetune import objective

    names = parse_optimizers(optimizers)
    per_lr = parse_lrs(lrs)
    parse_optimizers(list(per_lr) or names)
    cfg = FinetuneConfig(
        epochs=epochs, lr=lr, batch_size=batch_size, weight_decay=weight_decay, warmup_ratio=warmup_ratio,
        max_grad_norm=max_grad_norm or None, target=target_metric, seed=seed, max_steps=max_steps,
        freeze_encoder=freeze_encoder, max_length=max_length, eval_every=eval_every, device=device,
        tokenizer=tokenizer,
    )
    handle = load_handle(model, task, max_length, "cpu")
    data_opts = DataOptions(data, data_task_for(handle, task), text_column, label_column, image_column, seed,
                            clean, max_train_examples, max_eval_examples)
    ds = load_task_data(data_opts)
    objective(cfg, ds.task)
    console.print(f"training {model} with {', '.join(names)} until {target_metric} on validation")
    comparison = compare_optimizers(handle, ds, names, cfg, lrs=per_lr)
    render_comparison(comparison, console)
    card = cost_card(handle)
    save_outputs(comparison.to_dict(), json_out, None)
    if save:
        run_id, url = record_optimizer_comparison(comparison, [cfg, data_opts], card, OPTIONS.store_url)
        console.print(f"saved as run {run_id} in {url}")
