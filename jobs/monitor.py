"""The monitoring job: drift of every feature and of the score since training, calibration
on matured outcomes, conversion shifts by source, and a verdict (ok, watch, retrain); the
page, its JSON, and an MLflow run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leadscore.crm.errors import LeadscoreError
from leadscore.jobs.data import load
from leadscore.jobs.progress import Progress, Recorded
from leadscore.jobs.score import parse_time
from leadscore.scoring.model_ref import DEFAULT_MODEL_URI


@dataclass(frozen=True)
class MonitorRequest:
    """data: the CRM export as of today; model: the model reference; out: the HTML page
    (its JSON next to it); as_of / reference_as_of: ISO-8601 times (None: the data's end,
    and when the model's training data ends on the same weekday); log_mlflow: also log a
    run to the leadscore-monitoring experiment."""

    data: Path
    out: Path = Path("reports/monitor.html")
    model: str = DEFAULT_MODEL_URI
    as_of: str | None = None
    reference_as_of: str | None = None
    log_mlflow: bool = True


@dataclass(frozen=True)
class Monitored:
    report: Any  # leadscore.operations.monitor.MonitorReport
    html_path: Path
    json_path: Path
    run_id: str | None  # the MLflow run (None: not logged)


def monitor(request: MonitorRequest, progress: Progress | None = None) -> Monitored:
    """Monitor the model's open pipeline against what it was trained on."""
    from leadscore.operations.monitor import monitor as run_monitor
    from leadscore.operations.monitor_page import log_monitor, write_monitor
    from leadscore.scoring.mlflow_model import load_pinned_scorer

    progress = progress or Recorded()
    out_path = Path(request.out)
    if out_path.suffix.lower() not in (".html", ".htm"):
        raise LeadscoreError(f"--out {out_path}: the monitoring report is an HTML file (.html)")
    when = parse_time(request.as_of, "--as-of")
    reference = parse_time(request.reference_as_of, "--reference-as-of")
    scorer, which = load_pinned_scorer(request.model)
    ds = load(request.data, progress)
    with progress.step("monitoring: the pipeline now, then, and one horizon ago"):
        report = run_monitor(ds, scorer, which, as_of=when, reference_as_of=reference)
    if ds.lead_status is not None:  # sales' decisions: the hand-off loop's KPIs too
        report.loop = loop_kpis(ds, scorer, report.as_of, request.data, progress)
    html_path, json_path = write_monitor(report, out_path)
    run_id = log_monitor(report, html_path, json_path) if request.log_mlflow else None
    return Monitored(report, html_path, json_path, run_id)


# The monitor's hand-off loop: the leads created in these many days up to its as_of.
LOOP_DAYS = 90


def loop_kpis(ds, scorer, as_of, data: Path, progress: Progress):
    """The KPIs by lever and the rejected leads of the last LOOP_DAYS before `as_of`."""
    import pandas as pd

    from leadscore.jobs.loop import LoopRequest, kpis

    end = pd.Timestamp(as_of)
    start = max(end - pd.Timedelta(days=LOOP_DAYS), ds.data_start)
    request = LoopRequest(data=data, start=start.isoformat(), end=end.isoformat())
    return kpis(request, progress=progress, dataset=ds, scorer=scorer)
