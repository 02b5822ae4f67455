"""`leadscore rules init`'s template: every value and type at 0, valid as written."""

from __future__ import annotations

import yaml

from leadscore.rules.config import check_rules, load_rules
from leadscore.rules.template import rules_template


def test_template_lists_every_value_and_type_and_loads(small_sim, tmp_path):
    text = rules_template(small_sim)
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    rules = load_rules(path)
    assert check_rules(rules, small_sim) == []
    leads = small_sim.leads
    for col in ("source", *small_sim.profile_columns):
        if leads[col].dtype.kind in "if":
            assert rules.profile[col].at_least
        else:
            assert set(rules.profile[col].values) == {str(v) for v in leads[col].dropna().unique()}
    types = set(small_sim.activities["activity_type"].astype(str))
    assert set(rules.activities) == types
    raw = yaml.safe_load(text)
    assert all(v == 0 for r in raw["profile"].values() for v in r.get("values", {}).values())
    assert "# " in text and "leads" in text  # commented with counts


def test_identifiers_and_leaky_columns_are_left_out(small_sim):
    leads = small_sim.leads.assign(crm_id=[f"id-{i}" for i in range(len(small_sim.leads))])
    ds = small_sim.__class__(**{**small_sim.__dict__, "leads": leads,
                                "profile_columns": (*small_sim.profile_columns, "crm_id")})  # fmt: skip
    text = rules_template(ds)
    assert "# crm_id: left out (looks like an identifier)" in text
    assert "crm_id:  #" not in text
