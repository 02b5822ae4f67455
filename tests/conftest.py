from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

# The suite runs one test worker per core (`make test`: two). A library that starts a thread
# per core in each worker (LightGBM's OpenMP, the BLAS) then runs twice as many threads as
# there are cores, and OpenMP's threads spin while they wait: two trainings at once took 31 s
# each with them and 23 s with one thread each. One thread per worker, and per process a
# test starts (they inherit it), unless the caller set otherwise.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

TABLES = ("leads", "activities", "deals")

LEADS = """\
lead_id,created_at,source,industry,employees
L1,2025-01-01T10:00:00Z,website,software,10
L2,2025-01-02,,finance,
L3,2025-01-03T10:00:00+02:00,partner,,200
"""
ACTIVITIES = """\
lead_id,occurred_at,activity_type,value,campaign
L1,2025-01-01T11:00:00Z,page_view,30,
L1,2025-01-02T09:00:00Z,email_open,,newsletter-2025-01
L3,2025-01-04T11:00:00Z,call,,
"""
DEALS = """\
deal_id,lead_id,created_at,closed_at,status,amount
D1,L1,2025-01-05,2025-02-01,won,1000
D2,L3,2025-01-05,,open,
"""


def write_dataset(folder: Path, **tables: str | None) -> Path:
    """Write CSV tables (and `dataset` as dataset.yaml) into `folder`; None skips a table."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in tables.items():
        if text is None:
            continue
        target = folder / ("dataset.yaml" if name == "dataset" else f"{name}.csv")
        target.write_text(textwrap.dedent(text))
    return folder


@pytest.fixture
def good_dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "crm", leads=LEADS, activities=ACTIVITIES, deals=DEALS)


def shared(tmp_path_factory, name: str, build):
    """`build()` once per test run, whichever test worker asks first; the others (pytest-xdist
    runs two) wait on a lock and read what it left (pickled) instead of building it again.
    A folder builder gets the shared folder to fill: `build(folder)`."""
    import fcntl
    import os
    import pickle

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, above each worker's own
    done = root / f"shared-{name}.pkl"
    with open(root / f"shared-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return pickle.loads(done.read_bytes())
        value = build()
        staged = done.with_suffix(".staged")
        staged.write_bytes(pickle.dumps(value))
        staged.replace(done)
        return value


@pytest.fixture(scope="session")
def small_sim_path(tmp_path_factory):
    """A 4,000-lead simulated CRM shared across packages' tests (about a second): built once
    per run, read-only."""
    from leadscore.simulation import SimulationConfig, simulate

    def build():
        path = tmp_path_factory.getbasetemp() / "shared-small_sim" / "crm"
        simulate(SimulationConfig(n_leads=4_000, seed=11), path)
        return path

    return shared(tmp_path_factory, "small_sim", build)


@pytest.fixture(scope="session")
def small_sim(small_sim_path):
    from leadscore.crm import load_dataset

    return load_dataset(small_sim_path)


@pytest.fixture(scope="session")
def status_sim_path(tmp_path_factory):
    """small_sim's CRM (same seed: the same leads, activities and deals, so the `trained`
    model fits it) with the lead-status history the simulator writes on request."""
    from leadscore.simulation import SimulationConfig, simulate

    def build():
        path = tmp_path_factory.getbasetemp() / "shared-status_sim" / "crm"
        simulate(SimulationConfig(n_leads=4_000, seed=11, lead_status=True), path)
        return path

    return shared(tmp_path_factory, "status_sim", build)


@pytest.fixture(scope="session")
def status_sim(status_sim_path):
    from leadscore.crm import load_dataset

    return load_dataset(status_sim_path)


@pytest.fixture(scope="session")
def small_set(small_sim, tmp_path_factory):
    """The training set of small_sim (shared by the training and serving tests)."""
    from leadscore.features.batch import build_training_set

    return shared(tmp_path_factory, "small_set", lambda: build_training_set(small_sim))


@pytest.fixture(scope="session")
def trained(small_set, tmp_path_factory):
    """A model fitted on small_set with the fast test config."""
    from leadscore.training.fit import fit_models
    from tests.training.conftest import FAST

    df, spec, _ = small_set
    return shared(tmp_path_factory, "trained", lambda: fit_models(df, spec, FAST))


@pytest.fixture(scope="session")
def forty_won_path(tmp_path_factory):
    """A simulated CRM with exactly 40 won leads (~360 leads, a few thousand activities)."""
    import pandas as pd

    from leadscore.simulation import SimulationConfig, simulate

    base = tmp_path_factory.mktemp("forty_won")
    simulate(SimulationConfig(n_leads=400, seed=3), base / "sim")
    tables = {t: pd.read_parquet(base / "sim" / f"{t}.parquet") for t in TABLES}
    won = tables["deals"].loc[tables["deals"]["status"] == "won", "lead_id"].unique()
    assert len(won) > 40
    drop = set(won[40:])  # the other won leads leave with all their history
    out = base / "crm"
    out.mkdir()
    for name, df in tables.items():
        df[~df["lead_id"].isin(drop)].to_parquet(out / f"{name}.parquet", index=False)
    return out


@pytest.fixture(scope="session")
def served_rules(small_sim, small_set, trained):
    """The default points rules, calibrated on the validation rows, as packed with a model."""
    from leadscore.rules.config import load_rules
    from leadscore.training.fit import fit_rules

    df = small_set[0][trained.split.validation]
    return fit_rules(load_rules("conf/rules.yaml"), small_sim, df)


@pytest.fixture(scope="session")
def shipped(small_set, trained, tmp_path_factory):
    """`trained` with the model that ships: refit on every matured snapshot of small_set."""
    from leadscore.training.refit import ship
    from tests.training.conftest import FAST

    return shared(tmp_path_factory, "shipped", lambda: ship(trained, small_set[0], FAST))


@pytest.fixture(scope="session")
def ruled(trained, served_rules):
    """The test model with the points rules packed next to it (as the endpoint serves it)."""

    scorer = trained.scorer.with_parts(rules=served_rules)
    return scorer


def flat_export(folder: Path, n: int = 1_500, seed: int = 0):
    """A flat export (one row per lead, a `Converted` outcome, no history) whose wins follow
    its `Visits` column: the loaded dataset."""
    import numpy as np
    import pandas as pd

    from leadscore.crm.loading import load_dataset

    rng = np.random.default_rng(seed)
    visits = rng.poisson(3, n)
    won = (rng.random(n) < 1 / (1 + np.exp(2 - 0.5 * visits))).astype(int)
    rows = "\n".join(
        f"{i},{(pd.Timestamp('2024-01-01') + pd.Timedelta(hours=6 * i)).date()},"
        f"{'web' if i % 3 else 'ads'},{won[i]},{visits[i]}"
        for i in range(n)
    )
    return load_dataset(
        write_dataset(
            folder,
            leads=f"lead_id,created_at,source,Converted,Visits\n{rows}\n",
            dataset="label: {column: Converted}\n",
        )
    )


@pytest.fixture(scope="session")
def spark():
    """One local Spark session for the whole run (about 8 s to start): two cores, UTC."""
    pytest.importorskip("pyspark", reason="the Spark engine's tests need pyspark (the spark extra)")
    from leadscore.features.spark_engine import spark_session

    session = spark_session("local[2]")
    session.conf.set("spark.sql.shuffle.partitions", "4")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def account_sim_path(tmp_path_factory):
    """A 4,000-lead simulated CRM in buying groups (accounts of about 3 contacts)."""
    from leadscore.simulation import SimulationConfig, simulate
    from leadscore.simulation.config import AccountsConfig

    def build():
        path = tmp_path_factory.getbasetemp() / "shared-account_sim" / "crm"
        simulate(SimulationConfig(n_leads=4_000, seed=11, accounts=AccountsConfig()), path)
        return path

    return shared(tmp_path_factory, "account_sim", build)


@pytest.fixture(scope="session")
def account_sim(account_sim_path):
    from leadscore.crm import load_dataset

    return load_dataset(account_sim_path)


@pytest.fixture(scope="session")
def account_fit(account_sim, small_set, ruled, tmp_path_factory):
    """The account model of account_sim with the FAST config and a role column; the lead
    model is the test model of small_sim (the same simulator: the same feature set)."""
    from leadscore.training.accounts import fit_accounts
    from leadscore.training.config import AccountsConfig
    from tests.training.conftest import FAST

    config = FAST.model_copy(update={"accounts": AccountsConfig(role_column="job_role")})
    return shared(tmp_path_factory, "account_fit", lambda: fit_accounts(account_sim, ruled, config))
