"""`leadscore rules ...`: points rules for marketing (a learned scorecard)."""

from __future__ import annotations

from pathlib import Path

import typer

from crm.errors import LeadscoreError
from leadscore.console import err, load, out, step

app = typer.Typer(help="Points rules: learn a scorecard from data.", no_args_is_help=True)


@app.command("suggest")
def rules_suggest(
    data: Path = typer.Option(..., "--data", help="Dataset folder."),
    out_path: Path = typer.Option(
        Path("conf/rules.suggested.yaml"), "--out", help="Where to write the suggested rules."
    ),
    max_rules: int = typer.Option(30, "--max-rules", min=1, help="At most this many point items."),
    mql_share: float = typer.Option(
        0.15, "--mql-share", min=0.001, max=0.999, help="Share of leads reaching the MQL threshold."
    ),
    config: Path | None = typer.Option(
        None,
        "--config",
        help="Training config YAML (default: conf/train.yaml of the working folder, else the package's).",
    ),
    features_config: Path | None = typer.Option(
        None,
        "--features-config",
        help="Feature config YAML (default: conf/features.yaml of the working folder, else the package's).",
    ),
) -> None:
    """Fit a small, sparse points scorecard (L1 logistic regression on binned features, rounded to whole points) in the rules' YAML format, for marketing to read and edit."""
    from sklearn.metrics import roc_auc_score

    from features.batch import build_training_set
    from features.config import load_feature_config
    from leadscore.project import config_path
    from rules.scorecard import suggest_rules
    from rules.scorer import RuleScorer, batch_rule_inputs
    from training.config import load_train_config
    from training.leakage import audit_training_set
    from training.splits import split_training_set

    train_config = load_train_config(config_path("train", config))
    ds = load(data)
    with step("building the point-in-time training set"):
        df, spec, _ = build_training_set(
            ds, load_feature_config(config_path("features", features_config))
        )
    split = split_training_set(df, spec, train_config)
    train, val, test = df[split.train], df[split.validation], df[split.test]
    # The same audit as `train`: learned points never use a column the model is kept from.
    leakage = audit_training_set(
        train, spec, train_config, declared=ds.spec.columns.leaky, keep=ds.spec.columns.keep
    )
    for warning in leakage.warnings():
        err.print(f"[yellow]warning:[/yellow] {warning}: excluded", highlight=False)
    with step("learning a points scorecard"):
        s = suggest_rules(
            ds,
            train,
            val,
            columns=leakage.allowed(["source", *spec.categorical, *spec.numeric_profile]),
            max_rules=max_rules,
            mql_share=mql_share,
            seed=train_config.seed,
        )
    lines = [
        f"# Suggested by `leadscore rules suggest` from {data} ({len(train):,} train rows).",
        f"# {s.nonzero} point items (L1 strength C={s.c:.4g}); validation ROC AUC {s.validation_auc:.3f}.",
    ]
    if len(test) and test["label"].nunique() == 2:
        x = batch_rule_inputs(s.rules, ds, test["lead_id"], test["as_of"])
        auc = roc_auc_score(test["label"], RuleScorer(s.rules).rule_scores(x))
        lines.append(f"# Out-of-time test ROC AUC {auc:.3f} on {len(test):,} rows.")
    if leakage.excluded:
        lines.append(
            "# Not used (leakage audit, as for the model): " + ", ".join(leakage.excluded) + "."
        )
    lines.append("# Edit freely: this is the same format as conf/rules.yaml.")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text("\n".join(lines) + "\n" + s.rules.to_yaml())
    out.print("\n".join(line[2:] for line in lines[1:-1]))
    out.print(f"wrote {out_path}")


@app.command("init")
def rules_init(
    data: Path = typer.Option(..., "--data", help="Dataset folder."),
    out_path: Path = typer.Option(
        ...,
        "--out",
        help="Where to write the template (e.g. DIR/rules.yaml, the dataset's default rules).",
    ),
    overwrite: bool = typer.Option(False, help="Replace the file if it exists."),
) -> None:
    """Write a commented points-rules template for a dataset: every profile value and activity type at 0 points, with how often each occurs, for marketing to fill in."""
    from rules.config import check_rules, load_rules
    from rules.template import rules_template

    if out_path.exists() and not overwrite:
        raise LeadscoreError(f"{out_path}: exists (pass --overwrite to replace it)")
    ds = load(data)
    text = rules_template(ds, name=f"{Path(data).name}-rules")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    tmp.write_text(text)
    check_rules(load_rules(tmp), ds, file=str(out_path))  # the template is valid as written
    tmp.replace(out_path)
    out.print(f"wrote {out_path}: fill in the points, then `leadscore compare --data {data}`")
