"""CRM simulator: writes a dataset in the data contract plus `truth.csv` (the latent state).

Leads are generated in chunks, each with its own random stream spawned from the seed, and
appended to Parquet row groups (or CSV), so a million leads fit in bounded memory and the
same seed gives the same bytes. See `leadscore.simulation.funnel` for the generative model.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from leadscore.crm.folders import staged_folder
from leadscore.simulation.chunks import generate_chunks
from leadscore.simulation.config import SimulationConfig
from leadscore.simulation.files import DatasetWriters


def simulate(config: SimulationConfig, out_dir: str | Path, *, overwrite: bool = False) -> dict:
    """Simulate `config.n_leads` leads into `out_dir`; return counts of what was written.

    The folder is written under a temporary name and renamed at the end, so an interrupted
    run leaves nothing that looks like a dataset.
    """
    counts = {"leads": 0, "activities": 0, "deals": 0}
    with staged_folder(out_dir, overwrite=overwrite) as tmp:
        with DatasetWriters(tmp, config.format) as writers:
            for chunk in generate_chunks(config):
                writers.write(chunk)
                counts["leads"] += chunk.leads.num_rows
                counts["activities"] += chunk.activities.num_rows
                counts["deals"] += chunk.deals.num_rows
                if chunk.lead_status is not None:
                    counts["lead_status"] = (
                        counts.get("lead_status", 0) + chunk.lead_status.num_rows
                    )
        (tmp / "dataset.yaml").write_text(yaml.safe_dump(_dataset_yaml(config), sort_keys=False))
    return counts


def simulate_apart(config: SimulationConfig, out_dir: str | Path) -> dict:
    """`simulate` in a child process, so that its memory does not count in this process's
    peak RSS (what the benchmarks report). Returns the counts; errors come back raised."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(simulate, config, out_dir).result()


def _dataset_yaml(config: SimulationConfig) -> dict:
    return {
        "name": f"simulated-crm (seed {config.seed}, {config.n_leads} leads)",
        "activity_groups": {
            "sales_touch": ["call", "meeting", "sales_email"],
            "email": ["email_open", "email_click"],
            "web": [
                "page_view",
                "pricing_page_view",
                "content_download",
                "form_submission",
                "demo_request",
            ],
            "webinar": ["webinar_registration", "webinar_attendance"],
            "negative": ["unsubscribe", "email_bounce"],
        },
        "early_events": "error",
    }
