"""The options each config contributes to the commands, declared once (see :mod:`steelyard.cli.options`).

Types, defaults and help come from the config fields; what is written here is only where the
command line differs from the field: a flag's name or form, text parsed into the field, a
command's own default. :class:`~steelyard.data.options.DataOptions` carries no help metadata of
its own, so its help is given here.
"""

from __future__ import annotations

from pathlib import Path

from steelyard.cli.common import parse_time
from steelyard.cli.options import REQUIRED, Group, Opt
from steelyard.data.options import DataOptions
from steelyard.distill.config import DistillConfig
from steelyard.search.config import OptimizeConfig, SearchConfig
from steelyard.training.config import FinetuneConfig

DATA = Group.of(
    DataOptions,
    Opt("source", param="data", flags=("--data",), help="built-in (bbc-news, digits), CSV/JSONL/Parquet/txt file, "
        "class folders, saved HF dataset, or hub name"),
    Opt("task", help="text-classification | image-classification | feature-extraction | causal-lm (default: from "
        "the model and data)"),
    Opt("text_column", help="column holding the text"),
    Opt("label_column", help="column holding the label"),
    Opt("image_column", help="column holding the image (path, bytes or array)"),
    Opt("seed", help="seed for splits, subsets, initialisation and data order"),
    Opt("clean", flags=("--clean/--no-clean",), help="drop empty, duplicate, conflicting and leaked examples "
        "(default: on for the built-in sets, off for your own data, which is checked for leakage instead)"),
    Opt("max_train_examples", help="train on a stratified subset of this many examples"),
    Opt("max_eval_examples", help="validate and test on stratified subsets of this many examples"),
    Opt("val_fraction", help="share of the examples carved out as the validation split when the data has none "
        "(from train; the test split stays the same): a larger one resolves smaller accuracy changes when "
        "choosing a model"),
)

#: ``finetune``'s training options; distill and compare-optimizers take part of them.
TRAIN = Group.of(
    FinetuneConfig,
    "epochs", "lr", "batch_size", "optimizer", "weight_decay", "warmup_ratio",
    Opt("max_grad_norm", parse=lambda norm: norm or None),  # 0 on the command line: no clipping
    "patience",
    Opt("target", param="target_metric"),
    Opt("stop_at_target", flags=("--stop-at-target/--no-stop-at-target",)),
    "eval_every", "max_steps", "max_length",
    Opt("freeze_encoder", flags=("--freeze-encoder/--no-freeze-encoder",)),
    Opt("augment", flags=("--augment/--no-augment",)),
    "nproc", "device", "tokenizer", "seed", "lora_rank", "lora_alpha", "lora_targets",
)

DISTILL = Group.of(
    DistillConfig,
    "alpha", "temperature",
    Opt("hidden_states", flags=("--hidden-states/--no-hidden-states",)),
    "hidden_weight",
    Opt("cache_teacher", param="cache", flags=("--cache/--no-cache",),
        help="cache the teacher's logits once per example (--no-cache: run it on every step; same result, slower)"),
)

#: The study options optimize and search share, where the command line takes text.
_STUDY = (
    Opt("timeout", annotation=str | None, parse=lambda text: parse_time(text, "--timeout")),
    Opt("trial_timeout", annotation=str | None, parse=lambda text: parse_time(text, "--trial-timeout")),
    Opt("progress", flags=("--progress/--no-progress",)),
)

OPTIMIZE = Group.of(OptimizeConfig).with_opts(
    *_STUDY,
    Opt("overwrite", flags=("--overwrite",)),
    Opt("prune_hopeless", flags=("--prune-hopeless/--no-prune-hopeless",)),
    Opt("final", flags=("--final/--no-final",)),
)

SEARCH = Group.of(SearchConfig).with_opts(*_STUDY, Opt("space", annotation=Path))

__all__ = ["DATA", "DISTILL", "OPTIMIZE", "REQUIRED", "SEARCH", "TRAIN"]
