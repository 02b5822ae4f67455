"""A simulated lead's activities: marketing behaviour thinned by its funnel state, sales
touches by stage, bounces and unsubscribes that stop e-mail, values and campaigns."""

from __future__ import annotations

import numpy as np

from leadscore.crm.times import US_PER_DAY
from leadscore.simulation import funnel as fm
from leadscore.simulation.paths import exp_times, state_for


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


def simulate_activities(
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
        keep = rng.random(len(t)) < fm.STATE_INTENSITY[state_for(path, li, t)] / fm.MAX_INTENSITY
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
    unsub_t = created + exp_times(rng, 0.004 * np.exp(-0.8 * z))
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
