"""SQLAlchemy tables: one row per run, one row per headline number of a run.

The whole typed result is kept as JSON in ``runs.payload`` (so a report can be rebuilt
exactly); ``metrics`` repeats the headline numbers as rows so they can be queried and
compared across runs with plain SQL.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Float, ForeignKey, Integer, MetaData, String, Table, Text

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False, index=True),
    Column("model", Text, nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
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
