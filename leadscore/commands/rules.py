"""`leadscore rules ...`: points rules for marketing (a learned scorecard)."""

from __future__ import annotations

from pathlib import Path

import typer

from leadscore.console import MODEL_REF_HELP, load, out, step, warn
from leadscore.crm.errors import LeadscoreError

app = typer.Typer(help="Points rules: learn a scorecard from data.", no_args_is_help=True)


@app.command("suggest")
def rules_suggest(
    data: Path = typer.Option(..., "--data", help="Dataset folder."),
    out_path: Path = typer.Option(
        Path("conf/rules.suggested.yaml"), "--out", help="Where to write the suggested rules."
    ),
    max_rules: int = typer.Option(30, "--max-rules", min=1, help="At most this many point items."),
    mql_share: float | None = typer.Option(
        None,
        "--mql-share",
        min=0.001,
        max=0.999,
        help="Share of leads reaching the MQL threshold (default: the share of marketing's rules' MQLs on the test rows, as `compare` does, else 0.15).",
    ),
    model: str | None = typer.Option(
        None,
        "--model",
        help="Learn the points `compare` shows for this model: its training and feature configs, and the columns its leakage audit allowed ("
        + MODEL_REF_HELP
        + ")",
    ),
    rules: Path | None = typer.Option(
        None,
        "--rules",
        help="Marketing's points rules whose MQL share the learned points match (default: as `compare` finds them).",
    ),
    config: Path | None = typer.Option(
        None,
        "--config",
        help="Training config YAML (default: the model's own with --model, else conf/train.yaml of the working folder, else the package's).",
    ),
    features_config: Path | None = typer.Option(
        None,
        "--features-config",
        help="Feature config YAML (default: conf/features.yaml of the working folder, else the package's; ignored with --model, whose features are fixed).",
    ),
) -> None:
    """Fit a small, sparse points scorecard (L1 logistic regression on binned features, rounded to whole points) in the rules' YAML format, for marketing to read and edit. With --model, these are the learned points of `compare` for that model, item for item."""
    from sklearn.metrics import roc_auc_score

    from leadscore.features.batch import build_training_set
    from leadscore.features.config import load_feature_config
    from leadscore.jobs.project import config_path, resolve_rules
    from leadscore.rules.scorer import RuleScorer, batch_rule_inputs
    from leadscore.scoring.mlflow_model import load_scorer
    from leadscore.training.config import TrainConfig, load_train_config
    from leadscore.training.leakage import ALWAYS_EXCLUDED, audit_training_set
    from leadscore.training.learned import learn_points, learned_columns, rules_mql_share
    from leadscore.training.splits import split_training_set

    ds = load(data)
    packed = None
    if model is not None:
        scorer = load_scorer(model)
        own = scorer.info.get("train_config")
        train_config = (
            TrainConfig.model_validate(own)
            if config is None and own
            else load_train_config(config_path("train", config))
        )
        with step("building the point-in-time training set (the model's features)"):
            df, spec, _ = build_training_set(ds, spec=scorer.spec)
        columns = learned_columns(ds, scorer.features)
        excluded = list((scorer.info.get("leakage") or {}).get("excluded", []))
        packed = scorer.rules.config if scorer.rules else None
    else:
        train_config = load_train_config(config_path("train", config))
        with step("building the point-in-time training set"):
            df, spec, _ = build_training_set(
                ds, load_feature_config(config_path("features", features_config))
            )
    split = split_training_set(df, spec, train_config)
    train, val, test = df[split.train], df[split.validation], df[split.test]
    if model is None:
        # The same audit as `train`: learned points never use a column the model is kept from.
        leakage = audit_training_set(
            train, spec, train_config, declared=ds.spec.columns.leaky, keep=ds.spec.columns.keep
        )
        for warning in leakage.warnings():
            warn(warning if warning.endswith(ALWAYS_EXCLUDED) else f"{warning}: excluded")
        columns = learned_columns(
            ds, leakage.allowed(["source", *spec.categorical, *spec.numeric_profile])
        )
        excluded = list(leakage.excluded)
    if mql_share is None:
        found = resolve_rules(rules, ds, packed=packed)
        share = rules_mql_share(found.rules, ds, test)
        share_from = (
            f"the MQL share of {found.source} on the test rows"
            if found.rules is not None
            else "the default MQL share (no points rules found)"
        )
    else:
        share, share_from = mql_share, "--mql-share"
    with step("learning a points scorecard"):
        s = learn_points(
            ds, train, val, columns, train_config, mql_share=share, max_rules=max_rules
        )
    lines = [
        f"# Suggested by `leadscore rules suggest` from {data} ({len(train):,} train rows"
        + (f", the periods and features of {model}" if model is not None else "")
        + ").",
        f"# {s.nonzero} point items (L1 strength C={s.c:.4g}); validation ROC AUC {s.validation_auc:.3f}.",
        f"# Base points {s.rules.base_points:g}: {share:.1%} of train rows at the MQL threshold "
        f"({share_from}), as close as tied rows allow.",
    ]
    if len(test) and test["label"].nunique() == 2:
        x = batch_rule_inputs(s.rules, ds, test["lead_id"], test["as_of"])
        auc = roc_auc_score(test["label"], RuleScorer(s.rules).rule_scores(x))
        lines.append(f"# Out-of-time test ROC AUC {auc:.3f} on {len(test):,} rows.")
    if excluded:
        lines.append("# Not used (leakage audit, as for the model): " + ", ".join(excluded) + ".")
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
    from leadscore.rules.config import check_rules, load_rules
    from leadscore.rules.template import rules_template

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
