"""Console output shared by the commands: rich consoles, option enums, the dataset summary."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum

from rich.console import Console
from rich.table import Table
from rich.text import Text

# Piped or captured output (CI logs, scripts) gets room for the tables instead of 80 columns.
# No console markup: a data value such as `[/x]` or `[red]L2[/red]` is printed as it is,
# never parsed (styles come from `styled`, `warn` and `alarm`, never from text).
out = Console(width=None if sys.stdout.isatty() else 160, markup=False)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160, markup=False)


def styled(*parts) -> Text:
    """A line from parts: plain strings, or (text, style) pairs; no text is parsed."""
    return Text.assemble(*parts)


def warn(text: str, console: Console | None = None) -> None:
    """`warning: text` on stderr (or `console`), the prefix in yellow."""
    (console or err).print(styled(("warning:", "yellow"), " ", text), highlight=False)


def alarm(text: str, prefix: str = "", console: Console | None = None) -> None:
    """A line in bold red (`prefix` in bold red and the text plain, when given)."""
    target = console or err
    if prefix:
        target.print(styled((prefix, "bold red"), " ", text), highlight=False)
    else:
        target.print(styled((text, "bold red")), highlight=False)


# A step this long or longer prints its duration when it ends (a spinner shows it meanwhile).
SLOW_STEP_S = 2.0


def configure_logging(verbose: bool) -> None:
    """Keep the libraries' INFO lines (MLflow's "Creating a new experiment", "Successfully
    registered model", alembic's migrations) out of our output unless `--verbose`; their
    warnings still show. Set through MLFLOW_LOGGING_LEVEL so that MLflow, imported later and
    in our subprocesses (the BentoML server), reads it; a level the user set is kept."""
    level = "INFO" if verbose else os.environ.get("MLFLOW_LOGGING_LEVEL") or "WARNING"
    os.environ["MLFLOW_LOGGING_LEVEL"] = level
    if "mlflow" in sys.modules:  # already imported (tests invoking the app in-process)
        logging.getLogger("mlflow").setLevel(level.upper())


@contextmanager
def step(text: str) -> Iterator[Callable[[str], None]]:
    """A spinner with the elapsed time on stderr while `text` runs, then, for a step of
    SLOW_STEP_S or more, one line with its duration. Yields `detail(str)`, which shows what
    the step is doing now next to its name. Without a terminal (CI logs, pipes) only the
    closing line is written."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    start = time.perf_counter()
    if err.is_terminal:
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        )
        with progress:
            task = progress.add_task(text)
            yield lambda detail: progress.update(task, description=f"{text}: {detail}")
    else:  # a log: no live display (it would leave blank lines), only the closing line
        yield lambda detail: None
    elapsed = time.perf_counter() - start
    if elapsed >= SLOW_STEP_S:
        err.print(styled((f"{text}: {elapsed:.1f} s", "dim")), highlight=False)


class ConsoleProgress:
    """A job's progress on the console (`leadscore.jobs.progress.Progress`): a spinner per
    step, warnings in yellow and alarms in red on stderr."""

    def step(self, text: str):
        return step(text)

    def warn(self, text: str) -> None:
        warn(text)

    def say(self, text: str) -> None:
        err.print(text, highlight=False, markup=False)

    def alarm(self, text: str, prefix: str = "") -> None:
        alarm(text, prefix=prefix)


progress = ConsoleProgress()


def load(data, **kwargs):
    """`leadscore.jobs.data.load` with the console's spinner."""
    from leadscore.jobs import data as reading

    return reading.load(data, progress, **kwargs)


MODEL_REF_HELP = "models:/<name>@<alias>, models:/<name>/<version>, or a saved scorer folder."


class EarlyEvents(StrEnum):
    error = "error"
    drop = "drop"


class Engine(StrEnum):
    duckdb = "duckdb"
    spark = "spark"


ENGINE_HELP = (
    "duckdb: this machine, out of core; spark: a Spark cluster (--spark-master, or Spark "
    "Connect through $SPARK_REMOTE; default local[*]) runs the same feature definitions."
)
SPARK_MASTER_HELP = "Spark master URL for --engine spark (default: $SPARK_REMOTE, else local[*])."


def spark_history(data, master, **kwargs):
    """`leadscore.jobs.data.spark_history` with the console's spinner."""
    from leadscore.jobs import data as reading

    return reading.spark_history(data, master, progress, **kwargs)


class FileFormat(StrEnum):
    parquet = "parquet"
    csv = "csv"


def print_summary(s: dict) -> None:
    out.print(
        styled(
            (str(s["path"]), "bold"), f" ({s['kind']} dataset: {', '.join(s['files'].values())})"
        )
    )
    out.print(
        f"{s['leads']:,} leads created {s['created_from'][:10]} .. data end {s['data_end'][:10]}; "
        f"win rate {s['win_rate']:.1%}"
        + (
            f" ({s['won_leads']:,} won leads, "
            + (
                f"revenue {s['won_revenue']:,.0f})"
                if s.get("won_revenue") is not None
                else "no deal amounts)"
            )
            if "won_leads" in s
            else ""
        )
    )
    if s.get("time_order"):
        out.print(
            styled(
                (
                    "created_at is synthetic: the export has no dates; leads follow the order "
                    f"of {s['time_order']!r}",
                    "yellow",
                )
            )
        )
    for title, key in (
        ("source", "leads_by_source"),
        ("activity type", "activities_by_type"),
        ("deal status", "deals_by_status"),
        ("lead status stage", "lead_status_by_stage"),
    ):
        counts = s.get(key)
        if not counts:
            continue
        table = Table(title=None, show_edge=False, pad_edge=False)
        table.add_column(title)
        table.add_column("count", justify="right")
        table.add_column("share", justify="right")
        total = sum(counts.values())
        for name, n in counts.items():
            table.add_row(name, f"{n:,}", f"{n / total:.1%}")
        out.print(table)
    if s["profile_columns"]:
        types = s.get("profile_types", {})
        out.print(
            "profile columns: "
            + ", ".join(f"{c} ({types[c]})" if c in types else c for c in s["profile_columns"]),
            highlight=False,
        )
    for col, why in s.get("code_like_columns", {}).items():
        out.print(
            styled(
                (
                    f"{col!r} is read as a number but looks like a code ({why}): if it is "
                    "one, list it under columns.categorical in dataset.yaml (or "
                    "leads.categorical in the import mapping)",
                    "yellow",
                )
            ),
            highlight=False,
        )
    for col, why in s.get("id_like_columns", {}).items():
        out.print(
            styled(
                (
                    f"{col!r} looks like an identifier ({why}): never used as a feature "
                    "(dataset.yaml columns.keep overrides)",
                    "yellow",
                )
            ),
            highlight=False,
        )
    if s["leaky_columns"]:
        out.print(styled(("declared leaky: " + ", ".join(s["leaky_columns"]), "yellow")))
    for what, n in s["dropped"].items():
        out.print(styled((f"dropped {n:,} {what.replace('_', ' ')}", "yellow")))
