"""SQLAlchemy tables: one row per run, one row per headline number of a run.

The whole typed result is kept as JSON in ``runs.payload`` (so a report can be rebuilt
exactly); ``metrics`` repeats the headline numbers as rows so they can be queried and
compared across runs with plain SQL.
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
)

metrics = Table(
    "metrics",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("value", Float),
    Column("unit", String(32)),
)
