"""Write reports as JSON or CSV, atomically (temporary file, then rename), so a failure never
leaves a half-written file where a good one was."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from steelyard.serialize import flatten


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``.

    A path that cannot be written (inside a file, a read-only folder, a name too long) is a
    one-line ConfigError (:mod:`steelyard.outputs`), never an OSError traceback.
    """
    from steelyard.outputs import check_output_file, os_error

    path = check_output_file(path, what="output file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise os_error(exc, "output file", path) from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a report should read like any other file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def to_csv(data: dict[str, Any]) -> str:
    """One row per metric: ``metric,value`` with dotted metric paths (easy to grep and join)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["metric", "value"])
    for key, value in flatten(data).items():
        writer.writerow([key, "" if value is None else value])
    return buffer.getvalue()


def write_csv(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, to_csv(data))


def read_csv(path: Path) -> dict[str, str]:
    with open(path, newline="", encoding="utf-8") as fh:
        return {row["metric"]: row["value"] for row in csv.DictReader(fh)}
