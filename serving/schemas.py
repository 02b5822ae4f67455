"""The request and response schemas of `/score` and `/metadata`: the CRM integrator's
contract, as the OpenAPI document shows it.

TypedDicts validated by pydantic, chosen by measurement (`benchmarks/serving.py`,
`schema_validation`, best of 5): validating a request into them costs 1.05x parsing it into
untyped dicts for 1,000 leads (20.0 ms against 19.0, of a 370 ms request) and 5 µs more for
one lead (0.034 ms against 0.029, of a 4.7 ms request), and they come out as plain dicts,
which the featurizer reads as they are (pydantic models would add a `model_dump` of 69 ms
per 1,000 leads).

What a schema cannot say is checked by the featurizer and named in a 422 (`field`): a
timestamp that is not ISO-8601 or outside 1970-2199, an event after `as_of`, a duplicate
lead id. Sizes that operators configure (`LEADSCORE_MAX_LEADS`, `..._MAX_ACTIVITIES`) are
413s, not schema bounds.
"""

from __future__ import annotations

from typing import Annotated, Literal, NotRequired

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict

EXAMPLE_TIME = "2025-03-14T09:30:00Z"

Timestamp = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        description="ISO-8601 date-time; UTC when it has no offset; 1970 to 2199",
        examples=[EXAMPLE_TIME],
        json_schema_extra={"format": "date-time"},
    ),
]
Text = Annotated[str, Field(max_length=1024)]


def optional_time(description: str, examples: list[str] | None = None):
    """An optional ISO-8601 date-time field (null allowed) with its description."""
    return Annotated[
        str | None,
        Field(
            max_length=64,
            description=description,
            examples=examples,
            json_schema_extra={"format": "date-time"},
        ),
    ]


Number = Annotated[float, Field(allow_inf_nan=False)]
# Payloads are dicts: unknown keys are kept (and ignored), so a CRM can send its own.
_OPEN = ConfigDict(extra="allow", allow_inf_nan=False)


class Activity(TypedDict):
    """One touch of the lead's history: a visit, an e-mail opened, a webinar, a call..."""

    __pydantic_config__ = _OPEN
    activity_type: Annotated[
        str,
        Field(
            min_length=1,
            max_length=128,
            description="the CRM's activity type; types the model never saw count in the totals only",
            examples=["webinar_attendance"],
        ),
    ]
    occurred_at: Timestamp
    value: NotRequired[
        Annotated[Number | None, Field(description="e.g. seconds on the page", examples=[42])]
    ]
    campaign: NotRequired[Annotated[str | None, Field(max_length=256)]]


class Deal(TypedDict):
    """An opportunity of the lead: open ones at `as_of` count as open deals."""

    __pydantic_config__ = _OPEN
    deal_id: NotRequired[Annotated[str | None, Field(max_length=256, examples=["D-1041"])]]
    created_at: Timestamp
    closed_at: NotRequired[optional_time("empty while open")]
    status: NotRequired[Literal["open", "won", "lost"] | None]
    amount: NotRequired[Number | None]


class Lead(TypedDict):
    """A lead as the CRM knows it at `as_of`: profile, first-touch source, history."""

    __pydantic_config__ = _OPEN
    lead_id: Annotated[
        str,
        Field(
            min_length=1,
            max_length=256,
            description="the CRM's id; unique within a request",
            examples=["L-000123"],
        ),
    ]
    created_at: Timestamp
    source: NotRequired[
        Annotated[
            str | None,
            Field(max_length=256, description="first-touch source", examples=["webinar"]),
        ]
    ]
    account_id: NotRequired[
        Annotated[
            str | None,
            Field(
                max_length=256,
                description="the account (company) the lead belongs to, if any",
                examples=["A-0042"],
            ),
        ]
    ]
    profile: NotRequired[
        Annotated[
            dict[str, Annotated[str, Field(max_length=1024)] | Number | bool | None],
            Field(
                description="profile attributes by column name (text or numbers)",
                examples=[
                    {"industry": "software", "company_size": "51-200", "job_role": "director"}
                ],
            ),
        ]
    ]
    activities: NotRequired[list[Activity]]
    deals: NotRequired[list[Deal]]
    as_of: NotRequired[optional_time("this lead's own as_of, when the request has none")]


class Reason(TypedDict):
    feature: Annotated[
        str, Field(description="the column or activity type", examples=["webinar_attendance"])
    ]
    text: Annotated[str, Field(examples=["2 webinar attendances in the last 30 days"])]
    contribution: Annotated[float, Field(description="log-odds added (TreeSHAP)", examples=[0.41])]


class Reasons(TypedDict):
    positive: list[Reason]
    negative: list[Reason]


class ModelRef(TypedDict):
    name: Annotated[str, Field(examples=["lead-scoring"])]
    version: Annotated[str, Field(examples=["7"])]


class LeadScore(TypedDict):
    lead_id: str
    probability: Annotated[
        float,
        Field(gt=0, lt=1, description="calibrated P(won deal within the horizon)", examples=[0.27]),
    ]
    score: Annotated[
        int, Field(ge=0, le=100, description="round(100 * probability)", examples=[27])
    ]
    grade: Annotated[Literal["A", "B", "C", "D"], Field(examples=["B"])]
    beyond_trained_age: Annotated[
        bool,
        Field(
            description="the lead is older than the oldest age the model learned from: its "
            "probability follows the history's decline of the win rate with age (see /metadata)",
            examples=[False],
        ),
    ]
    p_low: NotRequired[
        Annotated[
            float,
            Field(
                gt=0,
                lt=1,
                description="low end of the Venn-Abers interval of the probability (absent for "
                "a model trained before intervals)",
                examples=[0.24],
            ),
        ]
    ]
    p_high: NotRequired[
        Annotated[
            float,
            Field(gt=0, lt=1, description="high end of the interval", examples=[0.31]),
        ]
    ]
    review: NotRequired[
        Annotated[
            bool,
            Field(
                description="the interval is wider than the model's review width "
                "(/metadata): a person should look before sales acts on the score; such a "
                "lead is not handed off automatically",
                examples=[False],
            ),
        ]
    ]
    reasons: NotRequired[Reasons]
    rule_score: Annotated[
        int | None, Field(description="marketing's points (null: no rules)", examples=[60])
    ]
    rule_grade: Annotated[str | None, Field(examples=["B"])]
    mql: Annotated[bool | None, Field(description="rule score at or above the MQL threshold")]
    rule_probability: NotRequired[float | None]
    model: ModelRef


class ScoreResponse(TypedDict):
    as_of: Annotated[
        str, Field(description="the time the leads were scored at", examples=[EXAMPLE_TIME])
    ]
    scores: list[LeadScore]


class AccountScore(TypedDict):
    account_id: str
    probability: Annotated[
        float,
        Field(
            gt=0,
            lt=1,
            description="calibrated P(the account has a won deal within the horizon), learned "
            "at account level (not a product of its contacts' probabilities)",
            examples=[0.41],
        ),
    ]
    score: Annotated[int, Field(ge=0, le=100, examples=[41])]
    grade: Annotated[Literal["A", "B", "C", "D"], Field(examples=["A"])]
    p_low: Annotated[float, Field(gt=0, lt=1, description="Venn-Abers interval, low end")]
    p_high: Annotated[float, Field(gt=0, lt=1, description="Venn-Abers interval, high end")]
    review: Annotated[
        bool, Field(description="the interval is wider than the review width: a person looks first")
    ]
    contacts: Annotated[
        int, Field(ge=1, description="contacts in play: the payloads without a closed deal")
    ]
    reasons: NotRequired[Reasons]
    model: ModelRef


class AccountScoreResponse(TypedDict):
    as_of: Annotated[str, Field(examples=[EXAMPLE_TIME])]
    account: AccountScore


# --- the event stream: POST /events, GET /leads/{lead_id} -----------------------------

EventId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=256,
        description="the CRM's id of the event: a retry sends the same, and changes nothing",
        examples=["evt-000481"],
    ),
]
LeadId = Annotated[str, Field(min_length=1, max_length=256, examples=["L-000123"])]


class LeadEvent(TypedDict):
    """A lead created (its first event) or updated (profile fields given replace the stored
    ones; null removes one). `created_at` and the first-touch `source` are set once."""

    __pydantic_config__ = _OPEN
    event_id: EventId
    type: Literal["lead"]
    lead_id: LeadId
    occurred_at: Timestamp
    created_at: NotRequired[optional_time("required on the lead's first event")]
    source: NotRequired[Annotated[str | None, Field(max_length=256, examples=["website"])]]
    profile: NotRequired[dict[str, Annotated[str, Field(max_length=1024)] | Number | bool | None]]


class ActivityEvent(TypedDict):
    """Something the lead did (or sales did with it): a visit, a webinar, a call..."""

    __pydantic_config__ = _OPEN
    event_id: EventId
    type: Literal["activity"]
    lead_id: LeadId
    occurred_at: Timestamp
    activity_type: Annotated[
        str, Field(min_length=1, max_length=128, examples=["webinar_attendance"])
    ]
    value: NotRequired[Annotated[Number | None, Field(examples=[30])]]
    campaign: NotRequired[Annotated[str | None, Field(max_length=256)]]


class DealEvent(TypedDict):
    """A deal opened or changed (its latest known state, by `deal_id`)."""

    __pydantic_config__ = _OPEN
    event_id: EventId
    type: Literal["deal"]
    lead_id: LeadId
    occurred_at: Timestamp
    deal_id: Annotated[str, Field(min_length=1, max_length=256, examples=["D-1041"])]
    status: Literal["open", "won", "lost"]
    created_at: Timestamp
    closed_at: NotRequired[optional_time("null while open; required when won or lost")]
    amount: NotRequired[Number | None]


Event = Annotated[LeadEvent | ActivityEvent | DealEvent, Field(discriminator="type")]


class EventScore(LeadScore):
    as_of: Annotated[str, Field(description="the time the lead was rescored at")]
    trend: Annotated[
        Literal["improving", "steady", "declining", "not enough history"],
        Field(description="against the lead's previous scores"),
    ]
    open: Annotated[bool, Field(description="no won or lost deal closed by as_of")]
    handoff: Annotated[
        bool, Field(description="this event lifted the lead over the hand-off line: handed off")
    ]


class EventsResponse(TypedDict):
    accepted: Annotated[int, Field(description="events applied now (held ones included)")]
    duplicates: Annotated[int, Field(description="events applied before: skipped")]
    held: Annotated[
        int, Field(description="events of leads not known yet, kept until their lead event")
    ]
    scores: list[EventScore]


class LastScore(TypedDict):
    as_of: str
    scored_at: str
    probability: float
    score: int
    grade: str
    rule_score: int | None
    rule_grade: str | None
    mql: bool | None
    trend: str
    handoff: bool


class SpeedToLead(TypedDict):
    created_at: str
    first_scored_at: str | None
    handed_off_at: str | None
    first_sales_touch_at: str | None
    seconds_to_first_score: float | None
    seconds_to_handoff: float | None
    seconds_to_first_sales_touch: float | None


class RefusedEvent(TypedDict):
    event_id: str
    reason: str


class LeadState(EventScore):
    """`GET /leads/{lead_id}`: the lead scored from its stored state at as_of."""

    last_scores: list[LastScore]
    speed_to_lead: SpeedToLead
    activities_kept: Annotated[int, Field(description="activities kept as rows")]
    activities_folded: Annotated[
        int, Field(description="older activities kept as totals (counts, recency, decay)")
    ]
    approximate: Annotated[
        bool,
        Field(description="more activities than the state keeps as rows: windowed counts low"),
    ]
    refused_events: Annotated[
        list[RefusedEvent],
        Field(description="events held for the lead that its lead event contradicted"),
    ]
    held_dropped: Annotated[
        int,
        Field(
            description="events held for the lead that were dropped before it came (held "
            "longer than LEADSCORE_HELD_DAYS): not applied"
        ),
    ]


class Error(BaseModel):
    """Every 4xx and 503: what is wrong and where."""

    error: str = Field(description="what is wrong", examples=["after as_of"])
    field: str = Field(
        description="the field that is wrong (a path into the request), or body / Authorization",
        examples=["leads[0].activities[3].occurred_at"],
    )


class Metadata(BaseModel):
    """`GET /metadata`: the model being served."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(examples=["lead-scoring"])
    version: str = Field(examples=["7"])
    alias: str | None = Field(None, examples=["champion"])
    pinned: bool = Field(
        False,
        description="the version was resolved from the alias once, when the server started, "
        "and every worker serves it; a promotion since takes effect at the next reload "
        "(SIGHUP to `leadscore serve`)",
    )
    source: str = Field(description="registry (credentials masked), bento model or folder")
    feature_set_version: str
    calibration: str
    interval: str | None = Field(
        None,
        description="how p_low and p_high are made (venn-abers: inductive Venn-Abers on the "
        "calibration rows); null for a model trained before intervals",
    )
    interval_review_width: float | None = Field(
        None,
        description="an interval wider than this sets `review` and holds the automatic hand-off",
    )
    oldest_trained_age_days: float | None = Field(
        None,
        description="the oldest lead age the model learned from enough matured snapshots of "
        "(days); an older lead is flagged beyond_trained_age",
    )
    past_trained_ages: str | None = Field(
        None,
        description="what the probability of a lead older than that is: the history's decline "
        "of the win rate with age, in words",
    )
    trained_to: str | None = Field(
        None,
        description="the newest snapshot the model learned from (a refit on every matured "
        "snapshot: one horizon before its data's end)",
    )
    rules_version: str | None = None
    mql_threshold: float | None = None
    account_model: bool = Field(
        False, description="an account model is loaded: POST /accounts/score answers"
    )
    segment_champions: list[str] = Field(
        default_factory=list,
        description="segments served by a model of their own (the others: the shared model)",
    )


EXAMPLE_REQUEST = {
    "leads": [
        {
            "lead_id": "L-000123",
            "created_at": "2025-03-01T10:00:00Z",
            "source": "webinar",
            "profile": {"industry": "software", "company_size": "51-200", "job_role": "director"},
            "activities": [
                {"activity_type": "page_view", "occurred_at": "2025-03-02T08:00:00Z", "value": 42},
                {"activity_type": "webinar_attendance", "occurred_at": "2025-03-10T16:00:00Z"},
            ],
            "deals": [],
        }
    ],
    "as_of": EXAMPLE_TIME,
    "reasons": True,
}


EXAMPLE_EVENTS = {
    "events": [
        {
            "event_id": "evt-1",
            "type": "lead",
            "lead_id": "L-000124",
            "occurred_at": "2025-03-14T09:00:00Z",
            "created_at": "2025-03-14T09:00:00Z",
            "source": "website",
            "profile": {"industry": "software", "job_role": "director"},
        },
        {
            "event_id": "evt-2",
            "type": "activity",
            "lead_id": "L-000124",
            "occurred_at": "2025-03-14T09:20:00Z",
            "activity_type": "webinar_attendance",
            "value": 30,
        },
    ],
    "as_of": EXAMPLE_TIME,
}
