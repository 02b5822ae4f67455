from __future__ import annotations

import pytest

from leadscore.crm import load_dataset
from leadscore.simulation import SimulationConfig, simulate


@pytest.fixture(scope="session")
def sim_path(tmp_path_factory):
    """A 20k-lead simulated CRM shared by the simulation tests (about 3 s)."""
    path = tmp_path_factory.mktemp("sim") / "crm"
    simulate(SimulationConfig(n_leads=20_000, seed=7), path)
    return path


@pytest.fixture(scope="session")
def sim(sim_path):
    return load_dataset(sim_path)
