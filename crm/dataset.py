"""A validated dataset: typed frames of leads and deals, the activity events out of core, and
the spec they were read with (`leadscore.crm.loading.load_dataset` builds one)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from leadscore.crm.activity_table import ActivityTable
from leadscore.crm.contract import DatasetSpec
from leadscore.crm.errors import LeadscoreError


@dataclass(frozen=True)
class Dataset:
    """A validated dataset: typed frames of leads and deals, the activity events out of core
    (`activity_table`), and the spec they were read with."""

    path: Path
    spec: DatasetSpec
    files: dict[str, str]
    leads: pd.DataFrame
    activity_table: ActivityTable
    deals: pd.DataFrame
    profile_columns: tuple[str, ...]
    dropped: dict[str, int] = field(default_factory=dict)
    # What sales did with each lead (`leadscore.crm.lead_status`), in time order per lead;
    # None when the export has no lead_status table. Never read by the feature engines.
    lead_status: pd.DataFrame | None = None

    @property
    def activities(self) -> pd.DataFrame:
        """Every activity as one pandas frame (lead_id, occurred_at, activity_type, value,
        campaign, extra columns). For small datasets and tests: the batch engines query
        `activity_table` and never build this."""
        return self.activity_table.frame(self.leads["lead_id"])

    def __post_init__(self) -> None:
        # The activity table points at leads by row: it must be the table of these leads.
        built_for = self.activity_table.lead_ids
        if len(self.activity_table) and built_for is not None:
            ids = self.leads["lead_id"]
            if not (built_for is ids or built_for.equals(ids)):
                raise ValueError(
                    "the activity table was built for other leads: use Dataset.with_tables"
                )

    def with_tables(
        self,
        *,
        leads: pd.DataFrame | None = None,
        activities: pd.DataFrame | None = None,
        deals: pd.DataFrame | None = None,
    ) -> Dataset:
        """The same dataset with other (normalised) tables; the activity table is rebuilt for
        the new leads when they change."""
        from dataclasses import replace

        new_leads = self.leads if leads is None else leads
        if activities is None and leads is not None:
            activities = self.activities
        table = (
            self.activity_table
            if activities is None
            else ActivityTable.of_frame(activities, new_leads["lead_id"])
        )
        return replace(
            self,
            leads=new_leads,
            activity_table=table,
            deals=self.deals if deals is None else deals,
        )

    @property
    def is_flat(self) -> bool:
        return self.spec.is_flat

    @property
    def label_column(self) -> str | None:
        return self.spec.label.column if self.spec.label else None

    @property
    def data_start(self) -> pd.Timestamp:
        return self.leads["created_at"].min()

    @property
    def data_end(self) -> pd.Timestamp:
        """The latest timestamp anywhere in the dataset: where censoring starts."""
        if self.activity_table.unread:
            raise LeadscoreError(
                f"{self.path}: the activities were left to another engine; its data end is "
                "the latest of theirs and data_end_without_activities()"
            )
        end = self.data_end_without_activities()
        if self.activity_table.t_max_us is not None:
            end = max(end, pd.Timestamp(self.activity_table.t_max_us, unit="us", tz="UTC"))
        return end

    def data_end_without_activities(self) -> pd.Timestamp:
        """The latest timestamp of the leads and deals."""
        stamps = [self.leads["created_at"].max()]
        if len(self.deals):
            stamps.append(self.deals["created_at"].max())
            closed = self.deals["closed_at"].max()
            if pd.notna(closed):
                stamps.append(closed)
        return max(stamps)
