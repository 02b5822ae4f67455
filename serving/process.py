"""Start and stop the BentoML server in a subprocess (CLI, demo, tests, benchmarks)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from crm.errors import LeadscoreError

SERVICE = "serving.service:LeadScoring"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command(host: str, port: int, service: str = SERVICE) -> list[str]:
    return [sys.executable, "-m", "bentoml", "serve", service, "--host", host, "--port", str(port)]


def default_workers() -> int:
    """Cores + 1: measured on 2 cores (benchmarks/serving.py), 3 workers served 534 req/s at
    concurrency 8 against 307-398 with 2, and 4 gave no more."""
    return (os.cpu_count() or 1) + 1


def workers_env(workers: int, access_log: bool = True) -> dict[str, str]:
    """BentoML's own settings: worker processes of our service, and its per-request access
    log (a line per request: worth turning off under heavy load)."""
    options = f"services.leadscore.workers={workers}"
    if not access_log:
        options += " services.leadscore.logging.access.enabled=false"
    return {"BENTOML_CONFIG_OPTIONS": options}


class Server:
    """A running server: `with Server(env=...) as s: httpx.get(s.base + '/readyz')`."""

    def __init__(
        self,
        *,
        env: dict[str, str],
        port: int | None = None,
        cwd: str | Path | None = None,
        log_path: str | Path | None = None,
        workers: int = 1,
        access_log: bool = True,
        timeout: float = 120,
        service: str = SERVICE,
    ) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, **workers_env(workers, access_log)}
        self.cwd, self.log_path, self.timeout = cwd, log_path, timeout
        self.service = service
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        import httpx

        log = open(self.log_path, "w") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            serve_command("127.0.0.1", self.port, self.service),
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LeadscoreError(f"the scoring server exited at start: {self.tail()}")
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.__exit__()
        raise LeadscoreError(
            f"the scoring server was not ready after {self.timeout:.0f} s: {self.tail()}"
        )

    def tail(self) -> str:
        if self.log_path and Path(self.log_path).exists():
            return Path(self.log_path).read_text()[-2000:]
        return "(no log)"

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
