"""``run_search``: ask the study for trials until the study as a whole holds ``n_trials``.

Any number of workers (processes, machines) can run this on the same study. Each asks Optuna for
a trial (a new one, or one queued for a re-run), checks that the trial's slot is within the
budget (:mod:`steelyard.search.trials`), runs the objective (:mod:`steelyard.search.executor`)
and tells the study the result, while a heartbeat thread keeps the trial marked alive:

- an exception in the objective is recorded as FAIL with its message in the ``error`` user
  attribute, and the search goes on;
- a trial past ``trial_timeout_s`` is killed and recorded as FAIL ("passed its time limit");
- a trial whose objective raises :class:`TrialPruned` is recorded as PRUNED. With one objective,
  ``ctx.report(value, step)`` feeds Optuna's median pruner; Optuna cannot prune several
  objectives, so there the objective applies its own rule (``optimize`` prunes a candidate whose
  cost, measured before any training, cannot beat the cheapest candidate already within the
  accuracy budget; see :mod:`steelyard.search.recipe_objective`);
- Ctrl-C, or the search's ``timeout_s``, stops the running trial and puts it back in the queue
  unrun (state WAITING, parameters kept): finished trials stay, and the same command resumes with
  that very candidate;
- a worker killed outright leaves its trial RUNNING; once its heartbeat is ``grace_period`` old,
  the next worker fails it and runs it again (one retry).
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from steelyard.errors import ConfigError
from steelyard.outputs import pause_point
from steelyard.search.executor import Objective, Outcome, TrialRequest, make_executor
from steelyard.search.space import SearchSpace
from steelyard.search.trials import slot_of, slots_used


@dataclass
class SearchOutcome:
    """What this worker did; the study holds everything (see :mod:`steelyard.search.summary`)."""

    #: trial number → complete | pruned | failed, for the trials this worker finished.
    ran: dict[int, str] = field(default_factory=dict)
    #: budget | timeout | interrupted | exhausted (the sampler has no point left)
    stopped: str = "budget"
    seconds: float = 0.0
    #: Trials of the study that use up the budget, when this worker stopped.
    used: int = 0
    n_trials: int = 0


class _Channel:
    """The parent's side of ``ctx.report`` / ``ctx.set_attr``."""

    def __init__(self, trial: Any, n_objectives: int) -> None:
        self.trial, self.single = trial, n_objectives == 1
        self.intermediate: dict[str, float] = {}

    def report(self, value: float, step: int) -> bool:
        if self.single:
            self.trial.report(value, step)
            return bool(self.trial.should_prune())
        self.intermediate[str(step)] = value
        self.trial.set_user_attr("intermediate", self.intermediate)
        return False

    def set_attr(self, key: str, value: Any) -> None:
        self.trial.set_user_attr(str(key), value)


@contextlib.contextmanager
def heartbeat(storage: Any, trial_id: int) -> Iterator[None]:
    """Record the trial's heartbeat every interval while it runs (no-op without heartbeats)."""
    interval = storage.get_heartbeat_interval() if hasattr(storage, "get_heartbeat_interval") else None
    if not interval:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while True:
            with contextlib.suppress(Exception):  # a missed beat is harmless; the next one counts
                storage.record_heartbeat(trial_id)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name="steelyard-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


@contextlib.contextmanager
def _optimize_loop(study: Any) -> Iterator[None]:
    """Tell Optuna this is an optimize loop, as ``Study.optimize`` does: samplers may then call
    ``study.stop()`` (GridSampler does when the grid is done) and ``ask`` does not warn that
    heartbeats need ``optimize`` (this loop beats itself)."""
    local = study._thread_local
    before = local.in_optimize_loop
    local.in_optimize_loop, study._stop_flag = True, False
    try:
        yield
    finally:
        local.in_optimize_loop = before


def fail_stale(study: Any) -> None:
    """Fail the RUNNING trials of dead workers (their re-runs are queued by the storage's callback)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.storages.fail_stale_trials(study)


def release(study: Any, trial: Any) -> None:
    """Put an unfinished trial back in the queue: the next ``ask`` (any worker) runs it again."""
    from optuna.trial import TrialState

    with contextlib.suppress(Exception):  # already finished by someone else: nothing to release
        study._storage.set_trial_state_values(trial._trial_id, TrialState.WAITING)


def objective_names(study: Any) -> list[str]:
    names = [str(n) for n, _ in study.user_attrs.get("objectives") or ()]
    return names or [f"value{i}" for i in range(len(study.directions))]


def completed_metrics(trials: Sequence[Any], names: Sequence[str]) -> list[dict[str, float]]:
    from optuna.trial import TrialState

    out = []
    for t in trials:
        if t.state == TrialState.COMPLETE:
            metrics = dict(t.user_attrs.get("metrics") or {})
            metrics.update({n: float(v) for n, v in zip(names, t.values or (), strict=False)})
            out.append(metrics)
    return out


def completed_count(trials: Sequence[Any], study: Any) -> str:
    """Default progress words: how many trials have completed (the CLI passes a richer status)."""
    from optuna.trial import TrialState

    done = sum(1 for t in trials if t.state == TrialState.COMPLETE)
    return f"{done} completed"


def same_params(trials: Sequence[Any], number: int, params: dict[str, Any]) -> Any:
    """A finished (complete or pruned) earlier trial with exactly these parameters, or None.

    A failed trial does not count: its failure may have been the machine's, so it is run again.
    """
    from optuna.trial import TrialState

    for t in trials:
        if t.number != number and t.state in (TrialState.COMPLETE, TrialState.PRUNED) and t.params == params:
            return t
    return None


def _check(n_trials: int, timeout_s: float | None, trial_timeout_s: float | None) -> None:
    if n_trials < 1:
        raise ConfigError(f"the number of trials must be at least 1, got {n_trials}")
    for what, value in (("search time limit", timeout_s), ("trial time limit", trial_timeout_s)):
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise ConfigError(f"the {what} must be a positive number of seconds, got {value}")


def run_search(
    study: Any,
    objective: Objective,
    space: SearchSpace,
    n_trials: int,
    timeout_s: float | None = None,
    trial_timeout_s: float | None = None,
    progress: bool | None = None,
    *,
    isolation: str = "process",
    on_trial: Callable[[Any], None] | None = None,
    status: Callable[[Sequence[Any], Any], str] | None = None,
    skip_repeats: bool = False,
) -> SearchOutcome:
    """Run trials until the study holds ``n_trials`` (all workers together), the time is up, or Ctrl-C.

    ``objective(ctx)`` gets a :class:`~steelyard.search.executor.TrialContext` (parameters, recipe
    text, history) and returns a mapping that holds at least every objective of the study by name;
    the rest is kept as the trial's ``metrics``. ``on_trial(frozen_trial)`` is called after each
    finished trial of this worker; ``status(trials, study)`` words the progress bar.
    ``skip_repeats``: a trial whose parameters an earlier trial already finished with is recorded as
    pruned instead of run again (samplers re-propose points of small categorical spaces, and a
    recipe trial costs minutes; off for objectives whose repeats measure noise on purpose).
    """
    from steelyard.evaluation.progress import progress_bar, progress_enabled

    _check(n_trials, timeout_s, trial_timeout_s)
    names = objective_names(study)
    status = status or completed_count
    executor = make_executor(objective, isolation)
    start = time.time()
    stop_at = start + timeout_s if timeout_s else None
    worker = f"{socket.gethostname()}:{os.getpid()}"
    outcome = SearchOutcome(n_trials=n_trials)
    trials = study.get_trials(deepcopy=False)
    with _optimize_loop(study), progress_bar("search", n_trials, progress_enabled(progress)) as bar:
        shown = min(slots_used(trials), n_trials)
        bar.advance(shown)
        bar.describe(f"search · {status(trials, study)}")
        try:
            while True:
                if stop_at is not None and time.time() >= stop_at:
                    outcome.stopped = "timeout"
                    break
                fail_stale(study)
                if slots_used(study.get_trials(deepcopy=False)) >= n_trials:
                    break
                trial = study.ask()
                trials = study.get_trials(deepcopy=False)
                if slot_of(trials, trial.number) >= n_trials:  # another worker took the last slot
                    release(study, trial)
                    break
                state = _run_one(study, trial, space, executor, names, trials, worker, trial_timeout_s, stop_at,
                                 skip_repeats)
                if state == "stopped":
                    outcome.stopped = "timeout"
                    break
                outcome.ran[trial.number] = state
                if study._stop_flag:  # the sampler has nothing left to propose (a finished grid)
                    outcome.stopped = "exhausted"
                    break
                trials = study.get_trials(deepcopy=False)
                if on_trial is not None:
                    on_trial(study._storage.get_trial(trial._trial_id))
                used = min(slots_used(trials), n_trials)
                bar.advance(max(0, used - shown))
                shown = used
                bar.describe(f"search · {status(trials, study)}")
        except KeyboardInterrupt:
            outcome.stopped = "interrupted"
        finally:
            executor.close()
    outcome.seconds = time.time() - start
    outcome.used = slots_used(study.get_trials(deepcopy=False))
    return outcome


def _run_one(
    study: Any,
    trial: Any,
    space: SearchSpace,
    executor: Any,
    names: list[str],
    trials: Sequence[Any],
    worker: str,
    trial_timeout_s: float | None,
    stop_at: float | None,
    skip_repeats: bool = False,
) -> str:
    """Run one trial and tell the study; returns its state, or "stopped" when it was put back unrun."""
    from optuna.trial import TrialState

    try:
        params = space.suggest(trial)
        recipe = space.recipe_text(params)
        trial.set_user_attr("worker", worker)
        if recipe is not None:
            trial.set_user_attr("recipe", recipe)
        twin = same_params(trials, trial.number, params) if skip_repeats else None
        if twin is not None:  # samplers re-propose points of small categorical spaces; a rerun costs minutes
            reason = f"same parameters as trial #{twin.number} ({twin.state.name.lower()}): not run again"
            trial.set_user_attr("pruned", reason)
            trial.set_user_attr("duplicate_of", twin.number)
            study.tell(trial, state=TrialState.PRUNED)
            return "pruned"
        pause_point("trial-start")  # tests send Ctrl-C here: the trial must go back to the queue
        request = TrialRequest(trial.number, params, recipe, completed_metrics(trials, names))
        started = time.time()
        deadline = started + trial_timeout_s if trial_timeout_s else None
        with heartbeat(study._storage, trial._trial_id):
            result: Outcome = executor.run(request, _Channel(trial, len(names)), deadline, stop_at)
    except BaseException:  # Ctrl-C or a broken storage: the trial did not finish, queue it again
        release(study, trial)
        raise
    if result.state == "stopped":
        release(study, trial)
        return "stopped"
    trial.set_user_attr("duration_s", round(time.time() - started, 3))
    if result.state == "complete":
        missing = [n for n in names if n not in result.metrics]
        values = [result.metrics.get(n, math.nan) for n in names]
        if missing:
            result = Outcome("failed", message=f"the objective returned no {', '.join(missing)} (it returned "
                                               f"{', '.join(result.metrics) or 'nothing'})")
        elif not all(math.isfinite(v) for v in values):
            result = Outcome("failed", message="the objective returned a value that is not finite: "
                                               + ", ".join(f"{n}={v}" for n, v in zip(names, values, strict=True)))
        else:
            trial.set_user_attr("metrics", result.metrics)
            study.tell(trial, values)
            return "complete"
    if result.state == "pruned":
        trial.set_user_attr("pruned", result.message)
        study.tell(trial, state=TrialState.PRUNED)
        return "pruned"
    if result.state == "timeout":
        limit = f"{trial_timeout_s:g} s" if trial_timeout_s else "its"
        trial.set_user_attr("error", f"time limit: passed the trial time limit of {limit}; stopped")
    else:
        trial.set_user_attr("error", result.message)
        if result.traceback:
            trial.set_user_attr("traceback", result.traceback[-4000:])
    study.tell(trial, state=TrialState.FAIL)
    return "failed"
