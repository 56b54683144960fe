"""``steelyard data-report`` and ``steelyard data-needs``, and the data options every task command shares.

The data option types below come from :data:`steelyard.cli.option_groups.DATA` and are reused by
the commands that declare their data options by hand (evaluate, data-report, data-needs,
compress), so a flag means the same thing (and has the same help) everywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from steelyard.cli.common import QuietOpt, console, json_option
from steelyard.cli.option_groups import DATA
from steelyard.cli.state import OPTIONS
from steelyard.data.options import DataOptions
from steelyard.reporting.markup import escape

if TYPE_CHECKING:
    from steelyard.data import TaskDataset

DataOpt = DATA.annotated("source")
TaskOpt = DATA.annotated("task")
TextColumnOpt = DATA.annotated("text_column")
LabelColumnOpt = DATA.annotated("label_column")
ImageColumnOpt = DATA.annotated("image_column")
SeedOpt = DATA.annotated("seed")
CleanOpt = DATA.annotated("clean")
MaxTrainOpt = DATA.annotated("max_train_examples")
MaxEvalOpt = DATA.annotated("max_eval_examples")
ValFractionOpt = DATA.annotated("val_fraction")
JsonOpt = json_option()
SaveOpt = Annotated[bool, typer.Option("--save/--no-save", help="record the run in the results store")]


def load_task_data(opts: DataOptions) -> TaskDataset:
    """Load a dataset the way every task command does (see :class:`DataOptions`), with a spinner."""
    with console.status(f"loading data {opts.source}"):
        return opts.load()


def data_report_command(
    data: DataOpt,
    task: TaskOpt = None,
    text_column: TextColumnOpt = "text",
    label_column: LabelColumnOpt = "label",
    image_column: ImageColumnOpt = "image",
    seed: SeedOpt = 0,
    val_fraction: ValFractionOpt = 0.1,
    clean: Annotated[bool, typer.Option("--clean", help="also show what cleaning drops and the sizes after")] = False,
    json_out: JsonOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Check data before training: empty and duplicate examples, leakage, conflicting labels, balance, lengths."""
    from steelyard.cli.common import save_outputs
    from steelyard.data import clean as clean_dataset
    from steelyard.data import data_report, drop_counts
    from steelyard.reporting.evaluation_view import render_data_report
    from steelyard.serialize import to_dict

    ds = load_task_data(DataOptions(data, task, text_column, label_column, image_column, seed, clean=False,
                                    val_fraction=val_fraction))
    report = data_report(ds)
    drops = cleaned = None
    if clean:
        drops = drop_counts(report)
        cleaned = clean_dataset(ds, report).sizes()
    render_data_report(report, console, drops, cleaned)
    for note in ds.notes:
        console.print(f"[dim]note: {escape(note)}[/dim]")
    payload = {"report": to_dict(report), "drops": drops, "cleaned_sizes": cleaned}
    save_outputs(payload, json_out, None)


def data_needs_command(
    model: Annotated[str, typer.Argument(help="hub id, local folder, config .json, or pkg.module:factory")],
    data: DataOpt,
    target_metric: Annotated[str, typer.Option(help="the goal, e.g. accuracy=0.95")],
    task: TaskOpt = None,
    sizes: Annotated[str | None, typer.Option(help="training-set sizes, e.g. 50,100,200 (default: geometric)")] = None,
    points: Annotated[int, typer.Option(help="number of sizes when --sizes is not given")] = 5,
    repeats: Annotated[int, typer.Option(help="runs per size with different seeds")] = 1,
    freeze_encoder: Annotated[bool, typer.Option("--freeze-encoder/--full", help="head on frozen embeddings "
                                                 "(fast, default) or a full fine-tune at every size")] = True,
    epochs: Annotated[int | None, typer.Option(help="epochs per run (default 20 head-only; full: 3 to 10, "
                                                "enough for ~300 steps, with early stopping)")] = None,
    lr: Annotated[float | None, typer.Option(help="learning rate (default per optimizer and mode)")] = None,
    batch_size: Annotated[int, typer.Option(help="training batch size")] = 16,
    optimizer: Annotated[str, typer.Option(help="adamw | adam | rmsprop | sgd")] = "adamw",
    max_length: Annotated[int, typer.Option(help="tokens per text")] = 128,
    text_column: TextColumnOpt = "text",
    label_column: LabelColumnOpt = "label",
    image_column: ImageColumnOpt = "image",
    clean: CleanOpt = None,
    max_eval_examples: MaxEvalOpt = None,
    val_fraction: ValFractionOpt = 0.1,
    seed: SeedOpt = 0,
    tokenizer: Annotated[str | None, typer.Option(help="tokenizer folder or hub id (models without one)")] = None,
    json_out: JsonOpt = None,
    quiet: QuietOpt = False,
    save: SaveOpt = True,
) -> None:
    """Learning curve: the metric at growing training-set sizes, a fitted power law, and the examples needed."""
    from steelyard.cli.common import save_outputs
    from steelyard.cli.evaluate_cmd import cost_card, load_handle
    from steelyard.data.options import data_task_for
    from steelyard.errors import ConfigError
    from steelyard.metrics import parse_target
    from steelyard.reporting.training_view import render_data_needs
    from steelyard.store.record import record_data_needs
    from steelyard.training.config import FinetuneConfig
    from steelyard.training.data_needs import data_needs

    cfg = FinetuneConfig(epochs=epochs, lr=lr, batch_size=batch_size, optimizer=optimizer, max_length=max_length,
                         freeze_encoder=freeze_encoder, seed=seed, tokenizer=tokenizer)
    size_list = None
    if sizes:
        try:
            size_list = [int(s) for s in sizes.split(",") if s.strip()]
        except ValueError:
            raise ConfigError(f"--sizes must be integers like 50,100,200, got {sizes!r}") from None
    handle = load_handle(model, task, max_length)
    data_opts = DataOptions(data, data_task_for(handle, task), text_column, label_column, image_column, seed, clean,
                            None, max_eval_examples, val_fraction)
    ds = load_task_data(data_opts)
    parse_target(target_metric, ds.task)
    with console.status("training at each size"):
        needs = data_needs(handle, ds, target_metric, cfg, sizes=size_list, points=points, repeats=repeats)
    render_data_needs(needs, console)
    card = cost_card(handle)
    save_outputs(needs.to_dict(), json_out, None)
    if save:
        run_id, url = record_data_needs(needs, [cfg, data_opts], card, OPTIONS.store_url,
                                        labels=OPTIONS.labels, data=ds, command=OPTIONS.command)
        console.print(f"saved as run {run_id} in {escape(url)}")
