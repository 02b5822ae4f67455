"""`leadscore` command line: one Typer app that assembles the commands of
`leadscore/commands/` (one module per command or group), listed in workflow order.

Heavy libraries are imported inside the commands so that `leadscore --help` stays fast.
A user mistake (bad data, bad config) prints one clear line and exits 1, never a traceback.
"""

from __future__ import annotations

import sys

import typer

from crm.errors import LeadscoreError
from leadscore.commands import (
    compare,
    data,
    demo,
    imports,
    operations,
    registry,
    rules,
    serve,
    train,
)
from leadscore.console import err

app = typer.Typer(
    name="leadscore",
    help="Predictive lead scoring: point-in-time features, calibrated models, explainable scores.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(data.simulate)
app.add_typer(imports.app, name="import")
app.command()(data.validate)
app.command()(data.features)
app.command()(train.train)
app.add_typer(rules.app, name="rules")
app.command()(compare.compare)
app.command()(registry.models)
app.command()(registry.promote)
app.command()(registry.rollback)
app.command()(serve.serve)
app.command()(serve.bento)
app.command()(operations.score)
app.command()(operations.history)
app.command()(operations.monitor)
app.command()(train.retrain)
app.command()(demo.demo)


def main() -> None:
    """Console-script entry point: user errors become one red line and exit code 1."""
    try:
        app()
    except LeadscoreError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
