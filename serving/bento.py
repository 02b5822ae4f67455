"""A bento of the service: its source and its Python requirements derived from what the
service imports (`leadscore.scoring.shipping`, the derivation of the MLflow model's own),
never listed by hand.

`bentoml containerize` puts the bento's `env/python/requirements.txt` in the image and its
`src/` on the path: so the bento must carry every module `POST /events` reaches lazily and
pin every library those import.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import yaml

from leadscore.crm.errors import LeadscoreError
from leadscore.scoring.shipping import Shipment, ship

SERVICE_MODULE = "leadscore.serving.service"
SERVICE = f"{SERVICE_MODULE}:LeadScoring"
PACKED_ENV = "LEADSCORE_PACKED_MODEL"
# Not `leadscore`: `bentoml serve leadscore:latest` first tries `import leadscore` (a module
# and an attribute), which where leadscore is installed imports it from site-packages before
# the bento's own src/ is on the path, and the bento would then run the installed code.
BENTO_NAME = "leadscore-service"


def service_shipment() -> Shipment:
    """The service's code and pinned requirements (every module it reaches, lazy ones too)."""
    return ship(SERVICE_MODULE)


def bentofile(shipment: Shipment, packed_tag: str) -> dict:
    """The build file: the staged `leadscore/` as source, the shipment's pins as packages,
    the packed model named in the environment (a container serves exactly that model)."""
    return {
        "service": SERVICE,
        "name": BENTO_NAME,
        "labels": {"project": "leadscore", "leadscore_version": version("leadscore")},
        "include": ["leadscore/**"],
        "exclude": ["**/__pycache__"],
        "envs": [{"name": PACKED_ENV, "value": packed_tag}],
        "python": {"packages": list(shipment.requirements)},
    }


def build_bento(packed_tag: str, workdir: Path) -> str:
    """Stage the service's code in `workdir`, write its bentofile and run `bentoml build`
    (into `BENTOML_HOME`); returns the bento's tag.

    Raises:
        LeadscoreError: the build failed (BentoML's own message is on stderr).
    """
    shipment = service_shipment()
    workdir = Path(workdir)
    shipment.stage(workdir)
    spec = workdir / "bentofile.yaml"
    spec.write_text(yaml.safe_dump(bentofile(shipment, packed_tag), sort_keys=False))
    env = {**os.environ, PACKED_ENV: packed_tag}
    done = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", "-f", str(spec), "--output", "tag", "."],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    tags = [line.split("__tag__:", 1)[1] for line in done.stdout.splitlines() if "__tag__:" in line]
    if done.returncode != 0 or not tags:
        raise LeadscoreError(f"bentoml build failed (exit {done.returncode})")
    return tags[-1].strip()
