"""``steelyard compare-optimizers``: steps, samples, wall time and FLOPs each optimizer needs to reach a target."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from steelyard.cli.common import QuietOpt, console
from steelyard.cli.data_cmd import JsonOpt, SaveOpt
from steelyard.cli.evaluate_cmd import ModelArg
from steelyard.cli.finetune_cmd import load_training_data
from steelyard.cli.option_groups import DATA, TRAIN
from steelyard.cli.options import REQUIRED, Opt, with_options
from steelyard.cli.state import OPTIONS
from steelyard.reporting.markup import escape

#: The training options that apply to every optimizer alike (each optimizer is the one compared).
COMPARE_TRAIN = TRAIN.only("epochs", "lr", "batch_size", "weight_decay", "warmup_ratio", "max_grad_norm", "target",
                           "eval_every", "max_steps", "max_length", "freeze_encoder", "device", "tokenizer",
                           "seed").with_opts(
    Opt("target", param="target_metric", default=REQUIRED, help="the quality to reach on validation, e.g. "
        "accuracy=0.9"),
    Opt("eval_every", help="validate every N steps (default: 4 times per epoch)"),
)


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


@with_options(COMPARE_TRAIN, DATA)
def compare_optimizers_command(
    model: ModelArg,
    optimizers: Annotated[str, typer.Option(help="comma-separated: adamw,adam,rmsprop,sgd")] = "adamw,rmsprop,sgd",
    lrs: Annotated[str | None, typer.Option(help="per-optimizer learning rates, e.g. adamw=5e-5,sgd=1e-2")] = None,
    json_out: JsonOpt = None,
    quiet: QuietOpt = False,
    save: SaveOpt = True,
    *,
    opts: dict[str, Any],
) -> None:
    """Same model, data and seed; each optimizer's steps, samples, wall time and counted FLOPs to the target."""
    from steelyard.cli.common import save_outputs
    from steelyard.cli.evaluate_cmd import cost_card
    from steelyard.reporting.training_view import render_comparison
    from steelyard.store.record import record_optimizer_comparison
    from steelyard.training.compare import compare_optimizers, parse_optimizers
    from steelyard.training.finetune import objective

    names = parse_optimizers(optimizers)
    per_lr = parse_lrs(lrs)
    parse_optimizers(list(per_lr) or names)
    cfg = COMPARE_TRAIN.build(opts)
    handle, data_opts, ds = load_training_data(model, opts)
    objective(cfg, ds.task)
    console.print(f"training {escape(model)} with {', '.join(names)} until {cfg.target} on validation")
    comparison = compare_optimizers(handle, ds, names, cfg, lrs=per_lr)
    render_comparison(comparison, console)
    card = cost_card(handle)
    save_outputs(comparison.to_dict(), json_out, None)
    if save:
        run_id, url = record_optimizer_comparison(comparison, [cfg, data_opts], card, OPTIONS.store_url,
                                                  labels=OPTIONS.labels, data=ds, command=OPTIONS.command)
        console.print(f"saved as run {run_id} in {escape(url)}")
