"""``steelyard evaluate``: what a model is worth on a task, with bootstrap confidence intervals.

Also holds the model-side helpers the task commands share (loading a model for a dataset and
the model's cost card that every stored quality run carries).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import typer

from steelyard.cli.common import QuietOpt, console
from steelyard.cli.data_cmd import (
    CleanOpt,
    DataOpt,
    DataOptions,
    ImageColumnOpt,
    JsonOpt,
    LabelColumnOpt,
    SaveOpt,
    SeedOpt,
    TaskOpt,
    TextColumnOpt,
    ValFractionOpt,
    load_task_data,
)
from steelyard.cli.option_groups import TRAIN
from steelyard.cli.state import OPTIONS
from steelyard.reporting.markup import escape

ModelArg = Annotated[str, typer.Argument(help="hub id, local folder, config .json, or pkg.module:factory")]
MaxLengthOpt = TRAIN.annotated("max_length")
TokenizerOpt = TRAIN.annotated("tokenizer")
DeviceOpt = TRAIN.annotated("device")


@dataclass(frozen=True)
class EvaluateOptions:
    """What ``steelyard evaluate`` was asked for (stored with the run)."""

    model: str
    split: str
    metrics: tuple[str, ...] | None
    batch_size: int
    max_length: int
    max_examples: int | None
    tokenizer: str | None
    resamples: int
    seed: int
    device: str


def load_handle(model: str, task: str | None, max_length: int, device: str = "cpu") -> Any:
    """Load a model for a task command.

    Only ``causal-lm`` is passed on as the loading task: a classification head must come from the
    model's own config (a head invented at load time would score at random), and fine-tuning
    builds the head it needs itself.
    """
    from steelyard.models import InputSpec, LoadConfig, load_model

    cfg = LoadConfig(task="causal-lm" if task == "causal-lm" else None, device=device,
                     inputs=InputSpec(seq_len=max_length))
    with console.status(f"loading {model}"):
        return load_model(model, cfg)


def cost_card(handle: Any) -> Any:
    """The model's cost card (counted, not timed: fast); None with a note if it cannot be made."""
    from steelyard.profiling.profile import ProfileConfig, profile

    try:
        return profile(handle, ProfileConfig(measure=False, hardware=("local",)))
    except Exception as exc:  # a cost card must never lose a finished evaluation or training run
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        console.print(f"[dim]note: no cost card: {escape(why)}[/dim]")
        return None


def evaluate_command(
    model: ModelArg,
    data: DataOpt,
    task: TaskOpt = None,
    split: Annotated[str, typer.Option(help="train | validation | test | all")] = "test",
    metrics: Annotated[str | None, typer.Option(help="comma-separated, e.g. accuracy,f1,auc or perplexity "
                                                "(default: accuracy,macro_f1,roc_auc / perplexity)")] = None,
    text_column: TextColumnOpt = "text",
    label_column: LabelColumnOpt = "label",
    image_column: ImageColumnOpt = "image",
    batch_size: Annotated[int, typer.Option(help="examples per forward pass")] = 32,
    max_length: MaxLengthOpt = 128,
    max_examples: Annotated[int | None, typer.Option(help="evaluate a stratified subset of this many")] = None,
    tokenizer: TokenizerOpt = None,
    resamples: Annotated[int, typer.Option(help="bootstrap resamples for the confidence intervals")] = 1000,
    seed: SeedOpt = 0,
    clean: CleanOpt = None,
    val_fraction: ValFractionOpt = 0.1,
    device: DeviceOpt = "cpu",
    json_out: JsonOpt = None,
    quiet: QuietOpt = False,
    save: SaveOpt = True,
) -> None:
    """Measure what a model is worth on a task: accuracy, macro-F1, ROC-AUC or perplexity with 95% CIs."""
    from steelyard.cli.common import save_outputs
    from steelyard.data.options import data_task_for
    from steelyard.evaluation import evaluate
    from steelyard.reporting.evaluation_view import render_evaluation
    from steelyard.reporting.run_warnings import leakage_warnings, print_warnings
    from steelyard.store.record import record_evaluation

    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    handle = load_handle(model, task, max_length, device)
    data_opts = DataOptions(data, data_task_for(handle, task), text_column, label_column, image_column, seed, clean,
                            val_fraction=val_fraction)
    ds = load_task_data(data_opts)
    if names:
        from steelyard.evaluation import resolve_metrics

        resolve_metrics(names, ds.task)
    result = evaluate(handle, ds, split, names, batch_size, max_length=max_length, max_examples=max_examples,
                      tokenizer=tokenizer, n_resamples=resamples, seed=seed)
    render_evaluation(result, console)
    warnings = leakage_warnings(result.leakage, next(iter(result.metrics), None))
    print_warnings(warnings, console)
    card = cost_card(handle)
    data_out = {**result.to_dict(), "warnings": warnings}
    if card is not None:
        data_out["cost_card"] = card.to_dict()
    save_outputs(data_out, json_out, None)
    if save:
        options = EvaluateOptions(model, split, tuple(names) if names else None, batch_size, max_length,
                                  max_examples, tokenizer, resamples, seed, device)
        run_id, url = record_evaluation(result, [options, data_opts], card, OPTIONS.store_url,
                                        labels=OPTIONS.labels, data=ds, command=OPTIONS.command)
        console.print(f"saved as run {run_id} in {escape(url)}")
