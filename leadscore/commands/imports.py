"""`leadscore import csv|xeducation`: a CRM export or a public dataset into a dataset folder."""

from __future__ import annotations

from pathlib import Path

import typer

from leadscore.console import FileFormat, out, print_summary, step, styled

app = typer.Typer(
    help="Import a CRM export or a public dataset into a dataset folder.", no_args_is_help=True
)


@app.command("csv")
def import_csv(
    leads: Path = typer.Option(..., "--leads", help="The export's leads (or contacts) CSV."),
    activities: Path | None = typer.Option(None, "--activities", help="Activities CSV."),
    deals: Path | None = typer.Option(None, "--deals", help="Deals (opportunities) CSV."),
    lead_status: Path | None = typer.Option(
        None,
        "--lead-status",
        help="Lead-status history CSV (lead, time, status, reason, owner): what sales did with each lead; its values map to stages under status_stages in the mapping.",
    ),
    mapping: Path = typer.Option(
        ..., "--mapping", help="Mapping YAML: columns, values, dates, outcome, leaky columns."
    ),
    out_dir: Path = typer.Option(..., "--out", help="Dataset folder to write."),
    file_format: FileFormat = typer.Option(FileFormat.parquet, "--format", help="Table format."),
    overwrite: bool = typer.Option(False, help="Replace the folder if it is not empty."),
) -> None:
    """Map a CRM export's columns, values and dates into the data contract, validate it, and write a dataset folder (nothing is written when it does not validate)."""
    from leadscore.crm.mapping import load_mapping

    _run_import(
        load_mapping(mapping),
        mapping.name,
        leads=leads,
        activities=activities,
        deals=deals,
        lead_status=lead_status,
        out_dir=out_dir,
        file_format=file_format,
        overwrite=overwrite,
    )


@app.command("xeducation")
def import_xeducation(
    leads: Path = typer.Argument(..., help="X Education's Leads.csv."),
    out_dir: Path = typer.Option(..., "--out", help="Dataset folder to write."),
    file_format: FileFormat = typer.Option(FileFormat.parquet, "--format", help="Table format."),
    overwrite: bool = typer.Option(False, help="Replace the folder if it is not empty."),
) -> None:
    """Import the public X Education leads export with its built-in mapping ('Select' is missing, Lead Number is the time order, the sales-entered columns are declared leaky)."""
    from leadscore.crm.mapping import builtin_mapping_path, builtin_rules_path, load_mapping

    path = builtin_mapping_path("xeducation")
    rules = builtin_rules_path("xeducation")
    _run_import(
        load_mapping(path),
        "the built-in xeducation mapping",
        leads=leads,
        out_dir=out_dir,
        file_format=file_format,
        overwrite=overwrite,
        extra_files={"rules.yaml": rules.read_text()} if rules else None,
    )
    out.print(
        f"next: leadscore train --data {out_dir} (its rules.yaml, a marketer's points for this "
        "export, is the default for train and compare)"
    )


def _run_import(mapping, mapping_name, *, file_format, **paths_and_options) -> None:
    """Import with `leadscore.crm.importer.import_tables`; print the renames and the summary."""
    from leadscore.crm.importer import import_tables
    from leadscore.crm.summary import summarize_dataset

    with step("mapping, checking and writing the export"):
        result = import_tables(
            mapping, file_format=file_format.value, mapping_file=mapping_name, **paths_and_options
        )
    for table, names in result.columns.items():
        renamed = {k: v for k, v in names.items() if k != v}
        if renamed:
            out.print(
                f"{table}: " + ", ".join(f"{k!r} -> {v}" for k, v in renamed.items()),
                highlight=False,
            )
    for note in result.notes:
        out.print(styled((note, "yellow")), highlight=False)
    print_summary(summarize_dataset(result.dataset))
    out.print(f"wrote {result.dataset.path}")
