"""Forty won leads: training works, is regularised harder, shows wide intervals, and the
report warns that the data is thin instead of failing."""

from __future__ import annotations

from pathlib import Path

from leadscore.crm import load_dataset
from leadscore.features.batch import build_training_set
from leadscore.rules.config import load_rules
from leadscore.training.fit import fit_models
from leadscore.training.report import compare
from leadscore.training.report_page import write_report
from tests.training.conftest import FAST

RULES = Path(__file__).resolve().parents[2] / "conf" / "rules.yaml"


def test_forty_won_leads_train_and_report(forty_won_path, tmp_path):
    ds = load_dataset(forty_won_path)
    assert ds.deals.loc[ds.deals["status"] == "won", "lead_id"].nunique() == 40
    df, spec, _ = build_training_set(ds)
    config = FAST.model_copy(update={"bootstrap": 100})
    result = fit_models(df, spec, config)

    # regularised for the few positives: small trees, strong L2
    assert result.params["num_leaves"] <= 7 and result.params["lambda_l2"] >= 10
    assert any(w.startswith("thin data") for w in result.warnings)
    # the do-not-trust banner, with its number
    assert any(line.startswith("too few wins") for line in result.untrusted)
    assert result.scorer.info["untrusted"] == result.untrusted
    # honest, wide intervals: the test period holds a handful of wins
    low, high = result.metrics["model"]["roc_auc_ci"]
    assert low < result.metrics["model"]["roc_auc"] < high and high - low > 0.1
    assert 0.0 < result.scorer.predict_proba(result.scorer.encode_frame(df.head(50))).max() < 1.0

    comp = compare(ds, result.scorer, load_rules(RULES), config, training_set=df, bootstrap=100)
    assert any(w.startswith("thin data: only") for w in comp.warnings)
    html_path, csv_path = write_report(comp, tmp_path / "compare.html")
    page = html_path.read_text()
    assert "thin data: only" in page and csv_path.is_file()
    # the verdict comes first: right after the title, before any table or warning
    assert comp.verdict and any("too few wins" in line for line in comp.verdict)
    first = page.index("<h1>")
    assert page.index("class='verdict'") > first
    assert page.index("class='verdict'") < min(page.index("<table"), page.index("class='warn'"))
    row = comp.headline.set_index("scorer").loc["model"]
    assert row["roc_auc_high"] - row["roc_auc_low"] > 0.1
