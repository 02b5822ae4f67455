"""`leadscore models` (and `models migrate`), `promote` and `rollback`: the MLflow registry's
versions and the champion alias."""

from __future__ import annotations

import typer
from rich.table import Table

from leadscore.console import out
from leadscore.crm.errors import LeadscoreError
from leadscore.scoring.model_ref import DEFAULT_MODEL_NAME

app = typer.Typer(
    help="List registered model versions with their aliases and test metrics; `models migrate` re-logs a model saved by an earlier layout.",
    invoke_without_command=True,
    no_args_is_help=False,
)


@app.callback(invoke_without_command=True)
def models(
    ctx: typer.Context,
    model_name: str = typer.Option(
        DEFAULT_MODEL_NAME, "--model-name", help="Registered model name."
    ),
) -> None:
    """List registered model versions with their aliases and test metrics."""
    if ctx.invoked_subcommand is not None:
        return
    from leadscore.training.registry import list_versions

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
    model_name: str = typer.Option(
        DEFAULT_MODEL_NAME, "--model-name", help="Registered model name."
    ),
) -> None:
    """Move the `champion` alias to a version explicitly."""
    from leadscore.training.registry import promote as promote_version

    promote_version(model_name, version)
    out.print(f"{model_name} v{version} is now champion")


def rollback(
    model_name: str = typer.Option(
        DEFAULT_MODEL_NAME, "--model-name", help="Registered model name."
    ),
) -> None:
    """Move `champion` back to the version it replaced (the alias history is kept as version tags; a second rollback goes one further back)."""
    from leadscore.training.registry import rollback as roll_back

    old, new = roll_back(model_name)
    out.print(f"{model_name}: champion v{old} -> v{new}")


@app.command()
def migrate(
    source: str | None = typer.Argument(
        None,
        help="The model to migrate: a registered version (models:/NAME/VERSION) or a model folder.",
    ),
    model_name: str = typer.Option(
        DEFAULT_MODEL_NAME, "--model-name", help="Registered model that receives the new version."
    ),
    all_versions: bool = typer.Option(
        False,
        "--all",
        help="Migrate every version of --model-name that runs an earlier layout (bare package names in its code, or an entry that imports a module that is gone), oldest first.",
    ),
) -> None:
    """Re-log a model saved by an earlier layout with the current entry point and its code under the one leadscore namespace, as a new version (its aliases move to it when it is a version of the same model); MLflow's own loaders (mlflow models serve, spark_udf) then load it."""
    from leadscore.crm.errors import LeadscoreError
    from leadscore.training.tracking import migrate_all, migrate_model

    if all_versions == (source is not None):
        raise LeadscoreError("give a model to migrate, or --all (every version of --model-name)")
    done = migrate_all(model_name) if all_versions else [migrate_model(source, model_name)]
    for migration in done:
        moved = f"; {', '.join(migration.aliases)} moved to it" if migration.aliases else ""
        out.print(f"{migration.source} -> {model_name} v{migration.version}{moved}")
    if all_versions and not done:
        out.print(f"every version of {model_name} runs the current layout: nothing to migrate")
