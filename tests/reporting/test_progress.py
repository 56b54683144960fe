"""The progress protocol: the library reports, the installed display (rich bars from the CLI) draws."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from steelyard.evaluation.progress import progress_bar, progress_enabled, set_progress_display
from steelyard.reporting.progress import LogProgress, progress_display, rich_progress


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
    assert not progress_enabled(True, rank=1) and not progress_enabled(None, rank=1)
    assert progress_enabled(True) and not progress_enabled(False)


def test_progress_is_on_by_default_outside_a_terminal_too():
    """The display decides how to show it (log lines in CI), so the default no longer depends on a TTY."""
    assert progress_enabled(None)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_outside_a_terminal_a_log_line_every_few_seconds_with_done_total_and_eta():
    stream, clock = Pipe(), FakeClock()
    display = progress_display(stream)
    assert isinstance(display, LogProgress)
    display.clock = clock
    previous = set_progress_display(display)
    try:
        with progress_bar("evaluating on test", 400, enabled=True) as bar:
            for step in range(1, 401):
                clock.now = 100.0 + step / 10  # 40 s in all: a line at 5 s, 10 s, ..., 40 s
                bar.advance()
    finally:
        set_progress_display(previous)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "steelyard: evaluating on test 50/400 (12%), 5 s elapsed, ETA 35 s"
    assert lines[1] == "steelyard: evaluating on test 100/400 (25%), 10 s elapsed, ETA 30 s"
    assert len(lines) == 9 and lines[-1] == "steelyard: evaluating on test 400/400 (100%), finished in 40 s"


def test_a_short_task_writes_nothing_and_an_unknown_total_has_no_eta():
    stream, clock = Pipe(), FakeClock()
    display = LogProgress(stream, interval=5.0, clock=clock)
    with display("quick", 3) as bar:
        bar.advance(3)
    assert stream.getvalue() == ""
    with display("search", None) as bar:
        clock.now += 6
        bar.advance(2)
        bar.describe("search · best 0.91")
    assert stream.getvalue().splitlines() == ["steelyard: search 2 done, 6 s elapsed",
                                              "steelyard: search · best 0.91 2 done, finished in 6 s"]


def test_a_terminal_gets_bars():
    assert progress_display(Terminal()) is rich_progress


def test_rich_bars_draw_on_stderr(capsys):
    previous = set_progress_display(rich_progress)
    try:
        with progress_bar("train", 2, enabled=True) as bar:
            bar.advance(2)
            bar.describe("train · done")
    finally:
        set_progress_display(previous)
    assert capsys.readouterr().out == ""  # never on stdout, where JSON goes


def test_the_cli_installs_log_lines_when_stderr_is_not_a_terminal(capsys):
    from steelyard.cli.main import run

    previous = set_progress_display(None)
    try:
        assert run(["hardware", "list"]) == 0
        installed = set_progress_display(None)
    finally:
        set_progress_display(previous)
    assert isinstance(installed, LogProgress)  # pytest's stderr is no terminal, as in CI
