"""The monitoring report as a self-contained HTML page (a Jinja2 template, SVG plots inline)
and a JSON summary for schedulers, both written whole or not at all; and its MLflow run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.crm.csv_out import json_ready
from leadscore.crm.errors import LeadscoreError
from leadscore.operations.drift import MATERIAL_PSI, STRONG_PSI
from leadscore.operations.monitor import MonitorReport
from leadscore.pages.html import CSS, environment, svg, table, write_page

TEMPLATES = Path(__file__).parent / "templates"
EXPERIMENT = "leadscore-monitoring"


def _figures(report: MonitorReport) -> tuple[list[str], list[str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "path", "font.size": 9})
    drift_figs = []
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    bins = np.linspace(
        0, max(0.05, float(np.quantile(report.score_samples["reference"], 0.995))), 30
    )
    for name, color in (("reference", "#888888"), ("current", "#1f5fa8")):
        ax.hist(report.score_samples[name], bins=bins, density=True, histtype="step", lw=1.6,
                color=color, label=f"{name} ({len(report.score_samples[name]):,})")  # fmt: skip
    ax.set(xlabel="predicted probability", ylabel="density", title="Score distribution")
    ax.legend()
    drift_figs.append(svg(fig))

    ranked = sorted(report.drift, key=lambda d: -d.psi)[:15][::-1]
    fig, ax = plt.subplots(figsize=(5.4, 0.28 * len(ranked) + 1.2))
    colors = {"ok": "#9bb7d4", "drift": "#e8b458", "strong drift": "#c0392b"}
    y = np.arange(len(ranked))
    ax.barh(y, [d.psi for d in ranked], color=[colors[d.status] for d in ranked])
    ax.scatter([max(d.threshold, MATERIAL_PSI) for d in ranked], y, marker="|", s=120,
               color="black", label="flagged beyond")  # fmt: skip
    ax.set_yticks(y, [d.name for d in ranked])
    ax.set(xlabel="PSI", title="Largest drifts (bar: PSI; mark: where a flag starts)")
    ax.legend(loc="lower right")
    drift_figs.append(svg(fig))

    calibration_figs = []
    if report.matured is not None:
        m = report.matured.by_decile
        fig, ax = plt.subplots(figsize=(4.2, 3.6))
        top = max(float(m["predicted"].max()), float(m["actual"].max()), 0.01) * 1.1
        ax.plot([0, top], [0, top], ls=":", color="grey", label="perfect")
        ax.plot(m["predicted"], m["actual"], marker="o", color="#1f5fa8", label="deciles")
        ax.set(xlabel="predicted", ylabel="won within the horizon", title="Calibration (matured)")
        ax.legend()
        calibration_figs.append(svg(fig))
    return drift_figs, calibration_figs


def render(report: MonitorReport) -> str:
    env = environment(TEMPLATES)
    drift_figs, calibration_figs = _figures(report)
    drift = pd.DataFrame(
        [
            {
                "feature": d.name,
                "kind": d.kind,
                "PSI": d.psi,
                "noise": d.threshold,
                "status": d.status,
                "top bins (reference -> current)": _top_bins(d.bins),
                "_flag": d.status != "ok",
            }
            for d in sorted(report.drift, key=lambda d: -d.psi)
        ]
    )
    matured = None
    if report.matured is not None:
        m = report.matured
        matured = {
            "leads": m.leads,
            "as_of": m.as_of.date().isoformat(),
            "wins": m.wins,
            "expected": m.expected,
            "ratio": m.wins / m.expected if m.expected else float("nan"),
            "z": m.z,
            "ece": m.ece,
            "ece_low": m.ece_interval[0],
            "ece_high": m.ece_interval[1],
            "roc_auc": m.roc_auc,
        }
    rates = {"predicted": "pct", "actual": "pct", "expected_wins": "count"}
    sources = None
    if report.sources is not None and len(report.sources):
        sources = table(
            report.sources,
            {"reference_rate": "pct", "matured_rate": "pct", "p_value": ""},
            flag="shifted",
        )
    return env.get_template("monitor.html.j2").render(
        css=CSS,
        model=report.model,
        as_of=report.as_of.isoformat(),
        reference_as_of=report.reference_as_of.isoformat(),
        n_current=report.n_current,
        n_reference=report.n_reference,
        tests=report.tests,
        alpha=report.alpha,
        verdict=report.verdict,
        reasons=report.reasons,
        notes=report.notes,
        material=MATERIAL_PSI,
        strong=STRONG_PSI,
        drift_figures=drift_figs,
        drift_table=table(drift, flag="_flag"),
        matured=matured,
        calibration_figures=calibration_figs,
        by_grade=table(report.matured.by_grade, rates) if report.matured else "",
        by_decile=table(report.matured.by_decile, rates) if report.matured else "",
        by_age=table(
            report.matured.by_age.assign(_off=~report.matured.by_age["holds"]),
            {"expected_wins": "count", "wins": "count", "low": "count", "high": "count"},
            flag="_off",
        )
        if report.matured is not None and len(report.matured.by_age)
        else "",
        sources=sources,
        loop=report.loop,
        loop_table=report.loop.display if report.loop is not None else None,
    )


def _top_bins(bins: pd.DataFrame, k: int = 3) -> str:
    moved = bins.assign(gap=(bins["current"] - bins["reference"]).abs()).nlargest(k, "gap")
    return "; ".join(f"{r.bin}: {r.reference:.0%} -> {r.current:.0%}" for r in moved.itertuples())


def summary(report: MonitorReport) -> dict:
    """What a scheduler reads: the verdict, its reasons, the figures."""
    return {
        "verdict": report.verdict,
        "reasons": report.reasons,
        "notes": report.notes,
        "model": {"name": report.model.name, "version": report.model.version},
        "as_of": report.as_of.isoformat(),
        "reference_as_of": report.reference_as_of.isoformat(),
        "alpha_per_test": report.alpha,
        "tests": report.tests,
        "drift": [
            {
                "name": d.name,
                "kind": d.kind,
                "psi": d.psi,
                "threshold": d.threshold,
                "status": d.status,
            }  # fmt: skip
            for d in report.drift
        ],
        "metrics": report.metrics(),
        "matured_by_age": report.matured.by_age.to_dict("records")
        if report.matured is not None
        else [],
        **({"loop": _loop_summary(report.loop)} if report.loop is not None else {}),
    }


def _loop_summary(loop) -> dict:
    """The hand-off loop's KPIs by lever and the rejection findings, as in `kpis --json`."""
    from leadscore.handoff.kpis import ALL, records

    rows = records(loop.table)
    return {
        "from": loop.loop.start.isoformat(),
        "to": loop.loop.end.isoformat(),
        "rows": [r for r in rows if r[loop.by] != ALL],
        "overall": next(r for r in rows if r[loop.by] == ALL),
        "findings": loop.rejections.findings,
    }


def write_monitor(report: MonitorReport, out: str | Path) -> tuple[Path, Path]:
    """The page and `<name>.json` next to it; returns both paths."""
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise LeadscoreError(f"--out {out}: the monitoring report is an HTML file (.html)")
    json_path = out.with_suffix(".json")
    text = json.dumps(json_ready(summary(report)), indent=2, allow_nan=False)
    write_page(out, render(report), json_path, lambda path: path.write_text(text))
    return out, json_path


def log_monitor(report: MonitorReport, html_path: Path, json_path: Path) -> str:
    """One MLflow run in the monitoring experiment: the figures as metrics, the verdict as a
    tag, the page and the summary as artifacts. Returns the run id."""
    import mlflow

    from leadscore.scoring.mlflow_runs import start_run

    name = f"monitor {report.model.name} v{report.model.version} {report.as_of.date()}"
    with start_run(EXPERIMENT, run_name=name) as run:
        mlflow.set_tags(
            {
                "verdict": report.verdict,
                "model_name": report.model.name,
                "model_version": report.model.version,
                "as_of": report.as_of.isoformat(),
                "reference_as_of": report.reference_as_of.isoformat(),
                "mlflow.note.content": f"**{report.verdict}**: " + "; ".join(report.reasons),
            }
        )
        mlflow.log_metrics(report.metrics())
        mlflow.log_artifact(str(html_path))
        mlflow.log_artifact(str(json_path))
    return run.info.run_id
