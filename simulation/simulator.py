"""CRM simulator: writes a dataset in the data contract plus `truth.csv` (the latent state).

Leads are generated in chunks, each with its own random stream spawned from the seed, and
appended to Parquet row groups (or CSV), so a million leads fit in bounded memory and the
same seed gives the same bytes. See `leadscore.simulation.funnel` for the generative model.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from leadscore.crm.folders import staged_folder
from leadscore.crm.times import US_PER_DAY, US_PER_SECOND
from leadscore.simulation import funnel as fm

TRUTH_FILE = "truth.csv"


class AccountsConfig(BaseModel):
    """B2B accounts: leads come in buying groups (several contacts of one company) whose
    outcomes are tied. Contacts share the company's profile (industry, size, country) and
    part of their buying interest and of the hidden factor; each keeps its own role and
    path, and an account wins through one of its contacts (the won deal is that contact's)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    contacts_mean: float = Field(
        3.0, ge=1.0, le=50.0, description="contacts per account, on average"
    )
    shared_interest: float = Field(
        0.6, ge=0.0, lt=1.0, description="correlation of two contacts' latent interest"
    )
    join_days: float = Field(
        30.0, gt=0, description="mean days after an account's first contact that another joins"
    )


class SimulationConfig(BaseModel):
    """What to simulate. Defaults give ~18 months of a mid-size B2B funnel."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_leads: int = Field(20_000, ge=1, le=50_000_000)
    seed: int = Field(0, ge=0)
    start: str = "2025-01-01"
    days: float = Field(540.0, gt=0)
    chunk_size: int = Field(25_000, ge=100)
    format: str = Field("parquet", pattern="^(parquet|csv)$")
    # Planted drift (monitoring's tests): leads created from `drift_after` on differ in the
    # `drift` ways. source_mix: more leads from the weakest sources; conversion: their win
    # rate falls to a third, with the same behaviour (what the model cannot see); behaviour:
    # they leave fewer marketing traces for the same buying intent (tracking lost). Without
    # `drift_after`, the data is exactly that of the same seed without drift.
    drift_after: str | None = None
    drift: tuple[Literal["source_mix", "conversion", "behaviour"], ...] = (
        "source_mix",
        "conversion",
        "behaviour",
    )
    # Accounts (buying groups); None: every lead on its own, exactly the data of the same
    # seed before accounts existed.
    accounts: AccountsConfig | None = None

    @field_validator("start", "drift_after")
    @classmethod
    def _start_is_a_date(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        try:
            np.datetime64(value, "D")
        except ValueError as exc:
            raise ValueError(
                f"{info.field_name} must be a date such as 2025-01-01, not {value!r}"
            ) from exc
        return value


@dataclass
class _Chunk:
    leads: pa.Table
    activities: pa.Table
    deals: pa.Table
    truth: pa.Table


def simulate(config: SimulationConfig, out_dir: str | Path, *, overwrite: bool = False) -> dict:
    """Simulate `config.n_leads` leads into `out_dir`; return counts of what was written.

    The folder is written under a temporary name and renamed at the end, so an interrupted
    run leaves nothing that looks like a dataset.
    """
    counts = {"leads": 0, "activities": 0, "deals": 0}
    with staged_folder(out_dir, overwrite=overwrite) as tmp:
        with _Writers(tmp, config.format) as writers:
            for chunk in _chunks(config):
                writers.write(chunk)
                counts["leads"] += chunk.leads.num_rows
                counts["activities"] += chunk.activities.num_rows
                counts["deals"] += chunk.deals.num_rows
        (tmp / "dataset.yaml").write_text(yaml.safe_dump(_dataset_yaml(config), sort_keys=False))
    return counts


def simulate_apart(config: SimulationConfig, out_dir: str | Path) -> dict:
    """`simulate` in a child process, so that its memory does not count in this process's
    peak RSS (what the benchmarks report). Returns the counts; errors come back raised."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(simulate, config, out_dir).result()


def _dataset_yaml(config: SimulationConfig) -> dict:
    return {
        "name": f"simulated-crm (seed {config.seed}, {config.n_leads} leads)",
        "activity_groups": {
            "sales_touch": ["call", "meeting", "sales_email"],
            "email": ["email_open", "email_click"],
            "web": [
                "page_view",
                "pricing_page_view",
                "content_download",
                "form_submission",
                "demo_request",
            ],
            "webinar": ["webinar_registration", "webinar_attendance"],
            "negative": ["unsubscribe", "email_bounce"],
        },
        "early_events": "error",
    }


class _Writers:
    """Appends chunks to leads/activities/deals (Parquet or CSV) and truth.csv."""

    def __init__(self, folder: Path, fmt: str) -> None:
        self.folder, self.fmt = folder, fmt
        self.writers: dict[str, object] = {}

    def __enter__(self) -> _Writers:
        return self

    def write(self, chunk: _Chunk) -> None:
        for name in ("leads", "activities", "deals"):
            self._append(name, getattr(chunk, name), self.fmt)
        self._append("truth", chunk.truth, "csv")

    def _append(self, name: str, table: pa.Table, fmt: str) -> None:
        writer = self.writers.get(name)
        if writer is None:
            path = self.folder / (TRUTH_FILE if name == "truth" else f"{name}.{fmt}")
            if fmt == "parquet":
                writer = pq.ParquetWriter(path, table.schema, compression="zstd")
            else:
                writer = pacsv.CSVWriter(path, _csv_schema(table.schema))
            self.writers[name] = writer
        writer.write_table(table if fmt == "parquet" else _as_csv_table(table))

    def __exit__(self, *exc: object) -> None:
        for writer in self.writers.values():
            writer.close()


def _csv_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema(
        [(f.name, pa.string() if pa.types.is_timestamp(f.type) else f.type) for f in schema]
    )


def _as_csv_table(table: pa.Table) -> pa.Table:
    """Timestamps as ISO-8601 with a Z, to the second, as a CRM export would have them."""
    cols = []
    for f, col in zip(table.schema, table.columns, strict=True):
        if pa.types.is_timestamp(f.type):
            arr = col.to_numpy(zero_copy_only=False).astype("datetime64[s]")
            text = np.where(
                np.isnat(arr), "", np.char.add(np.datetime_as_string(arr, unit="s"), "Z")
            )
            cols.append(pa.array(text, mask=np.isnat(arr), type=pa.string()))
        else:
            cols.append(col)
    return pa.Table.from_arrays(cols, schema=_csv_schema(table.schema))


# --- generation --------------------------------------------------------------------------


def _chunks(config: SimulationConfig) -> Iterator[_Chunk]:
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
        yield _simulate_chunk(
            np.random.default_rng(stream),
            first,
            n,
            config.n_leads,
            start_us,
            config.days,
            drift,
            config.accounts,
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


def _simulate_chunk(
    rng: np.random.Generator,
    first: int,
    n: int,
    total: int,
    start_us: int,
    days: float,
    drift: tuple[float, frozenset[str]] | None = None,
    accounts: AccountsConfig | None = None,
) -> _Chunk:
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
    path = _funnel_paths(rng, created, rates)
    obs_end = np.minimum(days, path["closed_at"])  # behaviour stops at close and at the end of data

    acts = _activities(rng, created, obs_end, z_behaviour, engager, email_kind, path, start_us)
    deals = _deals(rng, lead_ids, path, size, days)

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
    return _Chunk(leads_table, act_table, deal_table, pa.table(truth))


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


def _exp(rng: np.random.Generator, rate: np.ndarray) -> np.ndarray:
    """Exponential waiting times; infinite where the rate is zero."""
    with np.errstate(divide="ignore"):
        return np.where(
            rate > 0, rng.exponential(1.0, len(rate)) / np.where(rate > 0, rate, 1), np.inf
        )


def _funnel_paths(
    rng: np.random.Generator, created: np.ndarray, r: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Jump times of the funnel chain (days since start; inf where never reached)."""
    n = len(created)
    inf = np.full(n, np.inf)
    touch, cold0 = _exp(rng, r["rate_touch"]), _exp(rng, r["rate_new_cold"])
    qualify, cold1 = _exp(rng, r["rate_qualify"]), _exp(rng, r["rate_nurture_cold"])
    advance, lost1 = _exp(rng, r["rate_advance"]), _exp(rng, r["rate_opp1_lost"])
    win, lost2 = _exp(rng, r["rate_win"]), _exp(rng, r["rate_opp2_lost"])

    touched = touch < cold0
    touched_at = np.where(touched, created + touch, inf)
    qualified = touched & (qualify < cold1)
    qualified_at = np.where(qualified, touched_at + qualify, inf)
    cold_at = np.where(
        ~touched, created + cold0, np.where(touched & ~qualified, touched_at + cold1, inf)
    )
    advanced = qualified & (advance < lost1)
    advanced_at = np.where(advanced, qualified_at + advance, inf)
    won = advanced & (win < lost2)
    closed_at = np.where(
        qualified & ~advanced,
        qualified_at + lost1,
        np.where(advanced, advanced_at + np.minimum(win, lost2), inf),
    )
    final = np.where(won, fm.WON, np.where(qualified, fm.LOST, fm.DEAD))
    return {
        "touched_at": touched_at,
        "qualified_at": qualified_at,
        "advanced_at": advanced_at,
        "cold_at": cold_at,
        "closed_at": closed_at,
        "final_state": final,
    }


def state_at(path: dict[str, np.ndarray], t: np.ndarray) -> np.ndarray:
    """Funnel state of each lead at time `t` (same units as the path)."""
    state = np.full(len(t), fm.NEW)
    state = np.where(path["touched_at"] <= t, fm.NURTURE, state)
    state = np.where(path["qualified_at"] <= t, fm.OPP1, state)
    state = np.where(path["advanced_at"] <= t, fm.OPP2, state)
    state = np.where(path["cold_at"] <= t, fm.DEAD, state)
    return np.where(path["closed_at"] <= t, path["final_state"], state)


def _poisson_times(rng, lead, t0, t1, base, decay_from=None):
    """Events of a Poisson process per lead on [t0, t1): rate `base`, times exp(-age / tau)
    when `decay_from` (the creation time) is given. Returns (lead index, time) per event."""
    span = np.maximum(t1 - t0, 0.0)
    tau = fm.ENGAGEMENT_DECAY_DAYS
    if decay_from is None:
        mean = base * span
    else:
        age0 = t0 - decay_from
        mean = base * tau * (np.exp(-age0 / tau) - np.exp(-(age0 + span) / tau))
    counts = rng.poisson(np.maximum(mean, 0.0))
    idx = np.repeat(np.arange(len(lead)), counts)
    u = rng.random(len(idx))
    if decay_from is None:
        times = t0[idx] + u * span[idx]
    else:  # inverse CDF of the decaying density on [0, span)
        times = t0[idx] - tau * np.log1p(-u * (1 - np.exp(-span[idx] / tau)))
    return lead[idx], times


def _activities(
    rng, created, obs_end, z, engager, email_kind, path, start_us
) -> dict[str, np.ndarray]:
    n = len(created)
    leads = np.arange(n)
    type_code = {name: i for i, name in enumerate(fm.ACTIVITY_TYPES)}
    parts_lead, parts_t, parts_type = [], [], []

    def add(lead_idx, times, name_or_codes):
        parts_lead.append(lead_idx)
        parts_t.append(times)
        if isinstance(name_or_codes, str):
            name_or_codes = np.full(len(lead_idx), type_code[name_or_codes], dtype=np.int16)
        parts_type.append(name_or_codes)

    # Marketing behaviour by thinning: candidates at the highest state intensity, kept with
    # probability intensity(state at t) / max.
    active = engager & (obs_end > created)
    lead_a = leads[active]
    for name, (rate, beta) in fm.MARKETING.items():
        base = rate * np.exp(beta * z[lead_a]) * fm.MAX_INTENSITY
        li, t = _poisson_times(
            rng, lead_a, created[lead_a], obs_end[lead_a], base, decay_from=created[lead_a]
        )
        keep = rng.random(len(t)) < fm.STATE_INTENSITY[_state_for(path, li, t)] / fm.MAX_INTENSITY
        add(li[keep], t[keep], name)
        if name == "webinar_registration":
            li, t = li[keep], t[keep]
            attend = rng.random(len(t)) < 1 / (1 + np.exp(-0.8 * z[li]))
            t_att = t + rng.uniform(2, 10, len(t))
            ok = attend & (t_att < obs_end[li])
            add(li[ok], t_att[ok], "webinar_attendance")

    # Sales touches: the first one (a call, or a sales e-mail for a third) at the touch
    # time, then by funnel stage.
    first = path["touched_at"] < obs_end
    first_kind = np.where(
        rng.random(first.sum()) < 1 / 3, type_code["sales_email"], type_code["call"]
    )
    add(leads[first], path["touched_at"][first], first_kind.astype(np.int16))
    nurture_end = np.minimum.reduce([path["qualified_at"], path["cold_at"], obs_end])
    opp_end = np.minimum(path["closed_at"], obs_end)
    for name, rate in fm.SALES_NURTURE.items():
        li, t = _poisson_times(
            rng,
            leads[first],
            path["touched_at"][first],
            nurture_end[first],
            np.full(first.sum(), rate),
        )
        add(li, t, name)
    in_opp = path["qualified_at"] < obs_end
    for name, rate in fm.SALES_OPPORTUNITY.items():
        li, t = _poisson_times(
            rng,
            leads[in_opp],
            path["qualified_at"][in_opp],
            opp_end[in_opp],
            np.full(in_opp.sum(), rate),
        )
        add(li, t, name)

    lead_idx = np.concatenate(parts_lead)
    t = np.concatenate(parts_t)
    kind = np.concatenate(parts_type)

    # Negative signals: bounces at creation, unsubscribes over time; e-mail stops after either.
    bounce_p = np.select([email_kind == "free", email_kind == "student"], [0.08, 0.05], 0.03)
    bounced = rng.random(n) < bounce_p
    bounce_t = np.where(bounced, created + rng.uniform(0, 1, n), np.inf)
    unsub_t = created + _exp(rng, 0.004 * np.exp(-0.8 * z))
    email_stop = np.minimum(bounce_t, unsub_t)
    is_email = np.isin(kind, [type_code[k] for k in fm.EMAIL_TYPES])
    keep = ~(is_email & (t > email_stop[lead_idx]))
    lead_idx, t, kind = lead_idx[keep], t[keep], kind[keep]
    for name, times in (("email_bounce", bounce_t), ("unsubscribe", unsub_t)):
        ok = (times < obs_end) & ~((name == "unsubscribe") & (bounce_t < unsub_t))
        lead_idx = np.concatenate([lead_idx, leads[ok]])
        t = np.concatenate([t, times[ok]])
        kind = np.concatenate([kind, np.full(ok.sum(), type_code[name], dtype=np.int16)])

    order = np.lexsort((kind, t, lead_idx))
    lead_idx, t, kind = lead_idx[order], t[order], kind[order]

    value = np.full(len(t), np.nan)
    is_view = np.isin(kind, [type_code["page_view"], type_code["pricing_page_view"]])
    value[is_view] = np.round(rng.lognormal(np.log(40) + 0.2 * z[lead_idx[is_view]], 0.8), 1)
    value[kind == type_code["call"]] = np.round(
        rng.lognormal(np.log(300), 0.7, (kind == type_code["call"]).sum())
    )

    campaign = np.full(len(t), None, dtype=object)
    month = np.datetime_as_string(
        np.datetime64(start_us, "us") + (t * US_PER_DAY).astype("timedelta64[us]"), unit="M"
    )
    for names, prefix in (
        (("email_open", "email_click"), "newsletter-"),
        (("webinar_registration", "webinar_attendance"), "webinar-"),
        (("content_download",), "ebook-"),
    ):
        rows = np.isin(kind, [type_code[k] for k in names])
        campaign[rows] = np.char.add(prefix, month[rows].astype(str)).astype(object)
    return {"lead": lead_idx, "t": t, "type": kind, "value": value, "campaign": campaign}


def _state_for(path, lead_idx, t):
    sub = {k: v[lead_idx] for k, v in path.items()}
    return state_at(sub, t)


def _deals(rng, lead_ids, path, size, days) -> dict[str, np.ndarray]:
    """One opportunity per qualified lead, visible once created before the end of data."""
    lead = np.flatnonzero(path["qualified_at"] < days)
    created = path["qualified_at"][lead]
    closed_at = path["closed_at"][lead]
    is_closed = closed_at <= days
    status = np.where(
        is_closed, np.where(path["final_state"][lead] == fm.WON, "won", "lost"), "open"
    ).astype(object)
    size_scale = {
        "1-10": 4_000,
        "11-50": 9_000,
        "51-200": 20_000,
        "201-1000": 45_000,
        "1000+": 90_000,
    }
    scale = np.array([size_scale.get(s, 15_000) for s in size[lead]], dtype=float)
    amount = np.round(scale * rng.lognormal(0.0, 0.5, len(lead)), -2)
    return {
        "deal_id": np.array([f"D{lid[1:]}" for lid in lead_ids[lead]], dtype=object),
        "lead": lead,
        "created": created,
        "closed": np.where(is_closed, closed_at, np.inf),
        "status": status,
        "amount": amount,
    }
