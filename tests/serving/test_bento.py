"""`leadscore bento` packs the champion into a bento that serves without the registry."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from serving.model import packed_model_tag
from serving.process import Server
from tests.serving.conftest import API_KEY


def test_bento_build_records_the_mlflow_version_and_serves_the_packed_model(
    registry, tmp_path, small_sim
):
    root, uri = registry
    home = tmp_path / "bentoml"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "BENTOML_HOME": str(home)}
    built = subprocess.run(
        [sys.executable, "-m", "leadscore", "bento"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    assert "exported lead-scoring@champion" in built.stdout
    records = list(home.glob("bentos/leadscore/*/bento.yaml"))
    assert len(records) == 1
    service_file = records[0].parent / "src" / "serving" / "service.py"
    tag = packed_model_tag({}, service_file)
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
    with Server(env=serve_env, cwd=tmp_path, service="leadscore:latest", host=None) as server:
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
        from crm.payloads import lead_payloads

        lead = lead_payloads(small_sim, [small_sim.leads["lead_id"].iloc[0]], iso=True)[0]
        scored = httpx.post(
            f"{server.base}/score", json={"leads": [lead]}, headers=headers, timeout=30
        )
        assert scored.status_code == 200, scored.text
        assert scored.json()["scores"][0]["model"] == {"name": "lead-scoring", "version": "1"}


def test_outside_a_bento_nothing_is_packed(tmp_path):
    assert packed_model_tag({}, tmp_path / "src" / "serving" / "service.py") is None
    assert packed_model_tag({"LEADSCORE_PACKED_MODEL": "m:1"}, tmp_path / "x.py") == "m:1"
