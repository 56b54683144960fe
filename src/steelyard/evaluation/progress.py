"""Progress reporting as a protocol: the library says how far it is, a display chosen by the caller shows it.

Long evaluations, fine-tunes and searches call :func:`progress_bar` and then ``advance`` /
``describe`` on what it yields. How that is shown is not the library's business: by default
nothing is drawn; the CLI installs :func:`steelyard.reporting.progress.progress_display` (rich bars in
a terminal, a log line every few seconds elsewhere, so a CI log shows work going on) with
:func:`set_progress_display`, and a Python user may install those, or any function of the same shape
(a notebook widget, a logger). With several DDP processes only rank 0 reports: :func:`progress_enabled`
decides that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol


class ProgressBar(Protocol):
    """What a running task reports to: steps done and the words shown next to the bar."""

    def advance(self, n: int = 1) -> None: ...

    def describe(self, text: str) -> None: ...


#: ``display(description, total)`` → a context manager yielding a :class:`ProgressBar` (total None: unknown).
ProgressDisplay = Callable[[str, "int | None"], AbstractContextManager[ProgressBar]]


class _Quiet:
    def advance(self, n: int = 1) -> None:
        pass

    def describe(self, text: str) -> None:
        pass


_display: ProgressDisplay | None = None


def set_progress_display(display: ProgressDisplay | None) -> ProgressDisplay | None:
    """Install how progress is shown in this process (None: nothing); returns the previous display."""
    global _display
    previous, _display = _display, display
    return previous


def progress_enabled(requested: bool | None = None, rank: int = 0) -> bool:
    """On unless asked off (the installed display decides how to show it); always off on ranks other than 0."""
    if rank != 0:
        return False
    return True if requested is None else requested


@contextmanager
def progress_bar(description: str, total: int | None, enabled: bool) -> Iterator[ProgressBar]:
    """The installed display's bar when ``enabled`` and a display is installed, else a no-op."""
    if not enabled or _display is None:
        yield _Quiet()
        return
    with _display(description, total) as bar:
        yield bar
