"""A throwaway PostgreSQL cluster for tests: initdb + pg_ctl in a temporary folder, on a
free port of 127.0.0.1, stopped and removed at the end.

PostgreSQL refuses to run as root: under root the cluster belongs to the `postgres` user
(else `nobody`) and its commands run through `runuser`; its folder is made directly in the
system's temporary folder, as pytest's own are private to root. Tests skip, with the reason, where
the server binaries (or `runuser`, under root) are absent.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from glob import glob
from pathlib import Path

import pytest

from leadscore.serving.process import free_port


def _bin_dir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent  # /usr/local/bin may link only some of them
    candidates = sorted(glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _runner() -> tuple[list[str], str | None]:
    if os.geteuid() != 0:
        return [], None
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        if shutil.which("runuser"):
            return ["runuser", "-u", user, "--"], user
    pytest.skip("running as root without runuser and an unprivileged user: no PostgreSQL")


class PostgresServer:
    """A running throwaway cluster: its URL, and `stop()` / `start()` for fault tests."""

    def __init__(self, run, bin_dir: Path, data: Path, log: Path, options: str, url: str):
        self._run, self._bin, self._data, self._log, self._options = (
            run,
            bin_dir,
            data,
            log,
            options,
        )
        self.url = url

    def stop(self) -> None:
        self._run(str(self._bin / "pg_ctl"), "-D", str(self._data), "-m", "immediate", "-w", "stop")

    def start(self) -> None:
        self._run(str(self._bin / "pg_ctl"), "-D", str(self._data), "-o", self._options, "-l",
                  str(self._log), "-w", "start")  # fmt: skip


@contextmanager
def postgres_cluster(database: str = "test"):
    """Yields a SQLAlchemy URL (psycopg 3) of a fresh database on a fresh cluster."""
    with postgres_server(database) as server:
        yield server.url


@contextmanager
def postgres_server(database: str = "test"):
    """Yields a PostgresServer: a fresh database on a fresh cluster, stopped at the end."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    pytest.importorskip(
        "psycopg", reason="psycopg is not installed (pip install leadscore[postgres])"
    )
    prefix, user = _runner()
    folder = Path(tempfile.mkdtemp(prefix="leadscore-pg-"))
    if user is not None:
        shutil.chown(folder, user)
        os.chmod(folder, 0o700)
    data, log, port = folder / "data", folder / "server.log", free_port()

    def run(*args: str) -> None:
        done = subprocess.run(
            [*prefix, *args], capture_output=True, text=True, timeout=120, cwd=folder
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {done.stderr or done.stdout}")

    run(str(bin_dir / "initdb"), "-D", str(data), "-U", "leadscore", "--auth=trust", "-E", "UTF8")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start")
    try:
        run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "leadscore",
            database)  # fmt: skip
        url = f"postgresql+psycopg://leadscore@127.0.0.1:{port}/{database}"
        yield PostgresServer(run, bin_dir, data, log, options, url)
    finally:
        try:
            run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
