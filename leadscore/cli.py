"""`leadscore` command line: one Typer app that assembles the commands of
`leadscore/commands/` (one module per command or group), listed in workflow order.

Heavy libraries are imported inside the commands so that `leadscore --help` stays fast.
A user mistake (bad data, bad config) prints one clear line and exits 1, never a traceback.
"""

from __future__ import annotations

import errno

import typer
import typer.core

from leadscore.commands import (
    compare,
    data,
    demo,
    experiment,
    imports,
    loop,
    operations,
    project,
    registry,
    rules,
    serve,
    train,
)
from leadscore.console import configure_logging, err, styled
from leadscore.crm.errors import LeadscoreError
from leadscore.crm.secrets import mask_urls


class _Commands(typer.core.TyperGroup):
    """The app's group: a user's mistake in any command (a `LeadscoreError`, or the machine
    refusing a file) becomes one red line on stderr and exit code 1, whoever runs the app
    (the console script, or the app in process)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except LeadscoreError as exc:
            _refuse(str(exc))
        except OSError as exc:
            if exc.errno not in ENVIRONMENT_ERRORS:
                raise
            # The machine refused (a full disk, no permission, a read-only folder): one line
            # naming the file; writers remove their temporary files and replace nothing.
            where = f"{exc.filename}: " if exc.filename else ""
            _refuse(f"{where}{exc.strerror or exc}")


def _refuse(said: str):
    err.print(styled(("error:", "red"), " ", mask_urls(said)), highlight=False, soft_wrap=True)
    raise typer.Exit(1)


app = typer.Typer(
    cls=_Commands,
    name="leadscore",
    help="Predictive lead scoring: point-in-time features, calibrated models, explainable scores. The commands are listed in workflow order: get a CRM export (simulate, import), check it (validate), build features, train, compare with the points rules, manage models, serve or score, monitor, retrain.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"leadscore {version('leadscore')}")
        raise typer.Exit()


@app.callback()
def _options(
    verbose: bool = typer.Option(
        False,
        "--verbose",
        "-v",
        help="Show the libraries' log lines too (MLflow's INFO lines, model registration messages). Put it before the command: leadscore --verbose train ...",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    configure_logging(verbose)


# Workflow order, in panels: typer lists a panel's commands in the order they are added
# (a command group, such as `import`, after the plain commands of its panel).
# A panel holding only groups would come last, whatever its number.
GET, CHECK, MODELS, REGISTRY, PRODUCTION, TRY = (
    "1. Start a project, get a CRM export",
    "2. Check it, build features",
    "3. Train, compare with the points rules (rules: write or learn them)",
    "4. Registered models",
    "5. Serve, score, monitor, retrain",
    "6. Try it all",
)
app.command(rich_help_panel=GET)(project.init)
app.command(rich_help_panel=GET)(data.simulate)
app.add_typer(imports.app, name="import", rich_help_panel=GET)
app.command(rich_help_panel=CHECK)(data.validate)
app.command(rich_help_panel=CHECK)(data.features)
app.command(rich_help_panel=MODELS)(train.train)
app.add_typer(rules.app, name="rules", rich_help_panel=MODELS)
app.command(rich_help_panel=MODELS)(compare.compare)
app.add_typer(registry.app, name="models", rich_help_panel=REGISTRY)
app.command(rich_help_panel=REGISTRY)(registry.promote)
app.command(rich_help_panel=REGISTRY)(registry.rollback)
app.command(rich_help_panel=PRODUCTION)(serve.serve)
app.command(rich_help_panel=PRODUCTION)(serve.bento)
app.command(rich_help_panel=PRODUCTION)(operations.score)
app.command(rich_help_panel=PRODUCTION)(operations.history)
app.command(rich_help_panel=PRODUCTION)(operations.monitor)
app.command(rich_help_panel=PRODUCTION)(loop.kpis)
app.command(rich_help_panel=PRODUCTION)(loop.plan)
app.command(rich_help_panel=PRODUCTION)(train.retrain)
app.add_typer(experiment.app, name="experiment", rich_help_panel=PRODUCTION)
app.command(rich_help_panel=TRY)(demo.demo)


def main() -> None:
    """Console-script entry point (user errors: one red line and exit code 1, `_Commands`)."""
    app()


# What the machine can refuse a command, as opposed to a fault of ours.
ENVIRONMENT_ERRORS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.EIO,
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.ENAMETOOLONG,
        errno.EMFILE,
    }
)
