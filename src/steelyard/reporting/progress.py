"""Displays for the library's progress protocol (:mod:`steelyard.evaluation.progress`), on stderr.

In a terminal: transient rich bars with done / total, elapsed time and an ETA. Anywhere else (a CI
log, a pipe, a file) a bar cannot redraw, so :class:`LogProgress` writes one plain line every few
seconds instead (``steelyard: evaluating on test 120/444 (27%), 12 s elapsed, ETA 33 s``): a log
shows that work goes on between the start and the end, and a task that ends within the interval
writes nothing. :func:`progress_display` picks one of the two for a stream; the CLI installs it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TextIO

from steelyard.reporting.formatting import fmt_seconds

__all__ = ["LOG_INTERVAL_S", "LogProgress", "progress_display", "rich_progress"]

#: Seconds between two log lines outside a terminal.
LOG_INTERVAL_S = 5.0


class _RichBar:
    def __init__(self, progress: Any, task: Any) -> None:
        self.progress, self.task = progress, task

    def advance(self, n: int = 1) -> None:
        self.progress.advance(self.task, n)

    def describe(self, text: str) -> None:
        self.progress.update(self.task, description=text)


@contextmanager
def rich_progress(description: str, total: int | None) -> Iterator[_RichBar]:
    """A :data:`steelyard.evaluation.progress.ProgressDisplay`: one transient rich bar with an ETA on stderr."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        yield _RichBar(progress, progress.add_task(description, total=total))


class _LogBar:
    """Counts steps and writes a line when the interval has passed since the last one."""

    def __init__(self, owner: LogProgress, description: str, total: int | None) -> None:
        self.owner, self.description, self.total = owner, description, total
        self.done = 0
        self.start = self.last = owner.clock()
        self.lines = 0

    def advance(self, n: int = 1) -> None:
        self.done += n
        self._maybe_write()

    def describe(self, text: str) -> None:
        self.description = text
        self._maybe_write()

    def _maybe_write(self) -> None:
        now = self.owner.clock()
        if now - self.last >= self.owner.interval:
            self.last = now
            self.write(now)

    def line(self, now: float, finished: bool = False) -> str:
        elapsed = now - self.start
        if self.total:
            share = min(1.0, self.done / self.total)
            head = f"{self.description} {self.done:,}/{self.total:,} ({share:.0%})"
        else:
            head = f"{self.description} {self.done:,} done"
        if finished:
            return f"steelyard: {head}, finished in {fmt_seconds(elapsed)}"
        tail = f", {fmt_seconds(elapsed)} elapsed"
        if self.total and self.done:
            remaining = elapsed / self.done * max(0, self.total - self.done)
            tail += f", ETA {fmt_seconds(remaining)}"
        return f"steelyard: {head}{tail}"

    def write(self, now: float, finished: bool = False) -> None:
        self.lines += 1
        print(self.line(now, finished), file=self.owner.stream, flush=True)


class LogProgress:
    """A :data:`~steelyard.evaluation.progress.ProgressDisplay` for logs: a line every ``interval`` seconds.

    ``stream`` defaults to stderr at the time of writing (so JSON on stdout stays clean); ``clock``
    is injectable for tests. A task that wrote progress lines also writes a closing one.
    """

    def __init__(self, stream: TextIO | None = None, interval: float = LOG_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._stream, self.interval, self.clock = stream, interval, clock

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    @contextmanager
    def __call__(self, description: str, total: int | None) -> Iterator[_LogBar]:
        bar = _LogBar(self, description, total)
        yield bar
        if bar.lines:
            bar.write(self.clock(), finished=True)


def progress_display(stream: TextIO | None = None) -> Callable[[str, int | None], AbstractContextManager[Any]]:
    """Bars when ``stream`` (default stderr) is a terminal, log lines every few seconds otherwise."""
    target = stream if stream is not None else sys.stderr
    isatty = getattr(target, "isatty", None)
    return rich_progress if callable(isatty) and isatty() else LogProgress(stream)
