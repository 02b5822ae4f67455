"""Console output shared by the commands: rich consoles, option enums, the dataset summary."""

from __future__ import annotations

import sys
from enum import StrEnum

from rich.console import Console
from rich.table import Table

# Piped or captured output (CI logs, scripts) gets room for the tables instead of 80 columns.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


MODEL_REF_HELP = "models:/<name>@<alias>, models:/<name>/<version>, or a saved scorer folder."


class EarlyEvents(StrEnum):
    error = "error"
    drop = "drop"


class FileFormat(StrEnum):
    parquet = "parquet"
    csv = "csv"


def print_summary(s: dict) -> None:
    out.print(f"[bold]{s['path']}[/bold] ({s['kind']} dataset: {', '.join(s['files'].values())})")
    out.print(
        f"{s['leads']:,} leads created {s['created_from'][:10]} .. data end {s['data_end'][:10]}; "
        f"win rate {s['win_rate']:.1%}"
        + (
            f" ({s['won_leads']:,} won leads, revenue {s['won_revenue']:,.0f})"
            if "won_leads" in s
            else ""
        )
    )
    if s.get("time_order"):
        out.print(
            f"[yellow]created_at is synthetic: the export has no dates; leads follow the order "
            f"of {s['time_order']!r}[/yellow]"
        )
    for title, key in (
        ("source", "leads_by_source"),
        ("activity type", "activities_by_type"),
        ("deal status", "deals_by_status"),
    ):
        counts = s[key]
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
        out.print("profile columns: " + ", ".join(s["profile_columns"]))
    for col, why in s.get("id_like_columns", {}).items():
        out.print(
            f"[yellow]{col!r} looks like an identifier ({why}): never used as a feature "
            "(dataset.yaml columns.keep overrides)[/yellow]",
            highlight=False,
        )
    if s["leaky_columns"]:
        out.print("[yellow]declared leaky: " + ", ".join(s["leaky_columns"]) + "[/yellow]")
    for what, n in s["dropped"].items():
        out.print(f"[yellow]dropped {n:,} {what.replace('_', ' ')}[/yellow]")
