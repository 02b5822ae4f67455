"""`leadscore bento` packs the champion into a bento that serves without the registry, and
that deploys: its own requirements, installed alone in a fresh virtualenv, serve `/score`,
`/events` and `GET /leads/{id}` (what `bentoml containerize` puts in an image)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from leadscore.serving.model import packed_model_tag
from leadscore.serving.process import Server
from tests.serving.conftest import API_KEY


def _run(args, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-3000:])
    return done


@pytest.fixture(scope="module")
def bento(registry, tmp_path_factory):
    """`leadscore bento` (the console script) into a BentoML home of its own."""
    root, uri = registry
    home = tmp_path_factory.mktemp("bento") / "bentoml"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "BENTOML_HOME": str(home)}
    built = _run([sys.executable, "-m", "leadscore", "bento"], cwd=root, env=env, timeout=300)
    assert "exported lead-scoring@champion" in built.stdout and "built bento" in built.stdout
    (record,) = home.glob("bentos/leadscore-service/*/bento.yaml")
    return home, record.parent, built.stdout


def test_bento_build_records_the_mlflow_version_and_serves_the_packed_model(
    bento, tmp_path, small_sim
):
    home, folder, _ = bento
    src = folder / "src"
    assert sorted(p.name for p in src.iterdir()) == ["bentofile.yaml", "leadscore"]
    # everything the service reaches, POST /events' lazy imports included
    assert {"serving", "stream", "handoff", "scoring", "features", "crm", "stats"} <= {
        p.name for p in (src / "leadscore").iterdir()
    }
    assert not (src / "leadscore" / "training").exists()
    pins = (folder / "env" / "python" / "requirements.txt").read_text()
    assert "numba==" in pins and "lightgbm==" in pins and "bentoml==" in pins

    tag = packed_model_tag({}, src / "leadscore" / "serving" / "service.py")
    assert tag is not None and tag.startswith("lead-scoring:")
    labels = (home / "models" / "lead-scoring" / tag.split(":")[1] / "model.yaml").read_text()
    assert "mlflow_version: '1'" in labels and "mlflow_alias: champion" in labels

    # Served from the bento with no registry reachable: the packed model answers.
    serve_env = {
        "BENTOML_HOME": str(home),
        "LEADSCORE_API_KEYS": API_KEY,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'missing' / 'none.db'}",
    }
    # No --host: the bento listens on loopback only, not on every interface.
    with Server(
        env=serve_env, cwd=tmp_path, service="leadscore-service:latest", host=None
    ) as server:
        import psutil

        family = {p.pid for p in psutil.Process(server.proc.pid).children(recursive=True)}
        family.add(server.proc.pid)
        listening = {
            c.laddr.ip
            for c in psutil.net_connections("inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == server.port and c.pid in family
        }
        assert listening == {"127.0.0.1"}
        headers = {"Authorization": f"Bearer {API_KEY}"}
        meta = httpx.get(f"{server.base}/metadata", headers=headers).json()
        assert meta["version"] == "1" and meta["source"] == f"bento model {tag}"
        from leadscore.crm.payloads import lead_payloads

        lead = lead_payloads(small_sim, [small_sim.leads["lead_id"].iloc[0]], iso=True)[0]
        scored = httpx.post(
            f"{server.base}/score", json={"leads": [lead]}, headers=headers, timeout=30
        )
        assert scored.status_code == 200, scored.text
        assert scored.json()["scores"][0]["model"] == {"name": "lead-scoring", "version": "1"}


@pytest.mark.slow
def test_the_bento_serves_from_its_own_requirements_alone(bento, tmp_path, small_sim):
    """A fresh virtualenv holding only the bento's requirements (pip, from the package
    registry or pip's cache): no leadscore installed, no test dependency visible."""
    home, folder, _ = bento
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "LEADSCORE_"))}
    env.pop("PYTHONPATH", None)
    _run([sys.executable, "-m", "venv", str(venv)], env=env, timeout=300)
    python = str(venv / "bin" / "python")
    requirements = folder / "env" / "python" / "requirements.txt"
    _run([python, "-m", "pip", "install", "-q", "--no-compile", "--disable-pip-version-check", "-r",
          str(requirements)], env=env, timeout=1500)  # fmt: skip
    alone = subprocess.run(
        [python, "-c", "import leadscore"], capture_output=True, env=env, cwd=tmp_path
    )
    assert alone.returncode != 0  # only the bento's own src/ will carry it

    serve_env = {
        "BENTOML_HOME": str(home),
        "LEADSCORE_API_KEYS": API_KEY,
        "LEADSCORE_STATE_URL": f"sqlite:///{tmp_path / 'state.sqlite'}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'missing' / 'none.db'}",
    }
    base_env = {**env, **serve_env}
    with Server(
        env=base_env, cwd=tmp_path, service="leadscore-service:latest", python=python,
        log_path=tmp_path / "server.log",
    ) as server:  # fmt: skip
        headers = {"Authorization": f"Bearer {API_KEY}"}
        from leadscore.crm.payloads import lead_payloads

        lead = lead_payloads(small_sim, [small_sim.leads["lead_id"].iloc[0]], iso=True)[0]
        scored = httpx.post(
            f"{server.base}/score", json={"leads": [lead]}, headers=headers, timeout=60
        )
        assert scored.status_code == 200, scored.text
        start = "2026-11-30T09:00:00Z"
        created = {"event_id": "B-1", "type": "lead", "lead_id": "BENTO-1", "occurred_at": start,
                   "created_at": start, "source": "partner", "profile": {}}  # fmt: skip
        visit = {"event_id": "B-2", "type": "activity", "lead_id": "BENTO-1",
                 "occurred_at": "2026-11-30T09:05:00Z", "activity_type": "web_visit"}  # fmt: skip
        events = httpx.post(
            f"{server.base}/events", json={"events": [created, visit]}, headers=headers,
            timeout=60,
        )  # fmt: skip
        assert events.status_code == 200, (events.text, server.tail())
        assert events.json()["accepted"] == 2
        state = httpx.get(f"{server.base}/leads/BENTO-1", headers=headers, timeout=60)
        assert state.status_code == 200, state.text
        assert 0 < state.json()["probability"] < 1
    log = Path(tmp_path / "server.log").read_text()
    assert "ModuleNotFoundError" not in log and "Traceback" not in log, log[-3000:]


def test_outside_a_bento_nothing_is_packed(tmp_path):
    service = tmp_path / "src" / "leadscore" / "serving" / "service.py"
    assert packed_model_tag({}, service) is None
    assert packed_model_tag({"LEADSCORE_PACKED_MODEL": "m:1"}, tmp_path / "x.py") == "m:1"
