"""Open the store (SQLite by default, any SQLAlchemy URL) and read / write / delete runs.

SQLite runs in WAL mode with a busy timeout so several processes can write at once without
losing a row; a PostgreSQL URL (``postgresql://user@host/db``) works the same way.

A store opened ``read_only`` (``runs list``, ``runs show``, ``report`` ...) creates nothing: no
folder, no database file, no table, no column. A local SQLite store that does not exist is then
a one-line :class:`StoreError` ("no results store at PATH"), and its connections close after
each query, so SQLite's ``-wal`` / ``-shm`` side files are gone again when the command ends.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steelyard.errors import ConfigError, StoreError
from steelyard.outputs import pause_point

ENV_VAR = "STEELYARD_STORE"
#: Seconds a connection waits for another writer's lock before giving up with a StoreError.
BUSY_TIMEOUT_S = 30.0
#: Longest run name and tag (the column widths in :mod:`steelyard.store.schema`).
MAX_NAME, MAX_TAG = 200, 100


def default_store_url() -> str:
    """``$STEELYARD_STORE``, else an SQLite file in the user's data folder."""
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR]
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "steelyard"
    return f"sqlite:///{base / 'steelyard.db'}"


@dataclass(frozen=True)
class RunLabels:
    """What a user calls a run: a name shown by ``runs list`` / ``show`` and tags to filter and delete by.

    Given on the command line as ``--name`` and ``--tag`` (repeatable) by every command that records
    a run, and as ``labels=`` by the ``record_*`` functions.
    """

    name: str | None = field(default=None, metadata={"help": "a name for the recorded run (shown by `runs list` "
                                                             "and `runs show`)"})
    tags: tuple[str, ...] = field(default=(), metadata={
        "help": "a tag for the recorded run; repeat for several (`runs list --tag`, `runs delete --tag` select by it)"})

    def __post_init__(self) -> None:
        if self.name is not None:
            name = self.name.strip()
            if not name or len(name) > MAX_NAME or "\n" in name:
                raise ConfigError(f"--name must be one line of 1 to {MAX_NAME} characters, got {self.name!r}")
            object.__setattr__(self, "name", name)
        object.__setattr__(self, "tags", tuple(dict.fromkeys(check_tag(t) for t in self.tags)))


def check_tag(tag: str) -> str:
    """A tag without surrounding spaces; empty, too long or with a comma or line break is a ConfigError."""
    text = str(tag).strip()
    if not text or len(text) > MAX_TAG or any(c in text for c in ",\n\r"):
        raise ConfigError(f"--tag must be 1 to {MAX_TAG} characters without commas or line breaks, got {tag!r}")
    return text


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
    #: The user's name for the run (``--name``), None when not given (or stored before names existed).
    name: str | None = None
    tags: tuple[str, ...] = ()
    #: Model revision, dataset fingerprint, git state, steelyard version (:mod:`steelyard.store.provenance`).
    provenance: dict[str, Any] | None = None


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


def sqlite_path(url: str) -> Path | None:
    """The file of a local SQLite URL (None for a server, or SQLite in memory)."""
    if not url.startswith("sqlite:///"):
        return None
    rest = url.removeprefix("sqlite:///").split("?", 1)[0]
    return None if rest in ("", ":memory:") else Path(rest).expanduser()


class Store:
    """The results store at ``url``; ``read_only``: read what is there, create and change nothing."""

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        from sqlalchemy import create_engine, event

        self.url = url
        self.read_only = read_only
        path = sqlite_path(url)
        if read_only and path is not None and not path.is_file():
            raise StoreError(f"no results store at {path}")
        try:
            if path is not None and not read_only:
                path.parent.mkdir(parents=True, exist_ok=True)
            kwargs: dict[str, Any] = {}
            if url.startswith("sqlite"):
                kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_S}
                if read_only:
                    from sqlalchemy.pool import NullPool

                    kwargs["poolclass"] = NullPool  # each connection closes at once: no -wal / -shm left behind
            self.engine = create_engine(with_driver(url), **kwargs)
            if url.startswith("sqlite"):
                event.listen(self.engine, "connect", _sqlite_pragmas if not read_only else _sqlite_read_pragmas)
            self._columns = self._read_columns() if read_only else self._create()
        except StoreError:
            raise
        except Exception as exc:  # bad URL, unreachable server, corrupt file, missing driver
            raise StoreError(f"cannot open the results store {_safe(url)}: {_first_line(exc)}") from exc

    def _create(self) -> set[str]:
        """Create the tables, and add the columns newer than an older store's (another writer may race us)."""
        from sqlalchemy import text

        from steelyard.store.schema import ADDED_COLUMNS, metadata

        metadata.create_all(self.engine)
        present = self._read_columns()
        for name, sql_type in ADDED_COLUMNS:
            if name in present:
                continue
            try:
                with self.engine.begin() as conn:
                    conn.execute(text(f"ALTER TABLE runs ADD COLUMN {name} {sql_type}"))
            except Exception:  # another process added it a moment ago
                if name not in self._read_columns():
                    raise
        return self._read_columns()

    def _read_columns(self) -> set[str]:
        from sqlalchemy import inspect

        inspector = inspect(self.engine)
        if "runs" not in inspector.get_table_names():
            raise StoreError(f"{_safe(self.url)} is not a steelyard results store (it has no runs table)")
        return {c["name"] for c in inspector.get_columns("runs")} | (
            {"__tags__"} if "tags" in inspector.get_table_names() else set())

    def _writable(self) -> None:
        if self.read_only:
            raise StoreError(f"the results store {_safe(self.url)} was opened read-only")

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
        labels: RunLabels | None = None,
        provenance: dict[str, Any] | None = None,
    ) -> int:
        from steelyard.store.schema import metrics as metrics_table
        from steelyard.store.schema import runs, tags

        self._writable()
        labels = labels or RunLabels()
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
                        name=labels.name,
                        provenance=provenance,
                    )
                )
                run_id = int(result.inserted_primary_key[0])
                rows = [{"run_id": run_id, "name": k, "value": v, "unit": u} for k, (v, u) in (metrics or {}).items()]
                if rows:
                    conn.execute(metrics_table.insert(), rows)
                if labels.tags:
                    conn.execute(tags.insert(), [{"run_id": run_id, "tag": t} for t in labels.tags])
                pause_point("store-commit")  # tests kill -9 here: the transaction is not committed
        except Exception as exc:
            raise StoreError(f"cannot write to the results store {_safe(self.url)}: {_first_line(exc)}") from exc
        return run_id

    def get_run(self, run_id: int) -> RunRecord:
        from sqlalchemy import select

        from steelyard.store.schema import metrics, runs, tags

        columns = [c for c in runs.c if c.name in self._columns]
        with self._reading(), self.engine.connect() as conn:
            row = conn.execute(select(*columns).where(runs.c.id == run_id)).mappings().first()
            if row is None:
                raise StoreError(f"no run with id {run_id} in {_safe(self.url)}")
            numbers = conn.execute(select(metrics).where(metrics.c.run_id == run_id)).mappings().all()
            labels: list[str] = []
            if "__tags__" in self._columns:
                labels = [t for (t,) in conn.execute(select(tags.c.tag).where(tags.c.run_id == run_id)
                                                     .order_by(tags.c.tag))]
        return RunRecord(**dict(row), tags=tuple(labels),
                         metrics={m["name"]: (m["value"], m["unit"]) for m in numbers})

    def list_runs(self, kind: str | None = None, limit: int = 50) -> list[RunRecord]:
        return self.find_runs(kind=kind, limit=limit)

    def find_runs(
        self,
        kind: str | None = None,
        model: str | None = None,
        limit: int | None = None,
        ids: list[int] | None = None,
        oldest_first: bool = False,
        tags: Iterable[str] = (),
    ) -> list[RunRecord]:
        """Runs filtered by kind, model substring (case-insensitive), ids and/or tags (a run has every one
        of ``tags``); newest first by default."""
        return [self.get_run(i) for i in self.find_ids(kind, model, limit, ids, oldest_first, tags)]

    def find_ids(
        self,
        kind: str | None = None,
        model: str | None = None,
        limit: int | None = None,
        ids: list[int] | None = None,
        oldest_first: bool = False,
        tags: Iterable[str] = (),
    ) -> list[int]:
        """The ids :meth:`find_runs` returns (an id asked for that is not there is a StoreError)."""
        from sqlalchemy import func, select

        from steelyard.store.schema import runs
        from steelyard.store.schema import tags as tags_table

        wanted_tags = list(dict.fromkeys(tags))
        query = select(runs.c.id).order_by(runs.c.id.asc() if oldest_first else runs.c.id.desc())
        if kind:
            query = query.where(runs.c.kind == kind)
        if model:
            query = query.where(func.lower(runs.c.model).contains(model.lower()))
        if ids:
            query = query.where(runs.c.id.in_(ids))
        if wanted_tags:
            if "__tags__" not in self._columns:
                return []
            tagged = (select(tags_table.c.run_id).where(tags_table.c.tag.in_(wanted_tags))
                      .group_by(tags_table.c.run_id)
                      .having(func.count(func.distinct(tags_table.c.tag)) == len(wanted_tags)))
            query = query.where(runs.c.id.in_(tagged))
        if limit:
            query = query.limit(limit)
        with self._reading(), self.engine.connect() as conn:
            found = [r[0] for r in conn.execute(query)]
        if ids:
            missing = sorted(set(ids) - set(found))
            if missing and not wanted_tags:
                raise StoreError(f"no run with id {', '.join(map(str, missing))} in {_safe(self.url)}")
        return found

    def delete_runs(self, ids: Iterable[int]) -> int:
        """Delete these runs with their metric and tag rows, in one transaction; returns how many went."""
        from sqlalchemy import delete

        from steelyard.store.schema import metrics, runs, tags

        self._writable()
        doomed = sorted(set(ids))
        if not doomed:
            return 0
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(metrics).where(metrics.c.run_id.in_(doomed)))
                conn.execute(delete(tags).where(tags.c.run_id.in_(doomed)))
                gone = conn.execute(delete(runs).where(runs.c.id.in_(doomed))).rowcount
        except Exception as exc:
            raise StoreError(f"cannot delete from the results store {_safe(self.url)}: {_first_line(exc)}") from exc
        return int(gone)

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


def _sqlite_read_pragmas(dbapi_connection: Any, _: Any) -> None:
    """A reader waits for writers, and leaves the file's journal mode as it is."""
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
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


def open_store(url: str | None = None, *, read_only: bool = False) -> Store:
    """The store at ``url`` (default :func:`default_store_url`); ``read_only`` for commands that only look."""
    return Store(url or default_store_url(), read_only=read_only)
