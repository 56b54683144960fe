"""What :func:`~steelyard.search.optimize_run.optimize` and :func:`~steelyard.search.search_run.search`
share: the model and data they measure, the study they open and the trials they run.

Both verbs return plain data and print nothing. What happens on the way (a study opened or
resumed, each finished trial, the final re-run) is told to an ``on_event`` callback as one of the
small event types below; without a callback the events go to the ``steelyard.search`` logger.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from steelyard.data.options import DataOptions
from steelyard.errors import ConfigError
from steelyard.search.config import StudyConfig

log = logging.getLogger("steelyard.search")


@dataclass(frozen=True)
class StudyOpened:
    """The study is open: ``used`` of the ``trials`` slots were already taken (0: a new study)."""

    name: str
    used: int
    trials: int


@dataclass(frozen=True)
class TrialsCapped:
    """A grid has fewer points than the trials asked for; the budget was lowered to the grid."""

    points: int
    asked: int


@dataclass(frozen=True)
class TrialFinished:
    """One trial of this worker finished (the Optuna ``FrozenTrial``)."""

    trial: Any


@dataclass(frozen=True)
class TrialsDone:
    """This worker stopped running trials (a :class:`~steelyard.search.runner.SearchOutcome`)."""

    outcome: Any


@dataclass(frozen=True)
class FinalRunStarted:
    """``optimize`` re-runs its winner, measured on the test split."""

    number: int
    recipe: str


@dataclass(frozen=True)
class StartingRuntimeChosen:
    """``optimize`` measured which runtime serves its starting points (a ``StartingRuntime``)."""

    starting: Any


@dataclass(frozen=True)
class RuntimesTimingStarted:
    """``optimize`` times its winner against each searched runtime alone on the uncompressed model."""

    backends: tuple[str, ...]


@dataclass
class StudyResult:
    """A study after this worker's trials: every trial, the front and the answer (``summary.best``)."""

    config: StudyConfig
    #: The :class:`DataOptions` the trials loaded (the splits are the same for every trial).
    data: DataOptions
    #: A :class:`~steelyard.search.summary.StudySummary`; ``summary.best`` is None when no trial qualifies.
    summary: Any
    #: What this worker did (a :class:`~steelyard.search.runner.SearchOutcome`): trials run, why it stopped.
    outcome: Any

    @property
    def best(self) -> Any:
        return self.summary.best

    @property
    def interrupted(self) -> bool:
        return self.outcome.stopped == "interrupted"


StudyEvent = (StudyOpened | TrialsCapped | TrialFinished | TrialsDone | FinalRunStarted | StartingRuntimeChosen
              | RuntimesTimingStarted)
OnEvent = Callable[[StudyEvent], None]
#: Words for the progress bar from the completed trials and the study (the caller renders them).
Status = Callable[[Sequence[Any], Any], str]


def log_event(event: StudyEvent) -> None:
    """The default ``on_event``: one INFO record on the ``steelyard.search`` logger."""
    log.info("%s", event)


def source_of(model: Any) -> str:
    """What trial processes load: the source given, or a handle's ``name`` (the source it was loaded from)."""
    return str(getattr(model, "name", model))


def model_and_data(model: Any, data: DataOptions | str, config: StudyConfig) -> tuple[Any, Any, DataOptions]:
    """The handle, the loaded dataset and the :class:`DataOptions` the trial processes load the same
    splits with. A model given by source is loaded for ``config.max_length`` tokens; a handle is used
    as it is. Data given by name is read with the default columns; a data task left open is the
    model's when it names one, else the data's."""
    from steelyard.data.options import data_task_for
    from steelyard.models import InputSpec, LoadConfig, ModelHandle, load_model

    spec = data if isinstance(data, DataOptions) else DataOptions(str(data), seed=config.seed)
    handle = model if isinstance(model, ModelHandle) else load_model(
        str(model), LoadConfig(task="causal-lm" if spec.task == "causal-lm" else None,
                               inputs=InputSpec(seq_len=config.max_length)))
    if spec.task is None:
        spec = dataclasses.replace(spec, task=data_task_for(handle, None))
    dataset = spec.load()
    if dataset.task not in ("text-classification", "image-classification"):
        raise ConfigError(f"recipe searches measure accuracy on classification data; {spec.source} is "
                          f"{dataset.task}")
    return handle, dataset, spec


def settings(config: StudyConfig, data: DataOptions, **extra: Any) -> dict[str, Any]:
    """What a resume must measure the same way (stored with the study and compared on resume)."""
    return {"batch_size": config.batch_size, "max_length": config.max_length, "rounds": config.rounds,
            "threads": config.threads, "tokenizer": config.tokenizer, "seed": config.seed, "task": data.task,
            "text_column": data.text_column, "label_column": data.label_column, "clean": data.clean,
            "max_train_examples": data.max_train_examples, "max_eval_examples": data.max_eval_examples, **extra}


def open_storage_of(config: StudyConfig) -> Any:
    from steelyard.search.storage import open_storage

    return open_storage(config.storage, store_url=config.store_url)


def opened(study: Any, config: StudyConfig, on_event: OnEvent) -> None:
    from steelyard.search.trials import slots_used

    on_event(StudyOpened(study.study_name, slots_used(study.get_trials(deepcopy=False)), config.trials))


def run_trials(study: Any, objective: Any, space: Any, config: StudyConfig, on_event: OnEvent,
               status: Callable[[Sequence[Any], Any], str] | None = None) -> Any:
    """Run the study's trials (:func:`~steelyard.search.runner.run_search`), telling each one to ``on_event``."""
    from steelyard.search.runner import run_search

    outcome = run_search(study, objective, space, config.trials, config.timeout, config.trial_timeout,
                         config.progress, isolation=config.isolation,
                         on_trial=lambda trial: on_event(TrialFinished(trial)), status=status, skip_repeats=True)
    on_event(TrialsDone(outcome))
    return outcome


def summary_of(study: Any, spec: Any, storage: Any) -> Any:
    from steelyard.search.storage import storage_url
    from steelyard.search.summary import summarize

    return summarize(study, spec, storage_url(storage))
