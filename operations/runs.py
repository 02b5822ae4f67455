"""A recorded scoring run: the open pipeline scored (`leadscore.operations.pipeline`), each lead's
trend from the score history (`leadscore.operations.history`), the hand-off events against each
lead's latest earlier score (`leadscore.handoff.events`), and this run stored in the history,
last: the events are made durable first (`score_and_record`'s `before_record`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from leadscore.crm.dataset import Dataset
from leadscore.handoff.events import HandoffLine, handoff_events
from leadscore.operations.history import trends
from leadscore.operations.pipeline import PipelineScores, score_pipeline
from leadscore.scoring.model_ref import ModelRef
from leadscore.scoring.scorer import LeadScorer
from leadscore.stats.trend import TREND_RUNS


@dataclass
class ScoredRun:
    """One recorded run: its scores (COLUMNS, trend included) and its hand-off events."""

    scores: pd.DataFrame
    events: list[dict]


def score_and_record(
    dataset: Dataset,
    scorer: LeadScorer,
    model: ModelRef,
    as_of: pd.Timestamp | str | None = None,
    *,
    reasons: bool = True,
    history: Any = None,
    line: Any = None,
    progress: Callable[[int, int], None] | None = None,
    before_record: Callable[[ScoredRun], None] | None = None,
    scored: PipelineScores | None = None,
) -> ScoredRun:
    """score_pipeline, plus each lead's trend from the earlier runs in `history` (a
    ScoreHistory, or None for no history), this run stored there, and the hand-off events
    against each lead's latest earlier score (`line`: an events.HandoffLine; default MQL
    or grade A).

    `before_record(run)` is called with the run's scores and events before the history
    records the run: what must be durable before the history says the run happened (the
    events, in the outbox and the events file) is written there. If it fails, the history
    is not written, and the next run finds the same leads to hand off."""
    if scored is None:  # `scored`: the open pipeline scored by another engine (Spark)
        scored = score_pipeline(dataset, scorer, model, as_of, reasons=reasons, progress=progress)
    frame = scored.frame
    line = line if line is not None else HandoffLine()
    earlier = pd.DataFrame(columns=["lead_id", "as_of", "probability", "grade", "mql"])
    if history is not None and len(frame):
        earlier = history.read(
            frame["lead_id"].tolist(), before=frame["as_of"].iloc[0], last_runs=TREND_RUNS
        )
    frame["trend"] = trends(frame, earlier).to_numpy() if len(frame) else []
    events = handoff_events(
        frame, earlier.drop_duplicates("lead_id", keep="last"), line, reasons=scored.reasons
    )
    run = ScoredRun(frame, events)
    if before_record is not None:
        before_record(run)
    if history is not None:
        history.write_run(frame)
    return run
