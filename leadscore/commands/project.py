"""`leadscore init`: a starter folder for a new project (configs and points rules)."""

from __future__ import annotations

from pathlib import Path

import typer

from leadscore.console import out


def init(
    folder: Path = typer.Argument(Path("."), help="The project folder (created if needed)."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace starter files that already exist."
    ),
) -> None:
    """Start a project: conf/features.yaml, conf/train.yaml and conf/rules.yaml (the package's defaults, for you to edit; every command run from the folder reads them) and a README with the next steps."""
    from leadscore.jobs.project import init_project

    for path in init_project(folder, overwrite=overwrite):
        out.print(f"wrote {path}")
    out.print(f"next: cd {folder} && leadscore simulate --out crm && leadscore train --data crm")
