"""The experiment's readout as a self-contained HTML page and its JSON, written whole or
not at all (`leadscore.pages.html.write_page`)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from leadscore.crm.csv_out import json_ready
from leadscore.experiment.readout import Readout
from leadscore.pages.html import environment, table, write_page

TEMPLATES = Path(__file__).parent / "templates"
CSS_CLASS = {
    "switch": "switch",
    "keep the rules": "keep",
    "not yet sure": "unsure",
    "arms differ": "keep",
    "no difference": "switch",
}


def render(readout: Readout) -> str:
    arms = pd.DataFrame(
        [
            {
                "arm": a.arm,
                "leads": a.leads,
                "hand-offs": a.handoffs,
                "hand-off rate": a.handoff_rate,
                "matured": a.matured,
                "wins": a.wins,
                "wins per 100 leads": a.wins_per_100,
                "revenue per lead": a.revenue_per_lead,
            }
            for a in readout.arms
        ]
    )
    difference = pd.DataFrame(
        [
            {"interval": "anytime-valid (95 %)", "effect": readout.effect,
             "low": readout.low, "high": readout.high},
            {"interval": "fixed-horizon (95 %)", "effect": readout.effect,
             "low": readout.fixed_low, "high": readout.fixed_high},
        ]
    )  # fmt: skip
    env = environment(TEMPLATES)
    return env.get_template("experiment.html.j2").render(
        r=readout,
        css_class=CSS_CLASS[readout.decision],
        arms_table=table(
            arms,
            {
                "hand-offs": "count",
                "matured": "count",
                "hand-off rate": "pct",
                "wins per 100 leads": "round",
                "revenue per lead": "money",
            },
            section="arms",
        ),
        difference_table=table(
            difference, {"effect": "round", "low": "round", "high": "round"}, section="difference"
        ),
    )


def write_report(readout: Readout, out: Path) -> tuple[Path, Path]:
    """The page at `out` and its JSON next to it (`<out>.json` without `.html`)."""
    side = out.with_suffix(".json")
    text = json.dumps(json_ready(readout.as_json()), indent=2, sort_keys=True) + "\n"
    write_page(out, render(readout), side, lambda tmp: tmp.write_text(text))
    return out, side
