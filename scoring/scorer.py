"""The fitted lead scorer at run time: encoding, LightGBM, calibration, grades and reasons.

Both `training` (which builds it) and `serving` (which must not import `training`) run it:
one prediction path for batch scoring, the MLflow model and the HTTP endpoint. NumPy only
per call: no pandas on the online path.

`LeadScorer` keeps this module: a saved scorer is JSON and LightGBM's text naming no class,
but Spark's executors unpickle scorers by this path. Its parts live next to it: the model
matrix (`encoding`), the saved folder (`scorer_files`), segment champions' rows
(`champions`), an account scored from its contacts' payloads
(`accounts.score_account_payloads`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from leadscore.crm.errors import LeadscoreError
from leadscore.features.carried import Carried
from leadscore.features.definitions import FeatureSpec
from leadscore.features.online import OnlineBatch, OnlineFeaturizer, lead_as_ofs
from leadscore.rules.scorer import RuleScorer, payload_rule_inputs
from leadscore.scoring.accounts import AccountScorer, score_account_payloads
from leadscore.scoring.champions import route_to_champions
from leadscore.scoring.encoding import category_codes, encode_batch, encode_frame
from leadscore.scoring.grades import Grades
from leadscore.scoring.model_ref import ModelRef
from leadscore.scoring.reasons import feature_groups, group_features, reason_columns
from leadscore.scoring.record import ScoreRecord, ScoringBatch
from leadscore.scoring.scorer_files import read_scorer_folder, write_scorer_folder
from leadscore.scoring.treeshap import TreeShap
from leadscore.stats.calibration import Calibrator, logit
from leadscore.stats.life_table import AgeHazard
from leadscore.stats.pooling import SegmentCalibration
from leadscore.stats.venn_abers import VennAbers, contain


def _threads(rows: int) -> int:
    """One thread for a few rows (OpenMP start-up costs more than it saves there); all
    cores (0: LightGBM's default) for batches."""
    return 1 if rows <= 64 else 0


def interval_scores(raw: np.ndarray, p: np.ndarray, segmented: bool) -> np.ndarray:
    """What the Venn-Abers interval is a function of: the booster's raw score, or, with
    per-segment calibration, the logit of the segment-calibrated probability (a segment's
    correction moves its leads among the others)."""
    return logit(p) if segmented else raw


class LeadScorer:
    """A trained model and everything needed to score raw leads the way it was trained."""

    def __init__(
        self,
        spec: FeatureSpec,
        booster: lgb.Booster,
        features: list[str],
        categories: dict[str, list[str]],
        calibrator: Calibrator,
        grades: Grades,
        info: dict[str, Any] | None = None,
        rules: RuleScorer | None = None,
        interval: VennAbers | None = None,
        segments: SegmentCalibration | None = None,
        *,
        accounts: AccountScorer | None = None,
        evaluated: LeadScorer | None = None,
        champion_column: str | None = None,
        segment_champions: dict[str, LeadScorer] | None = None,
    ) -> None:
        self.spec = spec
        # Per-segment corrections of the calibration (None: one calibration for all).
        self.segments = segments
        # The Venn-Abers interval of the calibration rows (None: a model saved before it).
        self.interval = interval
        self.rules = rules  # marketing's points rules, scored next to the model
        self.booster = booster
        self.features = list(features)
        self.categories = {c: list(v) for c, v in categories.items()}
        self.calibrator = calibrator
        self.grades = grades
        self.info = dict(info or {})
        # The evaluated model, when this one is the refit that ships (`leadscore.training.refit`):
        # held-out rows are scored with it, never with a model that has seen them.
        self.evaluated = evaluated
        # The account model trained with it (None: no accounts in the data, or switched off).
        self.accounts = accounts
        # Segment champions (`leadscore.training.segment_champions`): a segment whose own model beat
        # this one on its rows is served by it; value of `champion_column` -> its scorer.
        self.champion_column = champion_column
        self.segment_champions: dict[str, LeadScorer] = dict(segment_champions or {})
        self._codes = category_codes(self.categories)
        self._groups = feature_groups(self.features, spec)
        self._featurizer = OnlineFeaturizer(spec)
        self._behaviour_index = {name: j for j, name in enumerate(spec.behaviour_names)}
        # Contributions per feature -> per group (original column or activity type) in one
        # matrix product.
        self._group_names = list(dict.fromkeys(self._groups))
        self._group_matrix = np.zeros((len(self.features), len(self._group_names)))
        for j, group in enumerate(self._groups):
            self._group_matrix[j, self._group_names.index(group)] = 1.0
        self._group_members = group_features(spec)  # the features that word each group

    # --- encoding --------------------------------------------------------------------

    def encode_frame(self, df: pd.DataFrame) -> np.ndarray:
        return encode_frame(df, self.features, self.categories)

    # --- prediction ------------------------------------------------------------------

    def raw_scores(self, x: np.ndarray) -> np.ndarray:
        return self.booster.predict(x, raw_score=True, num_threads=_threads(len(x)))

    def calibrate(self, raw: np.ndarray, segments: Sequence | None = None) -> np.ndarray:
        """Probabilities of raw scores: the calibrator, then, for a model calibrated per
        segment, each row's segment correction (`segments`: each row's segment value)."""
        p = self.calibrator(raw)
        if self.segments is None:
            return p
        if segments is None:
            raise LeadscoreError(
                f"this model is calibrated per {self.segments.column}: give each row's value"
            )
        return self.segments.adjust(p, segments)

    def predict_proba(self, x: np.ndarray, segments: Sequence | None = None) -> np.ndarray:
        """Calibrated conversion probabilities (`segments` as for `calibrate`)."""
        return self.calibrate(self.raw_scores(x), segments)

    def predict_interval(
        self, x: np.ndarray, segments: Sequence | None = None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Calibrated probabilities and their Venn-Abers intervals (p, p_low, p_high; the
        interval is None for a model saved without one). Each interval contains its p."""
        raw = self.raw_scores(x)
        p = self.calibrate(raw, segments)
        if self.interval is None:
            return p, None, None
        scores = interval_scores(raw, p, self.segments is not None)
        return (p, *contain(p, *self.interval(scores)))

    @property
    def review_width(self) -> float | None:
        """An interval wider than this sends the lead to a person instead of an automatic
        hand-off (`interval_review_width` of the training config; None: never)."""
        width = self.info.get("interval_review_width")
        return None if width is None else float(width)

    @property
    def explainer(self) -> TreeShap | None:
        """Our vectorised TreeSHAP for this booster (built on first use, about half a second
        for 1,500 leaves), or None when the model is beyond it (LightGBM's is used then)."""
        if not hasattr(self, "_explainer"):
            self._explainer = TreeShap.build(self.booster)
        return self._explainer

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Exact TreeSHAP contributions in raw-score space: (n, features + 1), base value
        last. The same values as LightGBM's pred_contrib, 3-5 times faster on a batch."""
        if self.explainer is not None:
            return self.explainer(x)
        return self.booster.predict(x, pred_contrib=True, num_threads=_threads(len(x)))

    def group_contributions(self, x: np.ndarray) -> np.ndarray:
        """TreeSHAP contributions summed per reason group: (n, groups), no base value."""
        return self.contributions(x)[:, :-1] @ self._group_matrix

    def encode_batch(self, batch: OnlineBatch) -> np.ndarray:
        """Model matrix from an OnlineBatch (no pandas, no per-feature dicts)."""
        return encode_batch(batch, self.features, self._codes, self._behaviour_index)

    # --- the one scoring call and its two adapters --------------------------------

    def frame_batch(
        self,
        df: pd.DataFrame,
        *,
        rules_x: Mapping[str, np.ndarray] | None = None,
        x: np.ndarray | None = None,
    ) -> ScoringBatch:
        """A batch from rows of the batch engine (a training or scoring set): `rules_x` the
        rules' inputs for the same rows (`leadscore.rules.scorer.batch_rule_inputs`), `x` the rows
        already encoded when the caller has them."""
        x = self.encode_frame(df) if x is None else x
        ids = df["lead_id"].astype("str").to_numpy(dtype=object)
        age = df["lead_age_days"].to_numpy(dtype=np.float64) if "lead_age_days" in df else None
        return ScoringBatch(ids, x, lambda name: df[name].tolist(), rules_x, age)

    def payload_batch(
        self,
        leads: Sequence[Mapping[str, Any]],
        as_of: Any,
        *,
        strict: bool = False,
        carried: Sequence[Carried | None] | None = None,
    ) -> ScoringBatch:
        """A batch from raw lead payloads at `as_of` (one value for all, one per lead, or
        None for each lead's own `as_of` field). A PayloadError carries the lead's position
        (`exc.path` is `leads[i].field`); with `strict`, events after as_of are errors rather
        than left out. The rules read the same parsed events as the features. `carried`:
        per lead, its folded older activities (the online lead state's; `leadscore.features.carried`)."""
        as_ofs = lead_as_ofs(leads, as_of)
        batch = self._featurizer.batch(leads, as_ofs, strict=strict, carried=carried)
        rules_x = None
        if self.rules is not None:
            parsed = (batch.as_of_us, batch.events) if batch.events is not None else None
            rules_x = payload_rule_inputs(
                self.rules.config, leads, as_ofs, strict=strict, parsed=parsed, carried=carried
            )
        ids = np.array([lead.get("lead_id") for lead in leads], dtype=object)
        age_column = self._behaviour_index.get("lead_age_days")
        age = batch.behaviour[:, age_column] if age_column is not None else None
        return ScoringBatch(
            ids, self.encode_batch(batch), lambda name: batch.column(name, self.spec), rules_x, age
        )

    def score(
        self, batch: ScoringBatch, *, reasons: int = 3, model: ModelRef | None = None
    ) -> ScoreRecord:
        """The one scoring call: probability, score and grade; the top `reasons` worded
        reasons each way (0: none); and, with rules attached and their inputs in the batch,
        the rule score, rule grade, MQL flag and (once fitted) rule probability. One
        vectorised pass for the whole batch."""
        segments = batch.column(self.segments.column) if self.segments is not None else None
        p, low, high = self.predict_interval(batch.x, segments)
        record = ScoreRecord(batch.lead_id, p, self.grades(p), model=model)
        record.beyond_trained_age = self.beyond_trained_age(batch.age_days, len(batch))
        if batch.age_days is not None and self.age_hazard.oldest is not None:
            # Calibrated by age against the life table of what it learned from, and past
            # the oldest supported age along the history's age hazard (no extrapolation).
            factor = self.age_hazard.factor(batch.age_days)
            p = np.minimum(p * factor, self.calibrator.high)
            record.probability, record.grade = p, self.grades(p)
            if low is not None:
                low, high = contain(p, low * factor, np.minimum(high * factor, 1.0))
        if low is not None:
            record.p_low, record.p_high = low, high
            width = self.review_width
            record.review = (
                high - low > width + 1e-12 if width is not None else np.zeros(len(p), bool)
            )
        if reasons:
            totals = self.group_contributions(batch.x)
            record.reason_columns = reason_columns(
                totals,
                self._group_names,
                batch.column,
                self.spec,
                k=reasons,
                members=self._group_members,
            )
        if self.rules is not None and batch.rules_x is not None:
            (
                record.rule_score,
                record.rule_grade,
                record.mql,
                record.rule_probability,
            ) = self.rules.score_columns(batch.rules_x)
        if self.segment_champions:
            route_to_champions(self, batch, record, reasons)
        return record

    @property
    def age_hazard(self) -> AgeHazard:
        """The life table of the snapshots it learned from, its calibration by age against
        it and the hazard's decline past their oldest supported age
        (`leadscore.stats.life_table`); a model trained before it has an empty one (its
        scores are its own)."""
        if not hasattr(self, "_age_hazard"):
            stored = self.info.get("age_hazard")
            self._age_hazard = AgeHazard.from_dict(stored) if stored else AgeHazard.empty()
        return self._age_hazard

    @property
    def oldest_trained_age_days(self) -> float | None:
        """The oldest lead age the model learned from enough matured snapshots of (the
        life table's oldest supported age; for a model trained before the life table, the
        oldest snapshot age of its spec). None without a lead age."""
        if not self.spec.history:
            return None
        oldest = self.age_hazard.oldest
        if oldest is not None:
            return oldest
        ages = self.spec.snapshot_ages_days
        return float(max(ages)) if ages else None

    def beyond_trained_age(self, age_days: np.ndarray | None, n: int) -> np.ndarray:
        """Per lead, whether it is older than the oldest age the model learned from: its
        probability then follows the history's age hazard (`age_hazard`), and it is
        flagged so, never silently."""
        oldest = self.oldest_trained_age_days
        if age_days is None or oldest is None:
            return np.zeros(n, dtype=bool)
        return np.asarray(age_days, dtype=np.float64) > oldest + 1e-9

    def score_leads(
        self,
        leads: Sequence[Mapping[str, Any]],
        as_of: Any,
        *,
        reasons: int = 3,
        strict: bool = False,
    ) -> list[dict[str, Any]]:
        """`score` of the payload batch, one dict per lead (the endpoint's shape)."""
        return self.score(self.payload_batch(leads, as_of, strict=strict), reasons=reasons).rows()

    def score_account(
        self,
        account_id: str,
        leads: Sequence[Mapping[str, Any]],
        as_of: Any,
        *,
        reasons: int = 3,
        strict: bool = False,
    ) -> dict[str, Any]:
        """The account score of one account from its contacts' payloads at one `as_of`: the
        endpoint's `POST /accounts/score`. Contacts closed (a won or lost deal closed at or
        before as_of) are not in play, as in batch scoring; a LeadscoreError when the model
        has no account model or no contact is open."""
        return score_account_payloads(
            self.accounts,
            self._featurizer,
            self.spec,
            account_id,
            leads,
            as_of,
            reasons=reasons,
            strict=strict,
        )

    # The parts a scorer carries next to its fitted model, which training packs in after the
    # fit (the rules are calibrated on the model's validation rows, the account model is
    # fitted next to it, ...).
    PARTS = frozenset(
        {"rules", "accounts", "evaluated", "champion_column", "segment_champions", "info"}
    )

    def with_parts(self, **parts: Any) -> LeadScorer:
        """A new scorer: this one's fitted model with other parts (`PARTS`: rules, accounts,
        evaluated, segment champions, info). This one is left as it is: a scorer is complete
        when built, never finished by assignment."""
        unknown = set(parts) - self.PARTS
        if unknown:
            raise TypeError(f"not a part of a scorer: {', '.join(sorted(unknown))}")
        new = copy.copy(self)
        for name, value in parts.items():
            setattr(new, name, dict(value) if name in {"info", "segment_champions"} else value)
        return new

    @property
    def for_evaluation(self) -> LeadScorer:
        """The scorer that may score held-out rows: the evaluated model when this is the
        refit that ships (it has seen every matured row), else this one."""
        return self.evaluated if self.evaluated is not None else self

    # --- persistence -----------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        """Write this scorer's folder (`leadscore.scoring.scorer_files`)."""
        return write_scorer_folder(self, folder)

    @classmethod
    def load(cls, folder: str | Path) -> LeadScorer:
        """Read a scorer's folder (`leadscore.scoring.scorer_files`)."""
        return read_scorer_folder(cls, folder)
