"""Write reports as JSON or CSV, each naming its schema version (:data:`steelyard.serialize.SCHEMA_VERSION`),
through the one writer (:func:`steelyard.outputs.write_report`: atomic to a file, or standard output for ``-``)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from steelyard.serialize import SCHEMA_KEY, SCHEMA_VERSION, flatten, versioned


def atomic_write_text(path: Path | str, text: str) -> str:
    """Write ``text`` to ``path`` atomically (or to stdout for ``-``); returns where it went."""
    from steelyard.outputs import write_report

    return write_report(path, text)


def to_json(data: Any, items: str = "items") -> str:
    """The JSON document of ``data``, its schema version first (a list goes under ``items``)."""
    return json.dumps(versioned(data, items), indent=2, sort_keys=False, default=str) + "\n"


def write_json(path: Path | str, data: Any) -> str:
    return atomic_write_text(path, to_json(data))


def to_csv(data: dict[str, Any]) -> str:
    """One row per metric: ``metric,value`` with dotted metric paths (easy to grep and join).

    The first row is ``schema_version,<version>``; a dot inside a key (a module name) is escaped
    (``\\.``), so no two values share a row name (:func:`steelyard.serialize.flatten`).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["metric", "value"])
    writer.writerow([SCHEMA_KEY, SCHEMA_VERSION])
    for key, value in flatten({k: v for k, v in data.items() if k != SCHEMA_KEY}).items():
        writer.writerow([key, "" if value is None else value])
    return buffer.getvalue()


def write_csv(path: Path | str, data: dict[str, Any]) -> str:
    return atomic_write_text(path, to_csv(data))


def read_csv(path: Path) -> dict[str, str]:
    with open(path, newline="", encoding="utf-8") as fh:
        return {row["metric"]: row["value"] for row in csv.DictReader(fh)}
