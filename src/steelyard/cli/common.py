"""Parsing helpers shared by the commands, and the report options every command declares the same way.

``--json PATH|-`` and ``--csv PATH|-`` (:func:`json_option`, :func:`csv_option`) write a report to a
file, or with ``-`` to standard output while every table, note and progress line goes to standard
error; ``--quiet`` (:data:`QuietOpt`) prints no tables or notes at all. Scripts read
``steelyard profile m --json - --quiet | jq .``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from steelyard.errors import ConfigError
from steelyard.reporting.markup import SafeConsole, escape

#: Wide enough for the verdict table when output goes to a file or pipe (rich assumes 80 there).
#: A SafeConsole: a user string with broken markup prints literally instead of crashing a command.
console = SafeConsole(width=None if sys.stdout.isatty() else 150)


def _on_close(ctx: Any, undo: Any) -> None:
    """Run ``undo`` when the whole command line is done (the root context closes even when parsing fails)."""
    root = ctx.find_root() if ctx is not None else None
    if root is not None:
        root.call_on_close(undo)


def writable_file(ctx: Any, param: Any, value: Path | None) -> Path | None:
    """Typer callback of every report-file option (``--json``, ``--csv``, ``--html``, ``--markdown``):
    a path inside a file, a folder, or a read-only place is refused while the options are parsed,
    before an hour of work, with one line (:func:`steelyard.outputs.check_output_file`).

    ``-`` reserves standard output for that one report (:func:`steelyard.outputs.reserve_stdout`):
    from here on everything else the command prints goes to standard error."""
    if value is None:
        return value
    from steelyard.outputs import check_output_file, is_stdout, reserve_stdout

    what = param.opts[0] if getattr(param, "opts", None) else "output"
    if is_stdout(value):
        meta = ctx.find_root().meta if ctx is not None else {}
        if meta.get("steelyard.stdout"):
            raise ConfigError(f"{meta['steelyard.stdout']} and {what} cannot both write to stdout (-); "
                              "give one of them a file")
        meta["steelyard.stdout"] = what
        _on_close(ctx, reserve_stdout())
        return value
    if str(value).startswith("-"):
        raise ConfigError(f"{what} takes a file name or - (stdout), got '{value}'")
    check_output_file(value, what=what)
    return value


def quiet_console(ctx: Any, param: Any, value: bool) -> bool:
    """Typer callback of ``--quiet``: the command's console prints nothing (errors still reach stderr)."""
    if value and not console.quiet:
        console.quiet = True

        def loud() -> None:
            console.quiet = False

        _on_close(ctx, loud)
    return value


def json_option(what: str = "the result") -> Any:
    """The ``--json PATH|-`` option of a command that writes ``what`` as JSON (declared once, here)."""
    return Annotated[Path | None, typer.Option(
        "--json", metavar="PATH|-", callback=writable_file,
        help=f"write {what} as JSON to PATH, or to stdout with - (tables then go to stderr)")]


def csv_option(what: str = "the result") -> Any:
    """The ``--csv PATH|-`` option of a command that writes ``what`` as ``metric,value`` CSV."""
    return Annotated[Path | None, typer.Option(
        "--csv", metavar="PATH|-", callback=writable_file,
        help=f"write {what} as CSV (metric,value) to PATH, or to stdout with -")]


#: ``--quiet``: no tables or notes, for scripts that read ``--json -``.
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", callback=quiet_console,
                                        help="print no tables or notes (errors still go to stderr)")]


def parse_number(text: str, what: str) -> float:
    """``2e9``, ``2_000_000``, ``2B``, ``500M``, ``10k`` → float."""
    cleaned = text.strip().replace("_", "").replace(",", "")
    scale = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}
    factor = 1.0
    if cleaned and cleaned[-1].lower() in scale:
        factor = scale[cleaned[-1].lower()]
        cleaned = cleaned[:-1]
    try:
        return float(cleaned) * factor
    except ValueError:
        raise ConfigError(f"{what} must be a number such as 2e9, 500M or 10k, got '{text}'") from None


def parse_time(text: str | None, option: str) -> float | None:
    """``30m``, ``2h``, ``90s``, ``1.5min`` → seconds (``m`` is minutes here); None stays None."""
    from steelyard.units_parse import parse_duration

    if text is None:
        return None
    cleaned = text.strip()
    if cleaned.endswith("m") and not cleaned.endswith(("ms", "um", "µm")):
        cleaned = cleaned[:-1] + "min"
    seconds = float(parse_duration(cleaned, option))
    if seconds <= 0:
        raise ConfigError(f"{option} must be longer than zero, got '{text}'")
    return seconds


def parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(x) for x in text.replace("x", ",").split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"--input-shape must look like 1,3,224,224, got '{text}'") from None
    if not shape or any(d < 1 for d in shape):
        raise ConfigError(f"--input-shape must be positive integers like 1,3,224,224, got '{text}'")
    return shape


def save_outputs(data: Any, json_path: Path | None = None, csv_path: Path | None = None) -> None:
    """Write a command's result as JSON and / or CSV (a file, or stdout for ``-``), each with its schema version."""
    from steelyard.outputs import is_stdout
    from steelyard.reporting.files import write_csv, write_json

    if json_path is not None:
        write_json(json_path, data)
        if not is_stdout(json_path):
            console.print(f"wrote {escape(json_path)}")
    if csv_path is not None:
        write_csv(csv_path, data)
        if not is_stdout(csv_path):
            console.print(f"wrote {escape(csv_path)}")
