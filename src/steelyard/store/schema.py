"""SQLAlchemy tables: one row per run, one row per headline number of a run, one row per tag.

The whole typed result is kept as JSON in ``runs.payload`` (so a report can be rebuilt
exactly); ``metrics`` repeats the headline numbers as rows so they can be queried and
compared across runs with plain SQL. ``tags`` holds the labels a user gave a run (``--tag``),
one row each, so ``runs list --tag`` and ``runs delete --tag`` are one indexed query.

``name`` and ``provenance`` came after the first stores were written: :data:`ADDED_COLUMNS`
lists them so :class:`~steelyard.store.runs.Store` adds them to an older store it opens for
writing (and reads an older store without them as None).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Float, ForeignKey, Integer, MetaData, String, Table, Text
from sqlalchemy.types import TypeDecorator

metadata = MetaData()


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A moment stored in UTC and read back with its zone: SQLite keeps no zone, so a plain
    ``DateTime`` returns naive datetimes whose ``isoformat()`` carries no offset."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        from steelyard.serialize import utc

        return None if value is None else utc(value)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        from steelyard.serialize import utc

        return None if value is None else utc(value)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False, index=True),
    Column("model", Text, nullable=False, index=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("status", String(16), nullable=False, default="ok"),
    Column("config", JSON, nullable=False),
    Column("environment", JSON, nullable=False),
    Column("payload", JSON, nullable=False),
    #: The user's name for the run (``--name``); None when not given.
    Column("name", String(200), nullable=True),
    #: Where the numbers came from: model revision, dataset fingerprint, git commit, steelyard version.
    Column("provenance", JSON, nullable=True),
)

#: Columns newer than the first schema: (name, SQL type) added with ALTER TABLE to an older store.
ADDED_COLUMNS: tuple[tuple[str, str], ...] = (("name", "VARCHAR(200)"), ("provenance", "JSON"))

metrics = Table(
    "metrics",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("value", Float),
    Column("unit", String(32)),
)

tags = Table(
    "tags",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(100), primary_key=True, index=True),
)
