"""Load a dataset folder, normalise its types and validate it against the data contract.

A dataset is a folder with `leads`, optional `activities`, `deals` and `lead_status` (each
`.csv` or `.parquet`) and an optional `dataset.yaml`. Every violation raises a `DatasetError` naming
the file, the column and the first offending rows; nothing is returned half-checked.

The parts it calls: the table files read (`table_files`), each table checked against the
contract (`validation`, cell by cell in `cells`), the activity export checked in batches
(`activity_export`), the result (`dataset.Dataset`).
"""

from __future__ import annotations

from pathlib import Path

from leadscore.crm.activity_export import load_activities
from leadscore.crm.activity_table import ActivityTable
from leadscore.crm.contract import TABLES, load_dataset_spec
from leadscore.crm.dataset import Dataset
from leadscore.crm.errors import DatasetError
from leadscore.crm.lead_status import normalise_lead_status, sort_status
from leadscore.crm.table_files import find_table, read_table
from leadscore.crm.validation import check_early, empty_deals, normalise_deals, normalise_leads


def load_dataset(
    path: str | Path, *, early_events: str | None = None, activities: bool = True
) -> Dataset:
    """Read, normalise and validate the dataset folder at `path`.

    Args:
        path: the dataset folder.
        early_events: "error" or "drop" for activities/deals dated before their lead was
            created; overrides `early_events` of dataset.yaml when given.
        activities: False to leave the activity export unread, for an engine that reads
            and checks it itself (`leadscore.features.spark_engine`); `activity_table` is then empty
            and `unread`.
    """
    root = Path(path)
    if not root.is_dir():
        raise DatasetError(
            str(root),
            "dataset folder not found",
            expected="a folder holding leads.csv or leads.parquet",
        )
    spec = load_dataset_spec(root / "dataset.yaml")
    if early_events is not None:
        spec = spec.model_copy(update={"early_events": early_events})

    files = {name: find_table(root, name) for name in TABLES}
    if files["leads"] is None:
        raise DatasetError(str(root), "no leads table", expected="leads.csv or leads.parquet")
    if spec.is_flat:
        for name in ("activities", "deals", "lead_status"):
            if files[name] is not None:
                raise DatasetError(
                    files[name].name,
                    "a flat dataset (dataset.yaml declares a label column) cannot also have "
                    f"{name}",
                    expected="either a label column or a history (activities, deals, lead_status), not both",
                )

    leads_file = files["leads"].name
    leads, profile_columns = normalise_leads(read_table(files["leads"]), leads_file, spec)
    dropped: dict[str, int] = {}

    if files["activities"] is not None and not activities:
        table = ActivityTable(unread=True)
    elif files["activities"] is not None:
        table, n = load_activities(files["activities"], leads, spec.early_events)
        if n:
            dropped["activities_before_lead_created"] = n
    else:
        table = ActivityTable()

    if files["deals"] is not None:
        raw_deals = read_table(files["deals"])
        deals, lead_rows = normalise_deals(raw_deals, files["deals"].name, leads)
        deals, n, _ = check_early(
            deals, lead_rows, "created_at", files["deals"].name, leads, spec.early_events
        )
        if n:
            dropped["deals_before_lead_created"] = n
    else:
        deals = empty_deals()

    lead_status = None
    if files["lead_status"] is not None:
        name = files["lead_status"].name
        lead_status, lead_rows = normalise_lead_status(
            read_table(files["lead_status"]), name, leads, spec
        )
        lead_status, n, _ = check_early(
            lead_status, lead_rows, "changed_at", name, leads, spec.early_events
        )
        if n:
            dropped["statuses_before_lead_created"] = n
        lead_status = sort_status(lead_status)

    return Dataset(
        path=root,
        spec=spec,
        files={k: v.name for k, v in files.items() if v is not None},
        leads=leads,
        activity_table=table,
        deals=deals,
        profile_columns=profile_columns,
        dropped=dropped,
        lead_status=lead_status,
    )
