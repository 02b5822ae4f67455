"""What every leadscore page shares: the style sheet, cell formatting, one table helper
(rendered by `templates/_table.html.j2`), inline SVG figures, and the Jinja2 environment
(autoescaped: every value is escaped unless marked safe, as tables and figures are)."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

TEMPLATES = Path(__file__).parent / "templates"
COUNT_COLUMNS = ("rows", "leads", "wins", "mqls", "opportunities")

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
color:#222;padding:0 1em;line-height:1.45}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}
th,td{border:1px solid #ddd;padding:.3em .6em;text-align:right}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}tr.flag td{background:#fff4e0}
.verdict{background:#fde8e8;border:2px solid #c0392b;padding:.6em 1em;margin:1em 0;font-weight:600}
.summary{background:#eef4fb;border:1px solid #9bb7d4;padding:.4em 1.2em;margin:1em 0}
.warn{background:#fff4e0;border:1px solid #e8b458;padding:.6em 1em;margin:1em 0}
.note{color:#555;font-size:.92em}.plots{display:flex;flex-wrap:wrap;gap:1em}
.plots figure{margin:0}ul.ex{margin:.2em 0 .8em 1em;padding:0}code{background:#f4f4f4;padding:0 .2em}
"""


def environment(*folders: Path):
    """A Jinja2 environment over `folders` and the shared templates, `table` a global."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(
        loader=FileSystemLoader([*map(str, folders), str(TEMPLATES)]),
        autoescape=select_autoescape(["j2", "html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["table"] = table
    env.globals["css"] = CSS
    return env


_ENV = None


def table(
    df: pd.DataFrame,
    kinds: dict[str, str] | None = None,
    section: str = "",
    flag: str | None = None,
):
    """The one table of every page: column names with spaces for underscores, cells by
    `format_cell` (counts in COUNT_COLUMNS by default), rows where the boolean column `flag`
    is true highlighted, `data-section` naming the table for tests and scrapers."""
    global _ENV
    if _ENV is None:
        _ENV = environment()
    from markupsafe import Markup

    kinds = {**{c: "count" for c in COUNT_COLUMNS}, **(kinds or {})}
    shown = [c for c in df.columns if c != flag]
    rows = [
        {
            "flag": bool(flag and record[flag]),
            "cells": [format_cell(record[c], kinds.get(c, "")) for c in shown],
        }
        for record in df.to_dict("records")
    ]
    html = _ENV.get_template("_table.html.j2").render(
        section=section, head=[str(c).replace("_", " ") for c in shown], rows=rows
    )
    return Markup(html)


def format_count(v: float) -> str:
    """A count, or an expected count (tied rows at a cut count in part) with one decimal."""
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.1f}"


def format_cell(v, kind: str = "") -> str:
    """A cell's text (escaped by the template, not here): '–' for a missing value."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if kind == "pct":
        return f"{v:.1%}"
    if kind == "money":
        return f"{v:,.0f}"
    if kind == "round":
        return f"{v:,.1f}"
    if kind == "count":
        return format_count(v)
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        return f"{int(v):,}"
    if isinstance(v, float | np.floating):
        return f"{v:.3f}"
    return str(v)


def svg(fig) -> str:
    """A matplotlib figure as inline SVG (closed afterwards)."""
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def write_page(out: Path, page: str, side: Path, write_side: Callable[[Path], None]) -> None:
    """Write an HTML page and the file it goes with (its CSV, its JSON) whole or not at
    all: both are written to hidden temporary names next to them first, then the side file
    replaces its old copy, then the page (a page never links to a side file not there)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_page, tmp_side = out.with_name(f".{out.name}.tmp"), side.with_name(f".{side.name}.tmp")
    try:
        write_side(tmp_side)
        tmp_page.write_text(page, encoding="utf-8")
    except BaseException:
        tmp_side.unlink(missing_ok=True)
        tmp_page.unlink(missing_ok=True)
        raise
    tmp_side.replace(side)
    tmp_page.replace(out)
