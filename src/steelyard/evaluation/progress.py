"""Progress bars that show on a terminal and stay silent in pipes, logs, tests and non-zero ranks.

Long evaluations and fine-tunes deserve a progress bar; a CI log or a JSON pipe does not want
one, and with several DDP processes only one should draw.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class _Quiet:
    def advance(self, n: int = 1) -> None:
        pass

    def describe(self, text: str) -> None:
        pass


class _Bar:
    def __init__(self, progress: Any, task: Any) -> None:
        self.progress, self.task = progress, task

    def advance(self, n: int = 1) -> None:
        self.progress.advance(self.task, n)

    def describe(self, text: str) -> None:
        self.progress.update(self.task, description=text)


def progress_enabled(requested: bool | None = None, rank: int = 0) -> bool:
    """On when asked, or by default when stderr is a terminal; always off on ranks other than 0."""
    if rank != 0:
        return False
    if requested is not None:
        return requested
    return sys.stderr.isatty()


@contextmanager
def progress_bar(description: str, total: int | None, enabled: bool) -> Iterator[_Bar | _Quiet]:
    """A rich progress bar on stderr (transient), or a no-op when not enabled."""
    if not enabled:
        yield _Quiet()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        yield _Bar(progress, progress.add_task(description, total=total))
