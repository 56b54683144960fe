"""The progress protocol: the library reports, the installed display (rich bars from the CLI) draws."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from steelyard.evaluation.progress import progress_bar, progress_enabled, set_progress_display
from steelyard.reporting.progress import rich_progress


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    @contextmanager
    def __call__(self, description: str, total: int | None) -> Iterator[Recorder]:
        self.events.append(("start", (description, total)))
        yield self
        self.events.append(("end", None))

    def advance(self, n: int = 1) -> None:
        self.events.append(("advance", n))

    def describe(self, text: str) -> None:
        self.events.append(("describe", text))


@pytest.fixture
def display():
    recorder = Recorder()
    previous = set_progress_display(recorder)
    yield recorder
    set_progress_display(previous)


def test_the_installed_display_gets_every_report(display):
    with progress_bar("evaluate", 3, enabled=True) as bar:
        bar.advance()
        bar.advance(2)
        bar.describe("evaluate · 3 of 3")
    assert display.events == [("start", ("evaluate", 3)), ("advance", 1), ("advance", 2),
                              ("describe", "evaluate · 3 of 3"), ("end", None)]


def test_disabled_or_without_a_display_nothing_is_drawn(display):
    with progress_bar("evaluate", 3, enabled=False) as bar:
        bar.advance()
    assert display.events == []
    set_progress_display(None)
    with progress_bar("evaluate", 3, enabled=True) as bar:
        bar.advance()
        bar.describe("quiet")


def test_only_rank_zero_draws_and_an_explicit_choice_wins():
    assert not progress_enabled(True, rank=1)
    assert progress_enabled(True) and not progress_enabled(False)


def test_rich_bars_draw_on_stderr(capsys):
    previous = set_progress_display(rich_progress)
    try:
        with progress_bar("train", 2, enabled=True) as bar:
            bar.advance(2)
            bar.describe("train · done")
    finally:
        set_progress_display(previous)
    assert capsys.readouterr().out == ""  # never on stdout, where JSON goes
