"""`leadscore serve` as an operator runs it: a clear refusal, and a clean stop."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import psutil

from leadscore.crm.payloads import lead_payloads
from leadscore.serving.process import free_port
from tests.serving.conftest import API_KEY


def _serve(tmp_path, uri: str, port: int, *args: str, **env_extra: str) -> subprocess.Popen:
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "LEADSCORE_API_KEYS": API_KEY, **env_extra}
    return subprocess.Popen(
        [sys.executable, "-m", "leadscore", "serve", "--port", str(port), "--workers", "1", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: stopped with its children
    )


def _stopped(proc: subprocess.Popen) -> None:
    """The server and everything it started stopped, whatever the test's outcome."""
    from tests.processes import stop_group

    if proc.poll() is None:
        stop_group(proc, grace=20)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # children it left behind


def _in_progress(base: str, endpoint: str) -> bool:
    """Whether the server counts a request to `endpoint` in progress (BentoML's gauge)."""
    try:
        text = httpx.get(f"{base}/metrics", timeout=5).text
    except httpx.HTTPError:
        return False
    return any(
        "request_in_progress{" in line
        and f'endpoint="{endpoint}"' in line
        and float(line.rsplit(" ", 1)[1]) >= 1
        for line in text.splitlines()
    )


def test_no_store_is_one_line_and_a_fast_exit_creating_nothing(tmp_path):
    uri = f"sqlite:///{tmp_path / 'none.db'}"
    start = time.monotonic()
    proc = _serve(tmp_path, uri, free_port())
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1 and time.monotonic() - start < 30
    assert stderr.strip().count("\n") == 0 and "no MLflow store at" in stderr
    assert "Traceback" not in stderr and not (tmp_path / "none.db").exists()


def test_sigterm_stops_the_server_and_its_workers_after_the_request_in_flight(
    registry, tmp_path, small_sim, ruled
):
    """Also the event stream as `leadscore serve` runs it: a hand-off delivered to the
    webhook at once, and the stream's rescores in the score history once it has stopped."""
    from leadscore.operations.history import ScoreHistory
    from tests.handoff.test_delivery import Receiver
    from tests.serving.test_events import _hot_events

    _, uri = registry
    port = free_port()
    receiver = Receiver().__enter__()
    proc = _serve(tmp_path, uri, port, "--webhook", receiver.url, LEADSCORE_WEBHOOK_SECRET="s3cret")
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            proc.kill()
            raise AssertionError(f"not ready: {proc.stderr.read()[-2000:]}")
        family = psutil.Process(proc.pid).children(recursive=True)
        assert family  # the BentoML server and its worker
        lead, acts = _hot_events("SERVE-1", ruled)
        for event in [lead, *acts]:
            r = httpx.post(f"{base}/events", json={"events": [event]},
                           headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60)  # fmt: skip
            assert r.status_code == 200, r.text
        deadline = time.monotonic() + 20
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.05)
        receiver.__exit__()
        assert len(receiver.received) == 1  # the crossing, at once

        leads = lead_payloads(small_sim, small_sim.leads["lead_id"].head(1000), iso=True)
        result: dict = {}

        def score() -> None:
            result["response"] = httpx.post(
                f"{base}/score",
                json={"leads": leads},
                headers={"Authorization": f"Bearer {API_KEY}"},
                timeout=60,
            )

        # SIGTERM once the server is working on the request (its own in-progress gauge), not
        # after a guessed delay: on a loaded machine the request may not have arrived yet,
        # and on an idle one it may be answered between two looks at the gauge: then the
        # request is sent again, until one is seen in flight.
        for _ in range(10):
            request = threading.Thread(target=score)
            request.start()
            while request.is_alive() and not _in_progress(base, "/score"):
                time.sleep(0.02)
            if request.is_alive():
                break  # seen in flight, still in flight
            request.join()
        else:
            raise AssertionError("ten requests, none seen in flight: " + str(result))
        proc.send_signal(signal.SIGTERM)
        request.join(timeout=60)
        assert proc.wait(timeout=60) == 0
        assert result["response"].status_code == 200  # the request in flight finished
        assert len(result["response"].json()["scores"]) == 1000
        gone, alive = psutil.wait_procs(family, timeout=10)
        assert not alive, [p.cmdline() for p in alive]
        stored = ScoreHistory(tmp_path / "score_history.duckdb").read(["SERVE-1"])
        assert len(stored) == 1 + len(acts)  # every rescore of the stream, in the history
        try:
            httpx.get(f"{base}/readyz", timeout=2)
            raise AssertionError("the port still answers")
        except httpx.ConnectError:
            pass
    finally:
        receiver.__exit__()
        _stopped(proc)


def test_only_local_stores_are_checked_for_existence(tmp_path):
    """A missing local store is refused; remote URIs (a server, databricks) are MLflow's."""
    import pytest

    from leadscore.crm.errors import LeadscoreError
    from leadscore.serving.model import check_store

    for remote in ("databricks", "databricks://profile", "http://mlflow:5000", "postgresql://db/x"):
        check_store(remote)
    for local in (
        f"sqlite:///{tmp_path / 'x.db'}",
        str(tmp_path / "mlruns"),
        f"file://{tmp_path}/m",
    ):
        with pytest.raises(LeadscoreError, match="no MLflow store"):
            check_store(local)


def test_a_promotion_never_mixes_versions_and_a_reload_moves_every_worker(registry, tmp_path):
    """`leadscore serve` pins the version its alias pointed at when it started. After a
    promotion, a worker killed with kill -9 comes back on the same version (the answers never
    alternate); SIGHUP resolves the alias again and every worker serves the new version."""
    import shutil

    from mlflow import MlflowClient

    root, _ = registry
    store = tmp_path / "store"
    shutil.copytree(root, store)  # the artifacts stay where the copied database points
    uri = f"sqlite:///{store / 'mlflow.db'}"
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)  # the logged model behind a version is looked up there
    try:
        client = MlflowClient()
        first = client.get_model_version_by_alias("lead-scoring", "champion")
        second = client.create_model_version("lead-scoring", first.source, run_id=first.run_id)
    finally:
        mlflow.set_tracking_uri(previous)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "LEADSCORE_API_KEYS": API_KEY}
    proc = subprocess.Popen(
        [sys.executable, "-m", "leadscore", "serve", "--port", str(port), "--workers", "2"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {API_KEY}"}

    def versions(n: int = 30) -> set[str]:
        return {httpx.get(f"{base}/metadata", headers=auth, timeout=10).json()["version"]
                for _ in range(n)}  # fmt: skip

    def until(condition, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if condition():
                    return
            except (httpx.HTTPError, psutil.NoSuchProcess):
                pass  # not up yet, or a process gone between two looks at the tree: again
            assert proc.poll() is None, proc.stderr.read()[-2000:]
            time.sleep(0.3)
        raise AssertionError("timed out")

    try:
        until(lambda: httpx.get(f"{base}/readyz", timeout=1).status_code == 200)
        meta = httpx.get(f"{base}/metadata", headers=auth, timeout=10).json()
        assert meta["version"] == str(first.version) and meta["pinned"] is True
        client.set_registered_model_alias("lead-scoring", "champion", second.version)
        workers = [p for p in psutil.Process(proc.pid).children(recursive=True) if not p.children()]
        assert len(workers) >= 2
        workers[0].kill()  # kill -9 of one worker: BentoML starts another
        until(lambda: len([p for p in psutil.Process(proc.pid).children(recursive=True)
                           if not p.children() and p.pid != workers[0].pid]) >= 2
              and httpx.get(f"{base}/readyz", timeout=1).status_code == 200)  # fmt: skip
        assert versions() == {str(first.version)}  # never 1, 2, 1
        proc.send_signal(signal.SIGHUP)  # the documented reload
        until(lambda: versions(5) == {str(second.version)})
        assert versions() == {str(second.version)}
    finally:
        _stopped(proc)
