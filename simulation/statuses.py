"""Simulated lead-status history: what sales did with each lead it worked (the `lead_status`
table, written only when asked: `SimulationConfig.lead_status`).

Sales marks a lead "Working - Contacted" at its first touch, then decides: a lead that
qualifies (an opportunity opens) before sales gets round to deciding is "Qualified" then;
any other is judged some days after the touch on what sales sees (the profile's fit, the
lead's interest) and on what it senses of the outcome, so the leads that go on to win are
accepted more often, and a few rejected leads still qualify later (sales was wrong: the
status moves to "Qualified" again). A rejection carries a reason drawn from the profile.
"""

from __future__ import annotations

import numpy as np

from leadscore.simulation import funnel as fm

# Days from the first touch to sales' decision, on average.
DECISION_DAYS = 3.0
OWNERS = tuple(f"rep-{i:02d}" for i in range(1, 9))
GENERIC_REASONS = ("bad timing", "wrong contact", "no budget", "no response")
GENERIC_WEIGHTS = (0.30, 0.25, 0.25, 0.20)


def simulate_statuses(
    rng: np.random.Generator,
    path: dict[str, np.ndarray],
    z: np.ndarray,
    fit: np.ndarray,
    role: np.ndarray,
    email_kind: np.ndarray,
    size: np.ndarray,
    days: float,
) -> dict[str, np.ndarray]:
    """Status changes (lead index, day, status, reason or None, owner) before the data's end,
    in time order per lead."""
    n = len(z)
    touched = path["touched_at"] < days
    decide_at = path["touched_at"] + rng.exponential(DECISION_DAYS, n)
    qualified_first = path["qualified_at"] <= decide_at
    won = path["final_state"] == fm.WON
    accept_p = 1 / (1 + np.exp(-(0.4 + 1.0 * z + 0.8 * fit + 1.5 * won)))
    accepted = qualified_first | (rng.random(n) < accept_p)
    decided_at = np.where(qualified_first, path["qualified_at"], decide_at)
    reason = _reasons(rng, role, email_kind, size)
    owner = np.asarray(OWNERS, dtype=object)[rng.integers(len(OWNERS), size=n)]

    lead, day, status, why = [], [], [], []

    def add(mask: np.ndarray, when: np.ndarray, text: str, reasons=None) -> None:
        idx = np.flatnonzero(mask & (when < days))
        lead.append(idx)
        day.append(when[idx])
        status.append(np.full(len(idx), text, dtype=object))
        why.append(reasons[idx] if reasons is not None else np.full(len(idx), None, dtype=object))

    add(touched, path["touched_at"], "Working - Contacted")
    add(touched & accepted, decided_at, "Qualified")
    add(touched & ~accepted, decided_at, "Unqualified", reason)
    # Rejected, and an opportunity opened later all the same: the status follows the deal.
    add(
        touched & ~accepted & (path["qualified_at"] > decided_at), path["qualified_at"], "Qualified"
    )

    lead_idx = np.concatenate(lead)
    when = np.concatenate(day)
    order = np.lexsort((when, lead_idx))
    return {
        "lead": lead_idx[order],
        "t": when[order],
        "status": np.concatenate(status)[order],
        "reason": np.concatenate(why)[order],
        "owner": owner[lead_idx[order]],
    }


def _reasons(
    rng: np.random.Generator, role: np.ndarray, email_kind: np.ndarray, size: np.ndarray
) -> np.ndarray:
    """The reason sales would give for turning each lead down, from what it sees."""
    n = len(role)
    out = np.asarray(GENERIC_REASONS, dtype=object)[
        rng.choice(len(GENERIC_REASONS), size=n, p=GENERIC_WEIGHTS)
    ]
    u = rng.random(n)
    out[(size == "1-10") & (u < 0.5)] = "too small"
    out[(email_kind == "free") & (u < 0.6)] = "no company e-mail"
    out[((role == "student") | (email_kind == "student")) & (u < 0.8)] = "student"
    return out
