"""Open the store (SQLite by default, any SQLAlchemy URL) and read / write runs.

SQLite runs in WAL mode with a busy timeout so several processes can write at once without
losing a row; a PostgreSQL URL (``postgresql://user@host/db``) works the same way.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steelyard.errors import StoreError
from steelyard.outputs import pause_point

ENV_VAR = "STEELYARD_STORE"
#: Seconds a connection waits for another writer's lock before giving up with a StoreError.
BUSY_TIMEOUT_S = 30.0


def default_store_url() -> str:
    """``$STEELYARD_STORE``, else an SQLite file in the user's data folder."""
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR]
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "steelyard"
    return f"sqlite:///{base / 'steelyard.db'}"


@dataclass(frozen=True)
class RunRecord:
    id: int
    kind: str
    model: str
    created_at: dt.datetime
    status: str
    config: dict[str, Any]
    environment: dict[str, Any]
    payload: dict[str, Any]
    metrics: dict[str, tuple[float | None, str | None]]


def with_driver(url: str) -> str:
    """``postgresql://`` with the driver that is installed.

    SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3; steelyard's ``postgres`` extra
    installs psycopg2, so use it when it is the one present.
    """
    import importlib.util

    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg") is None \
            and importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    return url


class Store:
    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine, event

        from steelyard.store.schema import metadata

        self.url = url
        try:
            if url.startswith("sqlite:///"):
                Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
            connect_args = {"timeout": BUSY_TIMEOUT_S} if url.startswith("sqlite") else {}
            self.engine = create_engine(with_driver(url), connect_args=connect_args)
            if url.startswith("sqlite"):
                event.listen(self.engine, "connect", _sqlite_pragmas)
            metadata.create_all(self.engine)
        except Exception as exc:  # bad URL, unreachable server, corrupt file, missing driver
            raise StoreError(f"cannot open the results store {_safe(url)}: {_first_line(exc)}") from exc

    def save_run(
        self,
        kind: str,
        model: str,
        *,
        config: dict[str, Any],
        environment: dict[str, Any],
        payload: dict[str, Any],
        metrics: dict[str, tuple[float | None, str | None]] | None = None,
        status: str = "ok",
    ) -> int:
        from steelyard.store.schema import metrics as metrics_table
        from steelyard.store.schema import runs

        try:
            with self.engine.begin() as conn:
                result = conn.execute(
                    runs.insert().values(
                        kind=kind,
                        model=model,
                        created_at=dt.datetime.now(dt.timezone.utc),
                        status=status,
                        config=config,
                        environment=environment,
                        payload=payload,
                    )
                )
                run_id = int(result.inserted_primary_key[0])
                rows = [{"run_id": run_id, "name": k, "value": v, "unit": u} for k, (v, u) in (metrics or {}).items()]
                if rows:
                    conn.execute(metrics_table.insert(), rows)
                pause_point("store-commit")  # tests kill -9 here: the transaction is not committed
        except Exception as exc:
            raise StoreError(f"cannot write to the results store {_safe(self.url)}: {_first_line(exc)}") from exc
        return run_id

    def get_run(self, run_id: int) -> RunRecord:
        from sqlalchemy import select

        from steelyard.store.schema import metrics, runs

        with self._reading(), self.engine.connect() as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
            if row is None:
                raise StoreError(f"no run with id {run_id} in {_safe(self.url)}")
            numbers = conn.execute(select(metrics).where(metrics.c.run_id == run_id)).mappings().all()
        return RunRecord(**dict(row), metrics={m["name"]: (m["value"], m["unit"]) for m in numbers})

    def list_runs(self, kind: str | None = None, limit: int = 50) -> list[RunRecord]:
        from sqlalchemy import select

        from steelyard.store.schema import runs

        query = select(runs.c.id).order_by(runs.c.id.desc()).limit(limit)
        if kind:
            query = query.where(runs.c.kind == kind)
        with self._reading(), self.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(query)]
        return [self.get_run(i) for i in ids]

    def find_runs(
        self,
        kind: str | None = None,
        model: str | None = None,
        limit: int | None = None,
        ids: list[int] | None = None,
        oldest_first: bool = False,
    ) -> list[RunRecord]:
        """Runs filtered by kind, model substring (case-insensitive) and/or ids; newest first by default."""
        from sqlalchemy import func, select

        from steelyard.store.schema import runs

        query = select(runs.c.id).order_by(runs.c.id.asc() if oldest_first else runs.c.id.desc())
        if kind:
            query = query.where(runs.c.kind == kind)
        if model:
            query = query.where(func.lower(runs.c.model).contains(model.lower()))
        if ids:
            query = query.where(runs.c.id.in_(ids))
        if limit:
            query = query.limit(limit)
        with self._reading(), self.engine.connect() as conn:
            found = [r[0] for r in conn.execute(query)]
        if ids:
            missing = sorted(set(ids) - set(found))
            if missing:
                raise StoreError(f"no run with id {', '.join(map(str, missing))} in {_safe(self.url)}")
        return [self.get_run(i) for i in found]

    def kinds(self) -> dict[str, int]:
        """Run kinds in the store with their counts."""
        from sqlalchemy import func, select

        from steelyard.store.schema import runs

        with self._reading(), self.engine.connect() as conn:
            rows = conn.execute(select(runs.c.kind, func.count()).group_by(runs.c.kind)).all()
        return {str(k): int(n) for k, n in rows}

    def _reading(self) -> Any:
        """Turn database errors while reading (corrupt file, lock held too long) into a StoreError."""
        from contextlib import contextmanager

        url = self.url

        @contextmanager
        def guard() -> Any:
            from sqlalchemy.exc import SQLAlchemyError

            try:
                yield
            except SQLAlchemyError as exc:
                raise StoreError(f"cannot read the results store {_safe(url)}: {_first_line(exc)}") from exc

        return guard()

    def count(self) -> int:
        from sqlalchemy import func, select

        from steelyard.store.schema import runs

        with self._reading(), self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(runs)).scalar_one())


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _safe(url: str) -> str:
    """The URL without a password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}"
    return url


def open_store(url: str | None = None) -> Store:
    return Store(url or default_store_url())
