"""The marketing report's page: a summary in words first, then the evidence, rendered by
`templates/compare.html.j2` (no HTML here: tables come from `leadscore.pages.html.table`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.crm.csv_out import write_csv
from leadscore.crm.errors import LeadscoreError
from leadscore.pages.html import environment, svg, write_page
from leadscore.training.backtest import table_rows
from leadscore.training.kpis import NEVER, SPEED_BUCKETS
from leadscore.training.report import Comparison
from leadscore.training.report_tables import QUADRANTS, SCORERS
from leadscore.training.trust import does_not_beat_rules

TEMPLATES = Path(__file__).parent / "templates"
COLORS = {"model": "#1f5fa8", "rules": "#d0701c", "learned": "#3a8f3a", "lead_age": "#8a8a8a"}


# The mean prediction may be off the test period's win rate by this much (relative) before
# the report says the win rate moved; an ECE this small (absolute, or relative to the win
# rate) lets it call the probabilities win rates.
MOVED_BASE_RATE = 0.10
READABLE_ECE = 0.02
READABLE_ECE_SHARE = 0.10


def calibration_sentence(ece: float, rows: pd.DataFrame) -> str:
    """What the model's calibration on the test rows allows a reader to do, in words: read
    the probabilities as win rates only when that holds; when the mean prediction is off the
    period's win rate, say that the win rate moved."""
    predicted = float(rows["probability"].mean())
    observed = float(rows["label"].mean())
    if observed > 0 and abs(predicted / observed - 1) > MOVED_BASE_RATE:
        direction = "above" if predicted > observed else "below"
        return (
            f"The model's probabilities run {direction} the test period's win rate: "
            f"{predicted:.1%} predicted on average against {observed:.1%} won (ECE {ece:.3f}). "
            "The win rate moved between the periods the model was calibrated on and the test "
            "period: read the scores as a ranking, not as win rates, until it is retrained."
        )
    if ece <= READABLE_ECE or ece <= READABLE_ECE_SHARE * observed:
        return (
            f"The model's probabilities can be read as win rates: they are off by "
            f"{ece * 100:.1f} points on average (ECE {ece:.3f})."
        )
    return (
        f"The model's probabilities are off by {ece * 100:.1f} points on average (ECE "
        f"{ece:.3f}), with the mean prediction near the win rate ({predicted:.1%} against "
        f"{observed:.1%}): read them as a ranking more than as exact win rates."
    )


def render(comp: Comparison, csv_name: str) -> str:
    m = comp.meta
    h = comp.headline.set_index("scorer")
    head = pd.DataFrame(
        [
            {
                "scorer": SCORERS[name],
                "same-day ROC AUC [95% CI]": _interval(r, "same_day_auc"),
                "pooled ROC AUC [95% CI]": _interval(r, "roc_auc"),
                "PR AUC [95% CI]": _interval(r, "pr_auc"),
                "Brier [95% CI]": f"{r.brier:.4f} [{r.brier_low:.4f}, {r.brier_high:.4f}]",
                "lift top 10% [95% CI]": f"{r.lift_top_decile:.2f} [{r.lift_top_decile_low:.2f}, {r.lift_top_decile_high:.2f}]",
                "ECE": f"{r.ece:.4f}",
            }
            for name, r in h.iterrows()
        ]
    )
    d = comp.differences
    differences = [
        f"{label} {d[k][0]:+.3f} [{d[k][1]:+.3f}, {d[k][2]:+.3f}]"
        for k, label in (
            ("same_day_auc", "same-day ROC AUC"),
            ("roc_auc", "pooled ROC AUC"),
            ("pr_auc", "PR AUC"),
            ("brier", "Brier"),
            ("lift_top_decile", "lift top 10%"),
        )  # fmt: skip
        if k in d and np.isfinite(d[k][0])
    ]
    order = list(dict.fromkeys(comp.deciles["scorer"]))  # model, rules, learned
    wide = comp.deciles.pivot(index="decile", columns="scorer", values="lift")[order]
    wide.columns = [f"lift {SCORERS[c]}" for c in wide.columns]
    cap = comp.deciles.pivot(index="decile", columns="scorer", values="capture")[order]
    cap.columns = [f"capture {SCORERS[c]}" for c in cap.columns]
    audit = m.get("leakage") or {}
    why = {w.split("'")[1]: w for w in audit.get("warnings", []) if "'" in w}
    excluded = pd.DataFrame(
        [{"column": c, "why": why.get(c, "declared leaky")} for c in audit.get("excluded", [])]
    )
    decision = comp.rows["hand_off"].to_numpy() if "hand_off" in comp.rows else None
    grades = comp.grades
    return (
        environment(TEMPLATES)
        .get_template("compare.html.j2")
        .render(
            m=m,
            summary=summary(comp),
            verdict=comp.verdict,
            warnings=comp.warnings,
            figures=figures(comp),
            headline=head,
            differences=differences,
            deciles=pd.concat([wide, cap], axis=1).reset_index(),
            capture_columns={c: "pct" for c in cap.columns},
            grades={
                scorer: g.drop(columns="scorer")
                for scorer, g in grades.groupby("scorer", sort=False)
            }
            if len(grades)
            else {},
            capacity=comp.capacity,
            capacity_all=comp.capacity_all,
            n_decision=int(comp.rows["mql"].to_numpy()[decision].sum()) if m["rules"] else 0,
            n_rows_decision=int(decision.sum()) if decision is not None else 0,
            n_open=int((~decision).sum()) if decision is not None else 0,
            n_mql=int(comp.rows["mql"].sum()) if "mql" in comp.rows else 0,
            quadrants=comp.quadrants,
            quadrants_all=comp.quadrants_all,
            examples=[(label, comp.examples.get(key) or []) for key, label in QUADRANTS.items()],
            calibration=comp.calibration,
            sources=comp.sources,
            funnel=comp.funnel,
            funnel_kinds={c: "pct" for c in comp.funnel.columns if c not in ("source", "leads")},
            speed=comp.speed,
            handoff_speed=comp.handoff_speed,
            loop=comp.loop,
            loop_table=comp.loop.display if comp.loop is not None else None,
            intervals=comp.intervals,
            segments=comp.segments,
            accounts=comp.accounts,
            account_capacity=comp.account_capacity,
            account_engaged=comp.account_engaged,
            processing=comp.processing,
            excluded=excluded,
            learned_yaml=comp.learned_rules.to_yaml() if comp.learned_rules is not None else None,
            csv_name=csv_name,
            backtest=backtest_table(m.get("backtest")),
        )
    )


def backtest_table(backtest: dict | None) -> pd.DataFrame | None:
    """Per origin and pooled, a row per scorer (`leadscore.training.backtest.table_rows`; None
    without a backtest of two origins or more)."""
    if not backtest or len(backtest["origins"]) < 2:
        return None
    frame = pd.DataFrame(table_rows(backtest))
    frame["scorer"] = frame["scorer"].map(SCORERS)
    return frame


def _interval(r, metric: str) -> str:
    value = getattr(r, metric)
    if not np.isfinite(value):
        return "-"
    return f"{value:.3f} [{getattr(r, metric + '_low'):.3f}, {getattr(r, metric + '_high'):.3f}]"


def summary(comp: Comparison) -> dict:
    """The report's first words: which scorer to use and why (`lead`), and the figures
    behind it (`points`), each one sentence."""
    m, h = comp.meta, comp.headline.set_index("scorer")
    model = h.loc["model"]
    basis = m.get("verdict_basis") if comp.differences else None
    keep_rules = (
        does_not_beat_rules(basis["difference"], basis["where"], basis["metric"]) if basis else None
    )
    untrusted = [line for line in comp.verdict if line != keep_rules]
    n = f"{m['test_rows']:,} out-of-time rows ({m['test_leads']:,} leads, {m['test_positives']:,} won)"
    if untrusted:
        lead = (
            "Do not use this model's scores yet: "
            + "; ".join(untrusted)
            + (". Keep the points rules." if m["rules"] else ".")
        )
    elif m["rules"] is None:
        lead = (
            f"There are no points rules to compare with ({m['rules_absent']}). "
            f"The model ranks won leads above the others with a ROC AUC of {model.roc_auc:.3f} on {n}"
        )
        if "learned" in h.index:
            lead += f", against {h.loc['learned', 'roc_auc']:.3f} for points learned from the data"
        lead += "."
    elif basis:
        d, metric = basis["difference"], basis["metric"]
        where = "" if basis["where"] == "here" else f" {basis['where']}"
        figures = (
            f"On {n}, among the leads open on the same day, the model's ROC AUC is "
            f"{model.same_day_auc:.3f} against {h.loc['rules', 'same_day_auc']:.3f} for the "
            f"rules; pooled over every snapshot of the window, {model.roc_auc:.3f} against "
            f"{h.loc['rules', 'roc_auc']:.3f}"
            + (
                f" (there lead age alone already ranks at {h.loc['lead_age', 'roc_auc']:.3f})."
                if "lead_age" in h.index
                else "."
            )
            if np.isfinite(model.same_day_auc)
            else f"On {n}, the model's ROC AUC is {model.roc_auc:.3f} against "
            f"{h.loc['rules', 'roc_auc']:.3f} for the rules."
        )
        verdict = (
            f"the {metric} difference{where} is not surely above zero"
            if keep_rules
            else f"it ranks won leads higher than the points rules{where}"
        )
        lead = (
            ("Keep the points rules: " if keep_rules else "Use the model's grades to decide "
             "which leads go to sales: ")
            + f"{verdict} ({metric} difference {d[0]:+.3f}, 95 % interval "
            f"[{d[1]:+.3f}, {d[2]:+.3f}]). {figures}"
        )  # fmt: skip
    points = []
    if len(comp.capacity):
        c = comp.capacity.set_index("handed to sales")
        rules_row = c.iloc[0]
        model_row = c[c.index.str.startswith("model")].iloc[0]
        which = "every row counts" if comp.meta.get("deals_at_creation") else "without an open deal"
        points.append(
            f"Given as many leads as the rules hand to sales on each day ({rules_row['leads']:,.0f} "
            f"MQLs {which}), the model's pick among the leads open that day holds "
            f"{model_row['wins']:,.0f} wins "
            f"against {rules_row['wins']:,.0f} (win rate {model_row['win_rate']:.1%} against "
            f"{rules_row['win_rate']:.1%})."
        )
    g = comp.grades
    if len(g):
        parts = []
        for scorer in g["scorer"].unique():
            a = g[(g["scorer"] == scorer) & (g["grade"] == "A")].iloc[0]
            parts.append(
                f"the {'model' if scorer == 'model' else 'rules'}'{'s' if scorer == 'model' else ''} grade A holds "
                f"{a['share_of_all_wins']:.0%} of all wins in {a['rows']:,} rows "
                f"(win rate {a['win_rate']:.1%})"
                if np.isfinite(a["win_rate"])
                else ("the model has" if scorer == "model" else "the rules have")
                + " an empty grade A"
            )
        points.append(parts[0][0].upper() + "; ".join(parts)[1:] + ".")
    points.append(calibration_sentence(model.ece, comp.rows))
    if len(comp.speed):
        s = comp.speed.set_index("first_sales_touch")
        fast, late = s.loc[SPEED_BUCKETS[0][0]], s.loc[SPEED_BUCKETS[-1][0]]
        if fast["leads"] and late["leads"]:
            points.append(
                f"Speed to lead: leads first touched by sales within 5 minutes won at "
                f"{fast['win_rate']:.1%}, those touched after a day at {late['win_rate']:.1%} "
                f"({s.loc[NEVER, 'leads']:,} leads were never touched). This is a correlation: "
                "sales may call first the leads that look best."
            )
    points += [f"Caveat: {w}." for w in comp.warnings]
    return {"lead": lead, "points": points}


def figures(comp: Comparison) -> dict[str, str]:
    """Gains, lift, calibration and score distributions, as inline SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "path", "font.size": 9})
    figs = {}
    fig, ax = plt.subplots(figsize=(4.6, 3.6))
    for name, (x, c) in comp.gains.items():
        ax.plot(x, c, label=SCORERS[name], color=COLORS[name])
    ax.plot([0, 1], [0, 1], ls=":", color="grey", label="random")
    ax.set(xlabel="share of leads worked (best first)", ylabel="share of won deals captured",
           title="Gains")  # fmt: skip
    ax.legend(loc="lower right")
    figs["gains"] = svg(fig)

    fig, ax = plt.subplots(figsize=(4.6, 3.6))
    for name, g in comp.deciles.groupby("scorer", sort=False):
        ax.plot(g["decile"], g["lift"], marker="o", label=SCORERS[name], color=COLORS[name])
    ax.axhline(1, ls=":", color="grey")
    ax.set(xlabel="decile (1 = highest scores)", ylabel="lift (win rate / average)",
           title="Lift by decile", xticks=range(1, 11))  # fmt: skip
    ax.legend()
    figs["lift"] = svg(fig)

    fig, ax = plt.subplots(figsize=(4.6, 3.6))
    top = float(comp.calibration[["mean_predicted", "observed"]].to_numpy().max()) * 1.05
    for name, g in comp.calibration.groupby("scorer", sort=False):
        ax.plot(
            g["mean_predicted"], g["observed"], marker="o", label=SCORERS[name], color=COLORS[name]
        )
    ax.plot([0, top], [0, top], ls=":", color="grey", label="perfect")
    ax.set(xlabel="mean predicted probability", ylabel="observed win rate", title="Calibration")
    ax.legend()
    figs["calibration"] = svg(fig)

    rows = comp.rows
    won = rows["label"].to_numpy().astype(bool)
    panels = [("probability", "Model probability", np.linspace(0, 1, 41))]
    if "rule_score" in rows:
        panels.append(("rule_score", "Rule score (points)", np.arange(-0.5, 101.5, 2.5)))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.2), squeeze=False)
    for ax, (column, title, bins) in zip(axes[0], panels, strict=True):
        v = rows[column].to_numpy(dtype=float)
        ax.hist(v[~won], bins=bins, density=True, alpha=0.55, color="#888", label="not won")
        ax.hist(v[won], bins=bins, density=True, alpha=0.55, color="#2a9d4a", label="won")
        ax.set(title=title, ylabel="density")
        if column == "rule_score":
            ax.axvline(comp.meta["mql_threshold"], color="#d0701c", ls="--", label="MQL threshold")
        ax.legend()
    figs["distributions"] = svg(fig)
    return figs


CSV_COLUMNS = [
    "lead_id", "as_of", "segment", "probability", "p_low", "p_high", "review", "grade", "rule_score", "rule_grade", "mql", "label",
    "source", "score", "rule_probability", "revenue", "opportunity", "open_deal",
    "hand_off", "model_top_n", "model_top_n_all", "origin",
]  # fmt: skip


def write_report(comp: Comparison, out: str | Path) -> tuple[Path, Path]:
    """Write the HTML page and `<name>.csv` next to it; returns both paths."""
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise LeadscoreError(f"{out}: the report is an HTML file (give a path ending in .html)")
    csv_path = out.with_suffix(".csv")
    export = comp.rows.copy()
    if comp.backtest_rows is not None:  # every backtest row, with its origin (0: the newest)
        export["origin"] = 0
        export = pd.concat([export, comp.backtest_rows], ignore_index=True)
    cols = [c for c in CSV_COLUMNS if c in export] + [
        c for c in ("learned_score", "learned_probability", "lead_age_probability") if c in export
    ]
    page = render_html(comp, csv_path.name)
    write_page(out, page, csv_path, lambda path: write_csv(export[cols], path, ["as_of"]))
    return out, csv_path


def render_html(comp: Comparison, csv_name: str) -> str:
    """The page (`training/templates/compare.html.j2`)."""
    return render(comp, csv_name)
