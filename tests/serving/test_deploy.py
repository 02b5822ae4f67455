"""deploy/compose.yaml, validated where no Docker daemon runs: the file parses, every image
is built by the project or is a public server image, every command and option it runs
exists, the service's settings are `ServeConfig`'s; and its API runs here without containers
as two replicas sharing one Redis online store."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
import typer
import yaml

from leadscore.serving.bento import BENTO_NAME, PACKED_ENV
from leadscore.serving.config import ServeConfig, env_name

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
# Read by the service outside ServeConfig: the webhook's secret (never in a config object)
# and the bento's packed model (set by the bento itself).
OTHER_SETTINGS = {"LEADSCORE_WEBHOOK_SECRET", PACKED_ENV}
PUBLIC_IMAGES = re.compile(r"^(redis|postgres):\d+(\.\d+)*-alpine$")
ENV = {"POSTGRES_PASSWORD": "pw", "LEADSCORE_API_KEYS": "k1,k2"}


def compose(env: dict[str, str] | None = None) -> dict:
    """The compose file with `${VAR}`, `${VAR:-default}` and `${VAR:?message}` substituted
    as Docker Compose does (a missing required variable is an error)."""
    env = ENV if env is None else env
    text = (DEPLOY / "compose.yaml").read_text()

    def sub(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
        if name in env and (env[name] or op != ":-"):
            return env[name]
        if op == ":?":
            raise ValueError(f"{name}: {arg}")
        return arg

    return yaml.safe_load(re.sub(r"\$\{(\w+)(:-|:\?)?([^}]*)\}", sub, text))


def test_the_compose_file_parses_and_names_its_parts():
    services = compose()["services"]
    assert set(services) == {"api", "redis", "postgres", "mlflow", "score"}
    assert services["api"]["deploy"]["replicas"] == 2
    with pytest.raises(ValueError, match="LEADSCORE_API_KEYS"):
        compose({"POSTGRES_PASSWORD": "pw"})  # no keys: compose refuses to start


def test_every_image_is_ours_or_a_public_server():
    for name, service in compose()["services"].items():
        image = service["image"]
        if "build" in service:
            build = service["build"]
            dockerfile = (DEPLOY / build["context"] / build["dockerfile"]).resolve()
            assert dockerfile.is_file(), (name, dockerfile)
            assert image.startswith("leadscore-"), name
        elif name == "api":
            assert image == f"{BENTO_NAME}:latest"  # `leadscore bento` builds this bento
        else:
            assert PUBLIC_IMAGES.match(image), (name, image)
        for volume in service.get("volumes", ()):
            source = volume.split(":")[0]
            if source.startswith("./") and Path(source).suffix:  # a file of ours
                assert (DEPLOY / source).is_file(), (name, source)


def test_the_service_settings_are_serve_configs():
    api = compose()["services"]["api"]
    settings = api["environment"]
    known = {env_name(field) for field in ServeConfig.model_fields} | OTHER_SETTINGS
    assert set(settings) <= known, set(settings) - known
    config = ServeConfig.from_env(settings)
    assert config.api_keys == ("k1", "k2") and config.state_url == "redis://redis:6379/0"
    # BentoML's entrypoint runs `bentoml serve <bento>` for a first argument `serve`
    assert api["command"][0] == "serve" and "0.0.0.0" in api["command"]


def _options(command) -> set[str]:
    return {opt for param in command.params for opt in param.opts}


def test_every_command_and_option_exists():
    from leadscore.cli import app

    services = compose()["services"]
    job = services["score"]["command"]
    assert job[0] == "leadscore"
    cli = typer.main.get_command(app)
    command = cli.commands[job[1]]
    assert {t for t in job[2:] if t.startswith("--")} <= _options(command)
    assert job[job.index("--history") + 1].startswith("postgresql://")

    from mlflow.cli import cli as mlflow_cli

    server = services["mlflow"]["command"]
    assert server[:2] == ["mlflow", "server"]
    given = {t.split("=")[0] for t in server[2:]}
    assert given <= _options(mlflow_cli.commands["server"])

    # The server image installs MLflow from leadscore's own requirement (the series the suite
    # runs, whichever release of it the registry serves today), not a copy of one version.
    import tomllib
    from importlib.metadata import version

    from packaging.requirements import Requirement

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    ours = next(Requirement(d) for d in declared["dependencies"] if d.startswith("mlflow"))
    pins = re.findall(r'"(mlflow[^"]*)"', (DEPLOY / "mlflow.Dockerfile").read_text())
    assert [Requirement(p).specifier for p in pins] == [ours.specifier]
    assert ours.specifier.contains(version("mlflow"))
    extras = re.search(r"/src\[([\w,]+)\]", (DEPLOY / "leadscore.Dockerfile").read_text())
    assert set(extras.group(1).split(",")) <= set(declared["optional-dependencies"])


def test_a_template_placeholder_is_never_left_unsubstituted():
    text = (DEPLOY / "compose.yaml").read_text()
    names = {m.group(1) for m in re.finditer(r"\$\{(\w+)", text)}
    assert names <= {
        "POSTGRES_PASSWORD",
        "LEADSCORE_API_KEYS",
        "LEADSCORE_WEBHOOK_URL",
        "LEADSCORE_WEBHOOK_SECRET",
        "LEADSCORE_HANDOFF_GRADES",
    }


@pytest.mark.slow
def test_two_replicas_share_the_online_store_as_composed(registry, tmp_path):
    """The api service as composed, without containers: two servers (the replicas) with the
    compose file's settings, the online store a real Redis. An event posted to one replica is
    the lead's state on the other."""
    from leadscore.serving.process import Server
    from tests.redis_server import redis_server
    from tests.serving.conftest import API_KEY

    root, uri = registry
    settings = compose({**ENV, "LEADSCORE_API_KEYS": API_KEY})["services"]["api"]["environment"]
    with redis_server() as redis:
        env = {
            **{k: v for k, v in settings.items() if v},
            "LEADSCORE_STATE_URL": redis.url,  # the compose network's redis://redis:6379/0
            "MLFLOW_TRACKING_URI": uri,  # the compose bento carries its model instead
        }
        headers = {"Authorization": f"Bearer {API_KEY}"}
        start = "2026-11-30T09:00:00Z"
        created = {"event_id": "R-1", "type": "lead", "lead_id": "REPLICA-1",
                   "occurred_at": start, "created_at": start, "source": "partner",
                   "profile": {}}  # fmt: skip
        with (
            Server(env={**env, "BENTOML_HOME": str(tmp_path / "a")}, cwd=root) as one,
            Server(env={**env, "BENTOML_HOME": str(tmp_path / "b")}, cwd=root) as two,
        ):
            posted = httpx.post(
                f"{one.base}/events", json={"events": [created]}, headers=headers, timeout=60
            )
            assert posted.status_code == 200 and posted.json()["accepted"] == 1, posted.text
            seen = httpx.get(f"{two.base}/leads/REPLICA-1", headers=headers, timeout=60)
            assert seen.status_code == 200, seen.text
            assert seen.json()["lead_id"] == "REPLICA-1"
            again = httpx.post(
                f"{two.base}/events", json={"events": [created]}, headers=headers, timeout=60
            )
            assert again.json()["duplicates"] == 1  # applied once across the replicas
