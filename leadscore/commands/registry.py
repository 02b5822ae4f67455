"""`leadscore models` and `promote`: the MLflow registry's versions and the champion alias."""

from __future__ import annotations

import typer
from rich.table import Table

from crm.errors import LeadscoreError
from leadscore.console import out


def models(
    model_name: str = typer.Option("lead-scoring", "--model-name", help="Registered model name."),
) -> None:
    """List registered model versions with their aliases and test metrics."""
    from training.tracking import list_versions

    rows = list_versions(model_name)
    if not rows:
        raise LeadscoreError(
            f"no registered versions of {model_name!r} (train one with `leadscore train`)"
        )
    table = Table(show_edge=False)
    for col in rows[0]:
        table.add_column(col)
    for row in rows:
        table.add_row(*[str(v) for v in row.values()])
    out.print(table)


def promote(
    version: str = typer.Argument(..., help="Version to make champion."),
    model_name: str = typer.Option("lead-scoring", "--model-name", help="Registered model name."),
) -> None:
    """Move the `champion` alias to a version explicitly."""
    from training.tracking import promote as promote_version

    promote_version(model_name, version)
    out.print(f"{model_name} v{version} is now champion")


def rollback(
    model_name: str = typer.Option("lead-scoring", "--model-name", help="Registered model name."),
) -> None:
    """Move `champion` back to the version it replaced (the alias history is kept as version tags; a second rollback goes one further back)."""
    from training.tracking import rollback as roll_back

    old, new = roll_back(model_name)
    out.print(f"{model_name}: champion v{old} -> v{new}")
