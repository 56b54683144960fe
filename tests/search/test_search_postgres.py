"""Two workers share one study on a real PostgreSQL server (skipped where no server can be started)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess

import pytest
from test_search_runner import assert_exactly, worker


def _bin(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url(tmp_path_factory):
    pytest.importorskip("psycopg2", reason="the postgres extra (psycopg2) is not installed")
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    prefix: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to start the server as")
        if not shutil.which("runuser"):
            pytest.skip("running as root without runuser")
        prefix = ["runuser", "-u", "postgres", "--"]
    root = tmp_path_factory.mktemp("pg")
    data = root / "data"
    data.mkdir()
    if prefix:
        for path in (root, *root.parents):
            if str(path) == "/":
                break
            os.chmod(path, os.stat(path).st_mode | 0o011)  # let the server's user reach its folder
        os.chown(data, user.pw_uid, user.pw_gid)
    subprocess.run([*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "steelyard"], check=True,
                   capture_output=True)
    port = _free_port()
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    started = subprocess.run([*prefix, pg_ctl, "-D", str(data), "-o", options, "-l", str(data / "log"), "-w",
                              "start"], capture_output=True, text=True)
    if started.returncode != 0:
        pytest.skip(f"the PostgreSQL server did not start: {started.stdout.strip()} {started.stderr.strip()}")
    yield f"postgresql://steelyard@127.0.0.1:{port}/postgres"
    subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)


def test_two_workers_share_a_postgresql_study(postgres_url):
    procs = [worker(postgres_url, "pg-shared", 12, "--wait-for-workers", "2") for _ in range(2)]
    outs = [p.communicate(timeout=180)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    finished = assert_exactly(postgres_url, "pg-shared", 12)
    assert all(t.state.name == "COMPLETE" for t in finished)
    assert all("ran [" in out and "ran []" not in out for out in outs), outs  # both did work


def test_store_error_for_a_postgres_database_that_does_not_exist(postgres_url):
    from steelyard.errors import StoreError
    from steelyard.search.storage import open_storage

    with pytest.raises(StoreError, match='database "nope" does not exist'):
        open_storage(postgres_url.rsplit("/", 1)[0] + "/nope")

