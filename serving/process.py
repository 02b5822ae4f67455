"""Start and stop the BentoML server in a subprocess (CLI, demo, tests, benchmarks)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from leadscore.crm.errors import LeadscoreError

SERVICE = "leadscore.serving.service:LeadScoring"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command(
    host: str | None, port: int, service: str = SERVICE, python: str | None = None
) -> list[str]:
    """`bentoml serve` (by `python`, default this interpreter); without a host, the service's
    own default (loopback)."""
    command = [python or sys.executable, "-m", "bentoml", "serve", service, "--port", str(port)]
    return command + (["--host", host] if host else [])


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


def run_until_stopped(
    command: list[str],
    env: dict[str, str],
    grace: float = 30.0,
    reload: Callable[[], dict[str, str] | None] | None = None,
) -> int:
    """Run the server in a session of its own and wait; SIGTERM or SIGINT to this process
    stops it (BentoML lets its workers finish the requests in flight), and whatever is left
    of its process group `grace` seconds later is killed. SIGHUP, with `reload`: its new
    environment (None: keep serving as it is) replaces the server, every worker at once:
    the old one is stopped the same way (requests in flight finish), then the new one
    starts. Returns the server's exit code, 0 after a requested stop."""
    import signal

    proc = subprocess.Popen(command, env=env, start_new_session=True)
    deadline: float | None = None
    wanted = False

    def stop(signum, frame) -> None:
        nonlocal deadline
        if deadline is None:
            deadline = time.monotonic() + grace
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    def hang_up(signum, frame) -> None:
        nonlocal wanted
        wanted = True

    signals = {signal.SIGTERM: stop, signal.SIGINT: stop}
    if reload is not None:
        signals[signal.SIGHUP] = hang_up
    previous = {s: signal.signal(s, handler) for s, handler in signals.items()}
    try:
        while True:
            while proc.poll() is None:
                try:
                    proc.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    if deadline is not None and time.monotonic() > deadline:
                        break
                if wanted and deadline is None:
                    break
            if not (wanted and deadline is None and reload is not None):
                break
            wanted = False
            new_env = reload()
            if new_env is None:
                continue
            _stop_group(proc, grace)
            proc = subprocess.Popen(command, env=new_env, start_new_session=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # workers a dying arbiter left behind
    return 0 if deadline is not None else (proc.returncode or 0)


def _stop_group(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM to a server (its requests in flight finish), then, `grace` seconds later,
    SIGKILL to whatever is left of its process group."""
    import signal

    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


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
        host: str | None = "127.0.0.1",
        python: str | None = None,
    ) -> None:
        self.port = port or free_port()
        self.python = python
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, **workers_env(workers, access_log)}
        self.cwd, self.log_path, self.timeout = cwd, log_path, timeout
        self.service, self.host = service, host
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        import httpx

        log = open(self.log_path, "w") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            serve_command(self.host, self.port, self.service, self.python),
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped with its workers
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
        """Stop the server and every process of its group (BentoML's workers), whatever
        state it is in (`_stop_group`: SIGTERM, then SIGKILL to what is left after 20 s)."""
        if self.proc is not None:
            _stop_group(self.proc, grace=20)
