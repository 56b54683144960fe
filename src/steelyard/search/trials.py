"""Which trials of a study use up the trial budget, and why a trial did not complete.

``--trials N`` is the number of *finished* trials the whole study should hold, whichever worker
ran them. A trial takes one slot of the budget when it is finished (complete, pruned, failed),
running, or a queued re-run of a dead worker's trial; it does not when it was superseded by such a
re-run (Optuna's ``retry_history``), or when it is a trial put back in the queue unrun
(interrupted, or over the budget). Slots are ranked by trial number, which Optuna hands out under
a lock on the study, so two workers that race for the last slot agree on who gets it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

RETRY_HISTORY = "retry_history"
FAILED_TRIAL = "failed_trial"


def superseded(trials: Sequence[Any]) -> set[int]:
    """Numbers of failed trials that a queued or finished re-run replaces."""
    out: set[int] = set()
    for t in trials:
        out.update(int(n) for n in t.system_attrs.get(RETRY_HISTORY, ()))
    return out


def takes_slot(trial: Any, replaced: set[int]) -> bool:
    from optuna.trial import TrialState

    if trial.state == TrialState.WAITING:
        return FAILED_TRIAL in trial.system_attrs  # a queued re-run
    if trial.state == TrialState.FAIL:
        return trial.number not in replaced
    return True  # COMPLETE, PRUNED, RUNNING


def slots_used(trials: Sequence[Any]) -> int:
    replaced = superseded(trials)
    return sum(takes_slot(t, replaced) for t in trials)


def slot_of(trials: Sequence[Any], number: int) -> int:
    """0-based rank of trial ``number`` among the trials that take a slot."""
    replaced = superseded(trials)
    return sum(1 for t in trials if t.number < number and takes_slot(t, replaced))


def failure_reason(trial: Any, replaced: set[int] | None = None, retries: dict[int, int] | None = None) -> str:
    """One line on why a trial did not complete ("" for a completed one)."""
    from optuna.trial import TrialState

    attrs = trial.user_attrs
    if trial.state == TrialState.PRUNED:
        return "pruned: " + str(attrs.get("pruned") or "the pruner stopped it")
    if trial.state == TrialState.FAIL:
        text = str(attrs.get("error") or "its worker stopped sending heartbeats (killed or lost)")
        if retries and trial.number in retries:
            text += f"; re-run as trial {retries[trial.number]}"
        return text
    if trial.state == TrialState.WAITING:
        if FAILED_TRIAL in trial.system_attrs:
            return f"queued: re-run of trial {trial.system_attrs[FAILED_TRIAL]}"
        return "queued: not run yet (interrupted or over the budget)"
    if trial.state == TrialState.RUNNING:
        return "running"
    return ""


def retried_as(trials: Sequence[Any]) -> dict[int, int]:
    """Failed trial number → the number of the trial that re-runs it."""
    out: dict[int, int] = {}
    for t in trials:
        history = t.system_attrs.get(RETRY_HISTORY)
        if history:
            out[int(history[-1])] = t.number
    return out
