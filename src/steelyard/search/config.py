"""The configs of the two study workflows, :func:`~steelyard.search.optimize_run.optimize` and
:func:`~steelyard.search.search_run.search`, as frozen, validated dataclasses.

Both keep their trials in an Optuna study and measure each trial's recipe with the same harness,
so what they share (the study, the sampler, the timing batch, the trial process) is one base,
:class:`StudyConfig`. Each field carries its help text in ``metadata["help"]``: the command line
options are generated from it (:mod:`steelyard.cli.options`), so an option is declared once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steelyard.errors import ConfigError

ISOLATIONS = ("process", "inline")


def _help(text: str) -> dict[str, Any]:
    return {"help": text}


@dataclass(frozen=True, kw_only=True)
class StudyConfig:
    """How a study runs its trials and measures each one (the part optimize and search share)."""

    trials: int = field(default=20, metadata=_help("finished trials the study should hold, all workers together"))
    timeout: float | None = field(default=None, metadata=_help(
        "stop this worker after this long (e.g. 30m, 2h); a running trial goes back to the queue"))
    trial_timeout: float | None = field(default=None, metadata=_help(
        "fail a trial that runs longer than this (e.g. 10m)"))
    study: str | None = field(default=None, metadata=_help(
        "study name (default: from the command, so running it again resumes)"))
    storage: str | None = field(default=None, metadata=_help(
        "study storage: sqlite:///file.db, postgresql://..., or a file path (default: studies.db next to the "
        "results store)"))
    #: The results store whose folder holds the default study storage (the CLI's ``--store``).
    store_url: str | None = None
    sampler: str = field(default="tpe", metadata=_help("tpe (multi-objective TPE) | nsga2 | random | grid"))
    sampler_seed: int | None = field(default=None, metadata=_help(
        "seed of the sampler (only for a single worker: two workers with one seed propose the same points)"))
    batch_size: int = field(default=32, metadata=_help("timing batch (real validation examples)"))
    max_length: int = field(default=128, metadata=_help("tokens per text (truncation; the block size for "
                                                        "perplexity)"))
    rounds: int = field(default=5, metadata=_help(
        "alternating timing rounds of original and compressed per trial"))
    threads: int | None = field(default=None, metadata=_help("torch threads while timing (default: torch's)"))
    tokenizer: str | None = field(default=None, metadata=_help(
        "tokenizer folder or hub id, for models that have none"))
    seed: int = field(default=0, metadata=_help("seed for splits, subsets, initialisation and data order"))
    isolation: str = field(default="process", metadata=_help(
        "process: each trial in a child process that is killed at --trial-timeout; inline: in this process "
        "(no hard time limit)"))
    progress: bool | None = field(default=None, metadata=_help(
        "progress (default on): bars in a terminal, else a log line every 5 s"))

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise ConfigError(f"the number of trials must be at least 1, got {self.trials}")
        for flag, value in (("--timeout", self.timeout), ("--trial-timeout", self.trial_timeout)):
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"{flag} must be longer than zero, got {value} s")
        if self.isolation not in ISOLATIONS:
            raise ConfigError(f"--isolation must be process or inline, got '{self.isolation}'")

    def recipe_options(self) -> Any:
        """How each trial's recipe is measured: on the validation split, with fewer bootstrap resamples
        than a report (the CI is shown, not used), no nested progress bars, and no generation rows (no
        objective reads them; optimize's final run measures them)."""
        from steelyard.compression.recipe import RecipeOptions

        return RecipeOptions(eval_split="validation", batch_size=self.batch_size, max_length=self.max_length,
                             rounds=self.rounds, threads=self.threads, tokenizer=self.tokenizer, seed=self.seed,
                             progress=False, n_resamples=200, generation=None)


@dataclass(frozen=True, kw_only=True)
class OptimizeConfig(StudyConfig):
    """The cheapest recipe of the built-in space whose accuracy drop is at most ``max_drop`` points.

    The choice is made on the validation split; with ``final`` the winner is re-run and measured on
    the test split, and saved to ``output`` when one is given.
    """

    trials: int = field(default=40, metadata=_help("finished trials the study should hold, all workers together"))
    max_drop: float = field(default=1.0, metadata=_help(
        "largest accepted accuracy drop vs the original, in points"))
    objective: str = field(default="latency", metadata=_help("cost to minimize: latency | size | flops"))
    output: Path | None = field(default=None, metadata=_help(
        "save the winning model here, with its before / after report measured on the test split"))
    overwrite: bool = field(default=False, metadata=_help("replace an existing --output"))
    recovery_steps: int = field(default=100, metadata=_help(
        "optimizer steps of a trial's recovery fine-tune or distillation"))
    recovery_lr: float = field(default=1e-4, metadata=_help("learning rate of the recovery step"))
    prune_hopeless: bool = field(default=True, metadata=_help(
        "skip the training of a trial whose cost cannot beat the best within budget"))
    backend: str | None = field(default=None, metadata=_help(
        "runtimes a trial may be served in, a search dimension: all (torch, onnxruntime, openvino where "
        "installed) or comma-separated names; default: torch only"))
    final: bool = field(default=True, metadata=_help(
        "re-run the winner on the test split (and save it); extra workers on a shared study can skip it"))

    def __post_init__(self) -> None:
        from steelyard.search.recipe_objective import COSTS, NOT_OBJECTIVES

        super().__post_init__()
        if self.objective in NOT_OBJECTIVES:
            raise ConfigError(NOT_OBJECTIVES[self.objective])
        if self.objective not in COSTS:
            raise ConfigError(f"unknown --objective '{self.objective}'; valid objectives: {', '.join(COSTS)}")
        if not self.max_drop >= 0:
            raise ConfigError(f"--max-drop must be zero or more points, got {self.max_drop}")
        if self.recovery_steps < 1 or not self.recovery_lr > 0:
            raise ConfigError("--recovery-steps must be at least 1 and --recovery-lr positive")


@dataclass(frozen=True, kw_only=True)
class SearchConfig(StudyConfig):
    """A space of recipes (YAML or a :class:`~steelyard.search.space.SearchSpace`) searched for the
    Pareto front of ``objectives``; with ``budget``, the answer is the best point within the limits."""

    space: Any = field(metadata=_help(
        "search space YAML: params (type int|float|categorical|bool, low/high/step/log/choices) and a recipe "
        "template with {param} placeholders"))
    objectives: str = field(metadata=_help(
        "name:max|min, comma-separated: accuracy, drop, latency (relative to the original), speedup, size, "
        "flops, params, ..."))
    budget: str | None = field(default=None, metadata=_help(
        "limits the answer must meet, e.g. \"flops<=2e10,latency<=0.5,drop<=1\" (latency relative to the "
        "original); the answer is the best first objective within them"))
