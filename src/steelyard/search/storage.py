"""Where studies live: an Optuna RDB storage (SQLite by default, any SQLAlchemy URL).

Several processes, or machines, that open the same URL share one study: Optuna numbers trials
under a lock on the study row, so no number is handed out twice. Heartbeats make a worker that
dies (killed, machine lost) visible: its RUNNING trial goes stale after ``grace_period`` seconds
without a heartbeat, the next worker to look fails it and :class:`RetryFailedTrialCallback`
queues one re-run with the same parameters, so no candidate is lost.

The default is ``studies.db`` in the folder of the results store (``$STEELYARD_STORE``); when the
store is a server (PostgreSQL ...), studies go to the same database, whose table names (``studies``,
``trials`` ...) do not clash with the store's (``runs``, ``metrics``).
"""

from __future__ import annotations

import logging
import random
import time
import warnings
from pathlib import Path
from typing import Any

from steelyard.errors import StoreError
from steelyard.store.runs import _first_line, _safe, default_store_url, with_driver

#: Seconds between heartbeats of a running trial, and without one before the trial counts as dead.
HEARTBEAT_INTERVAL_S = 30
GRACE_PERIOD_S = 120
#: SQLite: seconds a writer waits for another's lock; servers: seconds to wait for a connection.
BUSY_TIMEOUT_S = 60
CONNECT_TIMEOUT_S = 10
STUDIES_FILE = "studies.db"
#: Tries to open a storage whose tables another worker is creating at the same moment.
CREATE_RETRIES = 5


def default_storage_url(store_url: str | None = None) -> str:
    """``studies.db`` next to an SQLite results store, else the store's own database."""
    store = store_url or default_store_url()
    if store.startswith("sqlite:///"):
        folder = Path(store.removeprefix("sqlite:///")).expanduser().parent
        return f"sqlite:///{folder / STUDIES_FILE}"
    return store


def normalize_url(url: str) -> str:
    """Accept a bare file path (``runs/study.db``) as an SQLite URL."""
    if "://" in url:
        return url
    return f"sqlite:///{Path(url).expanduser()}"


def open_storage(
    url: str | None = None,
    *,
    store_url: str | None = None,
    heartbeat_interval: int = HEARTBEAT_INTERVAL_S,
    grace_period: int | None = GRACE_PERIOD_S,
) -> Any:
    """An ``optuna.storages.RDBStorage`` with heartbeats and one retry of a dead worker's trial.

    Any failure to reach or open the database (bad URL, closed port, missing driver, a file that
    is not a database) becomes a one-line :class:`StoreError`.
    """
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)
    url = with_driver(normalize_url(url or default_storage_url(store_url)))
    if heartbeat_interval < 1:
        raise StoreError(f"the heartbeat interval must be at least 1 second, got {heartbeat_interval}")
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            path = Path(url.removeprefix("sqlite:///")).expanduser()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the folder of the study storage {path}: {exc.strerror}") from None
        engine_kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_S}
    elif url.startswith(("postgresql", "mysql")):
        engine_kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
        engine_kwargs["pool_pre_ping"] = True
    try:
        return _create(url, engine_kwargs, heartbeat_interval, grace_period)
    except ImportError as exc:
        missing = exc if isinstance(exc, ModuleNotFoundError) else exc.__cause__
        name = getattr(missing, "name", None) or _first_line(exc)
        hint = " (pip install 'steelyard[postgres]')" if "psycopg" in str(name) else ""
        raise StoreError(f"cannot open the study storage {_safe(url)}: missing database driver {name}{hint}") \
            from None
    except Exception as exc:  # unreachable server, bad URL, not a database, version mismatch
        raise StoreError(f"cannot open the study storage {_safe(url)}: {_first_line(exc)}") from None


def _create(url: str, engine_kwargs: dict[str, Any], heartbeat_interval: int, grace_period: int | None) -> Any:
    """Open the storage; retry when another worker is creating the same tables at this moment."""
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    for attempt in range(CREATE_RETRIES):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
                )
        except Exception as exc:
            text = str(exc).lower()
            racing = any(word in text for word in ("unique constraint", "already exists", "duplicate", "locked"))
            if not racing or attempt == CREATE_RETRIES - 1:
                raise
            time.sleep(0.2 + random.random())
    raise AssertionError("unreachable")


def storage_url(storage: Any) -> str:
    """The URL of an open storage, without a password (for messages and records)."""
    return _safe(str(getattr(storage, "url", storage)))
