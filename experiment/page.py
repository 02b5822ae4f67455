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


def path_figure(readout: Readout) -> str | None:
    """The weekly reads as a figure: the effect and both intervals by week (inline SVG)."""
    if len(readout.path) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from leadscore.pages.html import svg

    plt.rcParams.update({"svg.fonttype": "path", "font.size": 9})
    path = pd.DataFrame(readout.path)
    at = pd.to_datetime(path["at"], utc=True, format="ISO8601")
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    ax.fill_between(at, path["low"], path["high"], color="#9bb7d4", alpha=0.5,
                    label="anytime-valid 95 %")  # fmt: skip
    ax.plot(at, path["fixed_low"], ls="--", color="#e8b458", label="fixed-horizon 95 %")
    ax.plot(at, path["fixed_high"], ls="--", color="#e8b458")
    ax.plot(at, path["effect"], color="#1f5fa8", marker=".", label="model - rules")
    ax.axhline(0, color="grey", lw=0.8)
    # the first weeks' intervals are wide: keep the scale of the latest read's
    span = 3 * max(abs(path["low"].iloc[-1]), abs(path["high"].iloc[-1]), 0.5)
    ax.set_ylim(-span, span)
    ax.set(ylabel="wins per 100 leads", title="Every week's read")
    ax.legend(loc="best")
    fig.autofmt_xdate()
    return svg(fig)


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
        figure=path_figure(readout),
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
