"""One chunk of simulated leads, from its own random stream: arrival times and buying groups,
profile and first-touch source, the latent state and funnel rates (with any planted drift),
then the chunk's tables of leads, activities, deals and truth."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from leadscore.crm.times import US_PER_DAY, US_PER_SECOND
from leadscore.simulation import funnel as fm
from leadscore.simulation.activities import simulate_activities
from leadscore.simulation.config import AccountsConfig, SimulationConfig
from leadscore.simulation.deals import simulate_deals
from leadscore.simulation.paths import funnel_paths
from leadscore.simulation.statuses import simulate_statuses


@dataclass
class Chunk:
    leads: pa.Table
    activities: pa.Table
    deals: pa.Table
    truth: pa.Table
    lead_status: pa.Table | None = None  # only when the config asks for one


def generate_chunks(config: SimulationConfig) -> Iterator[Chunk]:
    start_us = int(np.datetime64(config.start, "us").astype(np.int64))
    n_chunks = -(-config.n_leads // config.chunk_size)
    streams = np.random.SeedSequence(config.seed).spawn(n_chunks)
    drift = None
    if config.drift_after is not None:
        day = (np.datetime64(config.drift_after, "us").astype(np.int64) - start_us) / US_PER_DAY
        drift = (float(day), frozenset(config.drift))
    for i, stream in enumerate(streams):
        first = i * config.chunk_size
        n = min(config.chunk_size, config.n_leads - first)
        yield simulate_chunk(
            np.random.default_rng(stream),
            first,
            n,
            config.n_leads,
            start_us,
            config.days,
            drift,
            config.accounts,
            config.lead_status,
        )


def _draw_categorical(
    rng: np.random.Generator, spec: tuple, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Values (None where missing) and fit effects of one profile attribute."""
    values, probs, effects, missing = spec
    idx = rng.choice(len(values), size=n, p=np.asarray(probs) / np.sum(probs))
    out = np.asarray(values, dtype=object)[idx]
    fit = np.asarray(effects)[idx]
    miss = rng.random(n) < missing
    out[miss] = None
    fit[miss] = fm.MISSING_FIT
    return out, fit


def _arrival_days(rng: np.random.Generator, n: int, days: float) -> np.ndarray:
    """Arrival times over the period with a growing volume and office-hours clock times."""
    growth = 0.6
    u = rng.random(n)
    # Inverse CDF of a density proportional to 1 + growth * t / days.
    a, b = growth / (2 * days), 1.0
    c = -u * (days + growth * days / 2)
    t = (-b + np.sqrt(b * b - 4 * a * c)) / (2 * a)
    day = np.minimum(np.floor(t), days - 1)
    clock = (7 + 11 * rng.beta(2.0, 2.0, n)) / 24  # mostly 07:00-18:00 UTC
    return day + clock


def simulate_chunk(
    rng: np.random.Generator,
    first: int,
    n: int,
    total: int,
    start_us: int,
    days: float,
    drift: tuple[float, frozenset[str]] | None = None,
    accounts: AccountsConfig | None = None,
    lead_status: bool = False,
) -> Chunk:
    width = max(7, len(str(total)))
    lead_ids = np.array([f"L{first + i + 1:0{width}d}" for i in range(n)], dtype=object)
    group = None
    if accounts is not None:  # buying groups, from a stream of their own
        account_rng = np.random.default_rng(rng.integers(2**62))
        group, created = _buying_groups(account_rng, n, days, accounts)
        account_ids = np.array([f"A{first + g + 1:0{width}d}" for g in group], dtype=object)
    if drift is not None:  # arrival times first (from a stream of their own): who drifts
        drift_rng = np.random.default_rng(rng.integers(2**62))
        if group is None:
            created = _arrival_days(drift_rng, n, days)
        drifted = created >= drift[0]

    # Profile and first-touch source.
    src_names = list(fm.SOURCES)
    src_idx = rng.choice(len(src_names), size=n, p=np.fromiter(fm.SOURCES.values(), float))
    if drift is not None and "source_mix" in drift[1]:
        weights = np.fromiter(fm.SOURCES.values(), float) * np.exp(
            -2.5 * np.array([fm.SOURCE_FIT[s] for s in src_names])
        )
        src_idx[drifted] = drift_rng.choice(
            len(src_names), size=int(drifted.sum()), p=weights / weights.sum()
        )
    source = np.asarray(src_names, dtype=object)[src_idx]
    industry, f_ind = _draw_categorical(rng, fm.INDUSTRY, n)
    size, f_size = _draw_categorical(rng, fm.COMPANY_SIZE, n)
    role, f_role = _draw_categorical(rng, fm.JOB_ROLE, n)
    country, f_country = _draw_categorical(rng, fm.COUNTRY, n)
    if group is not None:  # one company: its first contact's industry, size and country
        industry, f_ind, size, f_size = industry[group], f_ind[group], size[group], f_size[group]
        country, f_country = country[group], f_country[group]
    u = rng.random(n)
    is_student = role == "student"
    email_kind = np.where(
        is_student,
        np.where(u < 0.7, "student", np.where(u < 0.95, "free", "business")),
        np.where(u < 0.78, "business", np.where(u < 0.98, "free", "student")),
    ).astype(object)
    f_email = np.vectorize(fm.EMAIL_KIND_FIT.get, otypes=[float])(email_kind)
    f_source = np.vectorize(fm.SOURCE_FIT.get, otypes=[float])(source)
    fit = f_ind + f_size + f_role + f_country + f_email + f_source

    # Latent state.
    z = rng.standard_normal(n)
    epsilon = fm.HIDDEN_SD * rng.standard_normal(n)
    if group is not None:  # part of the interest and of the hidden factor is the account's
        share = accounts.shared_interest
        a, e = account_rng.standard_normal((2, n))
        z = np.sqrt(share) * a[group] + np.sqrt(1 - share) * z
        epsilon = np.sqrt(share) * fm.HIDDEN_SD * e[group] + np.sqrt(1 - share) * epsilon
    priors = np.array([fm.RESPONSE_PRIOR[s] for s in src_names])[src_idx]
    response = (rng.random(n)[:, None] > np.cumsum(priors, axis=1)).sum(axis=1)
    response = np.minimum(response, len(fm.RESPONSE_CLASSES) - 1)
    engager = rng.random(n) < 1 / (1 + np.exp(-(0.8 + 1.0 * z)))
    rates = fm.funnel_rates(z, fit, epsilon, response)
    z_behaviour = z
    if drift is None and group is None:
        created = _arrival_days(rng, n, days)
    elif drift is not None:
        if "conversion" in drift[1]:
            rates["rate_win"] = np.where(drifted, rates["rate_win"] / 3, rates["rate_win"])
        if "behaviour" in drift[1]:
            z_behaviour = np.where(drifted, z - 1.0, z)
    path = funnel_paths(rng, created, rates)
    obs_end = np.minimum(days, path["closed_at"])  # behaviour stops at close and at the end of data

    acts = simulate_activities(
        rng, created, obs_end, z_behaviour, engager, email_kind, path, start_us
    )
    deals = simulate_deals(rng, lead_ids, path, size, days)

    def ts(day_values: np.ndarray) -> pa.Array:
        finite = np.isfinite(day_values)
        us = np.where(
            finite, start_us + np.round(np.where(finite, day_values, 0) * 86_400) * US_PER_SECOND, 0
        )
        return pa.array(us.astype(np.int64), type=pa.timestamp("us", tz="UTC"), mask=~finite)

    leads_table = pa.table(
        {
            "lead_id": pa.array(lead_ids, pa.string()),
            "created_at": ts(created),
            "source": pa.array(source, pa.string()),
            "industry": pa.array(industry, pa.string()),
            "company_size": pa.array(size, pa.string()),
            "job_role": pa.array(role, pa.string()),
            "country": pa.array(country, pa.string()),
            "email_domain_kind": pa.array(email_kind, pa.string()),
        }
    )
    if group is not None:
        leads_table = leads_table.append_column("account_id", pa.array(account_ids, pa.string()))
    act_table = pa.table(
        {
            "lead_id": pa.array(lead_ids[acts["lead"]], pa.string()),
            "occurred_at": ts(acts["t"]),
            "activity_type": pa.array(
                np.asarray(fm.ACTIVITY_TYPES, dtype=object)[acts["type"]], pa.string()
            ),
            "value": pa.array(acts["value"], pa.float64(), mask=np.isnan(acts["value"])),
            "campaign": pa.array(acts["campaign"], pa.string()),
        }
    )
    deal_table = pa.table(
        {
            "deal_id": pa.array(deals["deal_id"], pa.string()),
            "lead_id": pa.array(lead_ids[deals["lead"]], pa.string()),
            "created_at": ts(deals["created"]),
            "closed_at": ts(deals["closed"]),
            "status": pa.array(deals["status"], pa.string()),
            "amount": pa.array(deals["amount"], pa.float64()),
        }
    )
    outcome = np.asarray(fm.STATE_NAMES, dtype=object)[path["final_state"]]
    truth = {
        "lead_id": pa.array(lead_ids, pa.string()),
        "z": pa.array(np.round(z, 6)),
        "epsilon": pa.array(np.round(epsilon, 6)),
        "fit": pa.array(np.round(fit, 6)),
        "response_class": pa.array(
            np.asarray(fm.RESPONSE_CLASSES, dtype=object)[response], pa.string()
        ),
        "engager": pa.array(engager),
    }
    for name in fm.RATE_COLUMNS:
        truth[name] = pa.array(rates[name])
    # The whole path, also past the end of the data: the oracle reads the state at any as_of.
    for name in ("touched_at", "qualified_at", "advanced_at", "cold_at", "closed_at"):
        truth[name] = ts(path[name])
    truth["final_state"] = pa.array(outcome, pa.string())
    if group is not None:  # what the account oracle needs: who belongs where, arriving when
        truth["account_id"] = pa.array(account_ids, pa.string())
        truth["created_at"] = ts(created)
    status_table = None
    if lead_status:  # drawn last, from the chunk's stream: every other table is unchanged
        st = simulate_statuses(rng, path, z, fit, role, email_kind, size, days)
        status_table = pa.table(
            {
                "lead_id": pa.array(lead_ids[st["lead"]], pa.string()),
                "changed_at": ts(st["t"]),
                "status": pa.array(st["status"], pa.string()),
                "reason": pa.array(st["reason"], pa.string()),
                "owner": pa.array(st["owner"], pa.string()),
            }
        )
    return Chunk(leads_table, act_table, deal_table, pa.table(truth), status_table)


def _buying_groups(
    rng: np.random.Generator, n: int, days: float, accounts: AccountsConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Each lead's account (consecutive leads, 1 + Poisson(mean - 1) per account; the
    account's number is its first lead's position in the chunk) and creation time (days):
    an account's first contact arrives as single leads do, the others join later."""
    sizes = 1 + rng.poisson(accounts.contacts_mean - 1, n)
    ends = np.cumsum(sizes)
    sizes = sizes[: np.searchsorted(ends, n) + 1]
    sizes[-1] -= ends[len(sizes) - 1] - n
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    group = np.repeat(starts, sizes)
    arrival = _arrival_days(rng, len(sizes), days)[np.repeat(np.arange(len(sizes)), sizes)]
    join = np.where(np.arange(n) == group, 0.0, rng.exponential(accounts.join_days, n))
    created = arrival + join
    late = created >= days  # a contact who would join after the data's end joins before it
    created[late] = arrival[late] + rng.random(late.sum()) * (days - arrival[late])
    return group, created
