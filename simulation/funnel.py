"""The simulator's generative model: profile effects, funnel chain and behaviour rates.

Each lead moves through a continuous-time Markov chain whose rates are fixed per lead:

    NEW --touch--> NURTURE --qualify--> OPP1 --advance--> OPP2 --win--> WON
     |                |                  |                  |
     +--cold--> DEAD  +--cold--> DEAD    +--lose--> LOST    +--lose--> LOST

The rates depend on latent interest `z`, the profile fit, a hidden factor `epsilon` that no
behaviour reveals, and the sales-response class (how fast sales calls back: a first touch
within five minutes multiplies the odds of an opportunity several-fold). Because the chain
is time-homogeneous, the exact probability of a win in `(t, t + h]` given the lead's state at
`t` is an entry of `expm(Q * h)`: see `leadscore.simulation.oracle`.
"""

from __future__ import annotations

import numpy as np

NEW, NURTURE, OPP1, OPP2, DEAD, WON, LOST = range(7)
STATE_NAMES = ("new", "nurture", "opportunity", "proposal", "cold", "won", "lost")

SOURCES = {
    "website": 0.28,
    "advertising": 0.15,
    "emailing": 0.10,
    "social": 0.10,
    "trade_show": 0.10,
    "partner": 0.08,
    "telemarketing": 0.10,
    "word_of_mouth": 0.09,
}
SOURCE_FIT = {
    "website": 0.0,
    "advertising": -0.3,
    "emailing": -0.2,
    "social": -0.4,
    "trade_show": 0.1,
    "partner": 0.5,
    "telemarketing": -0.3,
    "word_of_mouth": 0.4,
}

# (values, probabilities, fit effects, share missing)
INDUSTRY = (
    [
        "software",
        "finance",
        "healthcare",
        "manufacturing",
        "retail",
        "education",
        "government",
        "other",
    ],
    [0.22, 0.14, 0.12, 0.14, 0.12, 0.08, 0.06, 0.12],
    [0.3, 0.2, 0.1, 0.1, -0.1, -0.3, -0.2, -0.1],
    0.05,
)
COMPANY_SIZE = (
    ["1-10", "11-50", "51-200", "201-1000", "1000+"],
    [0.25, 0.25, 0.22, 0.16, 0.12],
    [-0.5, -0.1, 0.2, 0.4, 0.3],
    0.08,
)
JOB_ROLE = (
    ["c_level", "vp", "director", "manager", "individual_contributor", "student", "other"],
    [0.08, 0.07, 0.12, 0.25, 0.30, 0.08, 0.10],
    [0.4, 0.5, 0.4, 0.2, 0.0, -1.5, -0.3],
    0.06,
)
COUNTRY = (
    ["US", "GB", "DE", "FR", "IN", "BR", "CA", "AU", "NL", "ES"],
    [0.35, 0.10, 0.09, 0.07, 0.10, 0.06, 0.07, 0.05, 0.05, 0.06],
    [0.1, 0.1, 0.1, 0.0, -0.3, -0.2, 0.1, 0.0, 0.1, -0.1],
    0.02,
)
EMAIL_KIND_FIT = {"business": 0.0, "free": -0.6, "student": -1.2}
MISSING_FIT = -0.2

# Sales-response classes: prior per source (fast, same_day, slow, never), delay rate per
# day, and the bonus on the log-rate of qualification.
RESPONSE_CLASSES = ("fast", "same_day", "slow", "never")
RESPONSE_PRIOR = {
    "website": (0.30, 0.40, 0.22, 0.08),
    "advertising": (0.25, 0.40, 0.25, 0.10),
    "emailing": (0.15, 0.40, 0.35, 0.10),
    "social": (0.15, 0.35, 0.35, 0.15),
    "trade_show": (0.05, 0.35, 0.50, 0.10),
    "partner": (0.20, 0.50, 0.25, 0.05),
    "telemarketing": (0.35, 0.35, 0.25, 0.05),
    "word_of_mouth": (0.25, 0.45, 0.25, 0.05),
}
RESPONSE_RATE = np.array([24 * 60 / 2.0, 24 / 3.0, 1 / 4.0, 0.0])  # mean 2 min, 3 h, 4 days, never
RESPONSE_BONUS = np.array([2.0, 0.8, 0.0, 0.0])

# Funnel rates per day.
RATE_NEW_COLD = 1 / 30
RATE_QUALIFY = 0.005
RATE_NURTURE_COLD = 1 / 40
RATE_ADVANCE = 1 / 14
RATE_OPP1_LOST = 1 / 30
RATE_WIN = 1 / 20
RATE_OPP2_LOST = 1 / 25
HIDDEN_SD = 0.5

# Marketing behaviour: base rate per day at age 0 for z = 0, sensitivity to z.
MARKETING = {
    "page_view": (1.10, 0.6),
    "pricing_page_view": (0.11, 1.0),
    "content_download": (0.13, 0.7),
    "webinar_registration": (0.07, 0.7),
    "email_open": (0.80, 0.4),
    "email_click": (0.18, 0.8),
    "form_submission": (0.06, 0.6),
    "demo_request": (0.018, 1.2),
}
ENGAGEMENT_DECAY_DAYS = 25.0
# Behaviour intensity multiplier per funnel state (NEW, NURTURE, OPP1, OPP2, DEAD).
STATE_INTENSITY = np.array([1.0, 1.0, 1.5, 1.5, 0.15])
MAX_INTENSITY = STATE_INTENSITY.max()

# Sales touches per day while nurturing and during an opportunity (no age decay).
SALES_NURTURE = {"call": 0.04, "sales_email": 0.07}
SALES_OPPORTUNITY = {"meeting": 0.12, "call": 0.08, "sales_email": 0.15}
EMAIL_TYPES = ("email_open", "email_click", "sales_email")

ACTIVITY_TYPES = (
    *MARKETING,
    "webinar_attendance",
    "unsubscribe",
    "email_bounce",
    "call",
    "meeting",
    "sales_email",
)


def funnel_rates(
    z: np.ndarray, fit: np.ndarray, epsilon: np.ndarray, response: np.ndarray
) -> dict[str, np.ndarray]:
    """Per-lead transition rates (per day) of the funnel chain."""
    n = len(z)
    return {
        "rate_touch": RESPONSE_RATE[response],
        "rate_new_cold": np.full(n, RATE_NEW_COLD),
        "rate_qualify": RATE_QUALIFY * np.exp(0.9 * z + 0.8 * fit + RESPONSE_BONUS[response]),
        "rate_nurture_cold": np.full(n, RATE_NURTURE_COLD),
        "rate_advance": np.full(n, RATE_ADVANCE),
        "rate_opp1_lost": RATE_OPP1_LOST * np.exp(-0.5 * z),
        "rate_win": RATE_WIN * np.exp(0.4 * z + 0.4 * fit + epsilon),
        "rate_opp2_lost": np.full(n, RATE_OPP2_LOST),
    }


RATE_COLUMNS = tuple(funnel_rates(np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1, dtype=int)))


def generator_matrices(rates: dict[str, np.ndarray]) -> np.ndarray:
    """Generator matrices Q (n, 7, 7) of the funnel chain from per-lead rates."""
    n = len(rates["rate_touch"])
    q = np.zeros((n, 7, 7))
    q[:, NEW, NURTURE] = rates["rate_touch"]
    q[:, NEW, DEAD] = rates["rate_new_cold"]
    q[:, NURTURE, OPP1] = rates["rate_qualify"]
    q[:, NURTURE, DEAD] = rates["rate_nurture_cold"]
    q[:, OPP1, OPP2] = rates["rate_advance"]
    q[:, OPP1, LOST] = rates["rate_opp1_lost"]
    q[:, OPP2, WON] = rates["rate_win"]
    q[:, OPP2, LOST] = rates["rate_opp2_lost"]
    idx = np.arange(7)
    q[:, idx, idx] = -q.sum(axis=2)
    return q
