"""Run one trial's objective, in a child process that can be killed, or inline.

Why a child process: a trial that exceeds its time limit (a fine-tune that will not end, a
kernel that hangs) can only be stopped for sure by killing the process it runs in, and a trial
that crashes the interpreter (out of memory, a segfault in a native kernel) then takes only its
child with it, not the search. The child is started once with ``spawn`` and reused for every
trial of the worker, so the model and data the objective loads are loaded once; it is started
again only after a kill. ``spawn`` rather than ``fork``: after PyTorch has used its OpenMP
thread pool, a forked child hangs in its first multi-threaded op (measured here: a 512×512
matmul never returned), and forking next to the heartbeat thread and the database connections
is unsafe. The price is that the objective must be picklable (a module-level function or a
dataclass instance) and that the first trial of a worker pays the child's imports.

Inline execution (``isolation="inline"``) runs the objective in the worker itself: any callable
works, but a time limit can only be enforced when the objective calls ``ctx.report`` or
``ctx.check_time`` (and when it returns), and a crash takes the worker down.

Messages child → parent: ``report`` (answered with whether to prune), ``attr``, then one of
``done`` / ``pruned`` / ``failed``. The child ignores SIGINT (Ctrl-C in a terminal reaches the
whole process group; the parent decides what to do) and exits when its parent disappears.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from steelyard.errors import ConfigError

#: Seconds between checks of the child and the deadlines while a trial runs.
POLL_S = 0.2
#: Seconds a fresh child may take to start (imports) before it counts as broken; its start-up
#: is not charged to the trial's time limit.
START_TIMEOUT_S = 300.0


class TrialPruned(Exception):
    """Raised by an objective (or ``ctx.report``) to stop a hopeless trial; recorded as PRUNED."""


class TrialTimeout(Exception):
    """Raised inline when a trial passes its time limit."""


class ChildStartError(Exception):
    """The trial process died or hung while starting."""


class Channel(Protocol):
    def report(self, value: float, step: int) -> bool: ...

    def set_attr(self, key: str, value: Any) -> None: ...


@dataclass
class TrialContext:
    """What an objective sees of its trial: the parameters, the recipe, what finished before it."""

    number: int
    params: dict[str, Any]
    recipe: str | None = None
    #: Metrics of the trials that had completed when this one started (any worker).
    history: list[dict[str, float]] = field(default_factory=list)
    #: Seconds since the epoch when this trial must end (None: no limit).
    deadline: float | None = None
    _channel: Channel | None = field(default=None, repr=False)

    def report(self, value: float, step: int) -> None:
        """An intermediate value (single objective: the pruner may stop the trial here)."""
        self.check_time()
        if self._channel is not None and self._channel.report(float(value), int(step)):
            raise TrialPruned(f"intermediate value {value:.4g} at step {step} is below the median of earlier trials")

    def set_attr(self, key: str, value: Any) -> None:
        """Store a JSON-able value with the trial (shown by ``study show --json``)."""
        if self._channel is not None:
            self._channel.set_attr(key, value)

    def prune(self, reason: str) -> None:
        raise TrialPruned(reason)

    def check_time(self) -> None:
        if self.deadline is not None and time.time() > self.deadline:
            raise TrialTimeout("passed its time limit")


Objective = Callable[[TrialContext], Mapping[str, float]]


@dataclass(frozen=True)
class TrialRequest:
    number: int
    params: dict[str, Any]
    recipe: str | None
    history: list[dict[str, float]]


@dataclass
class Outcome:
    #: complete | pruned | failed | timeout | crashed | stopped (the search's own deadline)
    state: str
    metrics: dict[str, float] = field(default_factory=dict)
    message: str = ""
    traceback: str = ""


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _call(objective: Objective, ctx: TrialContext) -> Outcome:
    """Run the objective; every exception becomes an outcome (the search goes on)."""
    try:
        result = objective(ctx)
    except TrialPruned as exc:
        return Outcome("pruned", message=str(exc))
    except TrialTimeout as exc:
        return Outcome("timeout", message=str(exc))
    except Exception as exc:
        if type(exc).__name__ == "TrialPruned":  # optuna.TrialPruned raised by the objective
            return Outcome("pruned", message=str(exc))
        return Outcome("failed", message=_error_text(exc), traceback=traceback.format_exc(limit=20))
    try:
        metrics = {str(k): float(v) for k, v in dict(result).items()}
    except (TypeError, ValueError) as exc:
        return Outcome("failed", message=f"the objective must return a mapping of names to numbers, got "
                                         f"{type(result).__name__} ({exc})")
    return Outcome("complete", metrics)


class InlineExecutor:
    """Run the objective in this process."""

    def __init__(self, objective: Objective) -> None:
        self.objective = objective

    def run(self, request: TrialRequest, channel: Channel, trial_deadline: float | None,
            stop_deadline: float | None = None) -> Outcome:
        started = time.time()
        ctx = TrialContext(request.number, dict(request.params), request.recipe, list(request.history),
                           trial_deadline, channel)
        outcome = _call(self.objective, ctx)
        if outcome.state == "timeout" or (trial_deadline is not None and time.time() > trial_deadline):
            return Outcome("timeout", message=f"passed its time limit ({time.time() - started:.0f} s)")
        return outcome

    def close(self) -> None:
        pass


class _ChildChannel:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def report(self, value: float, step: int) -> bool:
        self.conn.send(("report", value, step))
        return bool(self.conn.recv())

    def set_attr(self, key: str, value: Any) -> None:
        self.conn.send(("attr", key, value))


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(3)


def _child_main(conn: Any, objective: Objective, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    channel = _ChildChannel(conn)
    conn.send(("ready",))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "stop":
            return
        _, request, deadline = message
        ctx = TrialContext(request.number, dict(request.params), request.recipe, list(request.history), deadline,
                           channel)
        outcome = _call(objective, ctx)
        try:
            conn.send(("outcome", outcome))
        except (EOFError, OSError, BrokenPipeError):
            return


def describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (killed: out of memory?)" if name == "SIGKILL" else ""
        return f"{name}{hint}"
    return f"exit code {code}"


class ProcessExecutor:
    """Run the objective in a reusable ``spawn`` child; kill it when a deadline passes."""

    def __init__(self, objective: Objective, start_method: str = "spawn") -> None:
        import pickle

        try:
            pickle.dumps(objective)
        except Exception as exc:
            raise ConfigError(f"the objective cannot be sent to a trial process ({_error_text(exc)}); make it a "
                              "module-level function or dataclass, or run the search with isolation='inline'") \
                from None
        self.objective = objective
        self.start_method = start_method
        self.process: Any = None
        self.conn: Any = None

    def _start(self) -> None:
        import multiprocessing as mp

        ctx = mp.get_context(self.start_method)
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_child_main, args=(child_conn, self.objective, os.getpid()),
                                   name="steelyard-trial", daemon=True)
        self.process.start()
        child_conn.close()
        self.conn = parent_conn
        # Wait for the child's imports, so that they do not count against the first trial's limit.
        waited = time.time()
        while not self.conn.poll(POLL_S):
            if not self.process.is_alive() or time.time() - waited > START_TIMEOUT_S:
                code = self.process.exitcode
                self._kill()
                raise ChildStartError(f"the trial process did not start ({describe_exit(code)})")
        try:
            self.conn.recv()
        except (EOFError, OSError):
            self._kill()
            raise ChildStartError("the trial process did not start (it closed its pipe)") from None

    def _kill(self) -> None:
        if self.process is not None:
            if self.process.is_alive():
                self.process.kill()
            self.process.join(timeout=10)
        if self.conn is not None:
            self.conn.close()
        self.process = self.conn = None

    def run(self, request: TrialRequest, channel: Channel, trial_deadline: float | None,
            stop_deadline: float | None = None) -> Outcome:
        if self.process is None or not self.process.is_alive():
            self._kill()
            try:
                self._start()
            except ChildStartError as exc:
                return Outcome("crashed", message=str(exc))
        started = time.time()
        try:
            self.conn.send(("run", request, trial_deadline))
            while True:
                now = time.time()
                if self.conn.poll(POLL_S):
                    try:
                        message = self.conn.recv()
                    except (EOFError, OSError):
                        self.process.join(timeout=5)
                        code = self.process.exitcode
                        self._kill()
                        return Outcome("crashed", message=f"the trial process died ({describe_exit(code)})")
                    kind = message[0]
                    if kind == "outcome":
                        return message[1]
                    if kind == "report":
                        self.conn.send(channel.report(message[1], message[2]))
                    elif kind == "attr":
                        channel.set_attr(message[1], message[2])
                    continue
                if not self.process.is_alive():
                    code = self.process.exitcode
                    self._kill()
                    return Outcome("crashed", message=f"the trial process died ({describe_exit(code)})")
                if stop_deadline is not None and now >= stop_deadline:
                    self._kill()
                    return Outcome("stopped", message="the search reached its time limit")
                if trial_deadline is not None and now >= trial_deadline:
                    self._kill()
                    return Outcome("timeout", message=f"passed its time limit ({now - started:.0f} s); stopped")
        except BaseException:  # Ctrl-C (KeyboardInterrupt) or an error here: do not leave the child running
            self._kill()
            raise

    def close(self) -> None:
        if self.process is not None and self.process.is_alive():
            try:
                self.conn.send(("stop",))
                self.process.join(timeout=5)
            except (OSError, BrokenPipeError):
                pass
        self._kill()


def make_executor(objective: Objective, isolation: str = "process") -> InlineExecutor | ProcessExecutor:
    if isolation == "inline":
        return InlineExecutor(objective)
    if isolation == "process":
        return ProcessExecutor(objective)
    raise ConfigError(f"unknown isolation '{isolation}'; valid: process, inline")


def finite(metrics: Mapping[str, float]) -> bool:
    return all(math.isfinite(v) for v in metrics.values())
