"""Parsing helpers shared by the commands."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from steelyard.errors import ConfigError
from steelyard.reporting.markup import SafeConsole, escape

#: Wide enough for the verdict table when output goes to a file or pipe (rich assumes 80 there).
#: A SafeConsole: a user string with broken markup prints literally instead of crashing a command.
console = SafeConsole(width=None if sys.stdout.isatty() else 150)


def writable_file(ctx: Any, param: Any, value: Path | None) -> Path | None:
    """Typer callback of every report-file option (``--json``, ``--csv``, ``--html``, ``--markdown``):
    a path inside a file, a folder, or a read-only place is refused while the options are parsed,
    before an hour of work, with one line (:func:`steelyard.outputs.check_output_file`)."""
    if value is not None:
        from steelyard.outputs import check_output_file

        check_output_file(value, what=param.opts[0] if getattr(param, "opts", None) else "output")
    return value


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


def save_outputs(data: dict[str, Any], json_path: Path | None, csv_path: Path | None) -> None:
    from steelyard.reporting.files import write_csv, write_json

    if json_path is not None:
        write_json(json_path, data)
        console.print(f"wrote {escape(json_path)}")
    if csv_path is not None:
        write_csv(csv_path, data)
        console.print(f"wrote {escape(csv_path)}")
