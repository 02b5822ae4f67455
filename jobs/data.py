"""Reading a dataset for a job, each read a step of its progress: the export on this
machine, or its activities on a Spark session."""

from __future__ import annotations

from pathlib import Path

from leadscore.jobs.progress import Progress


def load(data: str | Path, progress: Progress, **kwargs):
    """`leadscore.crm.loading.load_dataset` as a step: a large export takes a while to read
    and check."""
    from leadscore.crm.loading import load_dataset

    with progress.step(f"loading and checking {data}"):
        return load_dataset(data, **kwargs)


def spark_history(data: str | Path, master: str | None, progress: Progress, **kwargs):
    """The dataset's leads and deals loaded here, its activities read and checked by a
    Spark session (`leadscore.features.spark_engine.SparkHistory`)."""
    from leadscore.features.spark_engine import SparkHistory, spark_session

    ds = load(data, progress, activities=False, **kwargs)
    with progress.step("starting Spark and checking the activities there"):
        return SparkHistory(spark_session(master), ds)
