"""Everything fitted on the calibration rows, in one place for the evaluated model (its
validation rows) and the model that ships (its out-of-time calibration windows): the
calibrator, the per-segment corrections when segments are configured, and the Venn-Abers
interval of the final probability."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.crm.errors import LeadscoreError
from leadscore.features.definitions import FeatureSpec
from leadscore.scoring.scorer import interval_scores
from leadscore.stats.calibration import Calibrator, choose_calibrator
from leadscore.stats.pooling import SegmentCalibration, fit_segment_calibration
from leadscore.stats.venn_abers import VennAbers, fit_venn_abers
from leadscore.training.config import TrainConfig


@dataclass(frozen=True)
class Calibration:
    calibrator: Calibrator
    losses: dict[str, float]  # cross-fitted log loss of each candidate method
    segments: SegmentCalibration | None
    interval: VennAbers

    def probability(self, raw: np.ndarray, segments: pd.Series | None = None) -> np.ndarray:
        """The calibrated probabilities of raw scores (each row's segment value when the
        calibration is per segment), as the scorer computes them."""
        return calibrated(self.calibrator, self.segments, raw, segments)


def segment_values(segments: pd.Series) -> list:
    """Each row's segment value as the segment calibration takes it (missing: None)."""
    return segments.astype(object).where(segments.notna(), None).tolist()


def calibrated(
    calibrator: Calibrator,
    corrections: SegmentCalibration | None,
    raw: np.ndarray,
    segments: pd.Series | None = None,
) -> np.ndarray:
    """Probabilities of raw scores by a calibrator and, when it has them, its per-segment
    corrections (`segments`: each row's segment value)."""
    p = calibrator(raw)
    return p if corrections is None else corrections.adjust(p, segment_values(segments))


def segment_column(config: TrainConfig, spec: FeatureSpec, excluded: list[str]) -> str | None:
    """The configured segment column, checked: a text column of the features that the
    leakage audit let the fitted things use. None when no segments are configured."""
    if config.segments is None:
        return None
    column = config.segments.column
    if column not in spec.categorical:
        have = ", ".join(spec.categorical) or "none"
        raise LeadscoreError(
            f"segments.column {column!r}: not a text column of this dataset's leads "
            f"(text columns: {have})"
        )
    if column in excluded:
        raise LeadscoreError(
            f"segments.column {column!r}: the leakage audit excluded it (see the training "
            "warnings); a calibration may not use it either"
        )
    return column


def fit_calibration(
    raw: np.ndarray,
    y: np.ndarray,
    config: TrainConfig,
    segments: pd.Series | None = None,
) -> Calibration:
    """The calibration stack on calibration rows (raw scores, labels, and each row's segment
    when `segments` are configured)."""
    y = np.asarray(y).astype(int)
    calibrator, losses = choose_calibrator(raw, y, config.calibration, config.seed)
    p = calibrator(raw)
    fitted = None
    if segments is not None and config.segments is not None:
        values = segment_values(segments)
        fitted = fit_segment_calibration(
            p, y, values, config.segments.column, calibrator.low, calibrator.high
        )
        p = fitted.adjust(p, values)
    interval = fit_venn_abers(
        interval_scores(raw, p, fitted is not None), y, calibrator.low, calibrator.high
    )
    return Calibration(calibrator, losses, fitted, interval)
