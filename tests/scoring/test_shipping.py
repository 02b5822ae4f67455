"""What a model or a bento carries is derived from the code: the packages an entry reaches
(lazy imports too), the distributions they import, pinned; one `leadscore` folder."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from leadscore.crm.errors import LeadscoreError
from leadscore.scoring import shipping
from leadscore.scoring.shipping import package_folder, reached, ship


def test_the_service_ships_what_its_lazy_imports_reach():
    service = ship("leadscore.serving.service")
    # POST /events imports the stream and the hand-off inside functions
    assert {"leadscore.stream", "leadscore.handoff", "leadscore.serving"} <= set(service.packages)
    assert "leadscore.training" not in service.packages  # the layering holds at run time
    pins = dict(line.split("==") for line in service.requirements)
    assert pins["numba"] == version("numba")  # the TreeSHAP kernel (once missing by hand)
    assert pins["bentoml"] == version("bentoml") and pins["mlflow"] == version("mlflow")
    assert "mlflow-skinny" not in pins  # the distribution named like the module pulls the rest
    assert pins["psycopg[binary]"] == version("psycopg")  # leadscore's extra, as declared


def test_the_model_ships_less_than_the_service():
    model = ship("leadscore.scoring.pyfunc_entry")
    service = ship("leadscore.serving.service")
    assert set(model.packages) < set(service.packages)
    assert "bentoml" not in model.third_party and "bentoml" in service.third_party


def test_reached_follows_imports_inside_functions_and_parent_packages():
    modules, outside = reached(["leadscore.scoring.pyfunc_entry"])
    assert "leadscore.scoring.mlflow_model" in modules and "leadscore.scoring" in modules
    assert "mlflow" in outside and "os" not in outside  # the standard library is not shipped


def test_stage_writes_one_namespace_folder(tmp_path):
    model = ship("leadscore.scoring.pyfunc_entry")
    root = model.stage(tmp_path)
    assert root == tmp_path / "leadscore" and [p.name for p in tmp_path.iterdir()] == ["leadscore"]
    assert sorted(p.name for p in root.iterdir()) == sorted(
        ["__init__.py"] + [p.split(".")[1] for p in model.packages]
    )
    assert (root / "crm" / "mappings").is_dir()  # data files travel with their package
    assert not list(root.rglob("__pycache__"))
    assert "extend_path" in (root / "__init__.py").read_text()
    model.stage(tmp_path)  # again: replaced, not merged
    assert sorted(p.name for p in root.iterdir()) == sorted(
        ["__init__.py"] + [p.split(".")[1] for p in model.packages]
    )


def test_an_import_no_distribution_provides_is_refused(monkeypatch):
    monkeypatch.setattr(shipping, "_distributions", lambda: {})
    with pytest.raises(LeadscoreError, match="no installed distribution provides"):
        ship("leadscore.scoring.pyfunc_entry")


def test_a_module_of_the_command_line_floor_is_refused():
    with pytest.raises(LeadscoreError, match="leadscore.console"):
        ship("leadscore.console")


def test_an_unknown_package_is_an_error():
    with pytest.raises(LeadscoreError, match="not an installed package"):
        package_folder("leadscore.nothing_here")
