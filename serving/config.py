"""`ServeConfig`: where the model comes from, who may call, how big a request may be.

Read from the environment when the service starts (secrets never come from files in git).
"""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field

from leadscore.scoring.model_ref import CHAMPION_ALIAS, DEFAULT_MODEL_NAME

ENV_PREFIX = "LEADSCORE_"


def env_name(field: str) -> str:
    """The environment variable of a ServeConfig field (`api_keys`: comma-separated)."""
    return ENV_PREFIX + field.upper()


class ServeConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model_name: str = Field(DEFAULT_MODEL_NAME, description="the registered model to serve")
    model_alias: str = Field(CHAMPION_ALIAS, description="the alias whose version is served")
    model_version: str | None = Field(
        None,
        description="the version every worker loads: pinned by `leadscore serve` when it "
        "resolves the alias at start (a promotion moves the alias, not a running server)",
    )
    scorer_path: str | None = Field(
        None, description="a saved LeadScorer folder to serve instead of the registry's model"
    )
    api_keys: tuple[str, ...] = Field(
        (), description="the keys callers send as `Authorization: Bearer <key>` (comma-separated)"
    )
    max_leads: int = Field(1_000, ge=1, description="leads in one request, at most")
    max_activities: int = Field(10_000, ge=1, description="activities of one lead, at most")
    max_body_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="bytes of one request body, at most (413 beyond)"
    )
    # Adaptive batching (leadscore.serving.batching).
    batch_max_leads: int = Field(
        64, ge=1, description="concurrent requests are merged up to this many leads (1: never)"
    )
    batch_wait_ms: float = Field(
        0.0, ge=0, le=1_000, description="how long a lone request may wait for company (0: never)"
    )
    batch_inline_leads: int = Field(
        8, ge=0, description="calls of at most this many leads run on the event loop, not a thread"
    )
    # The event stream (POST /events, GET /leads/{id}; stream/).
    state_url: str | None = Field(
        None,
        description="the online store of lead states: sqlite:///path, postgresql://... or "
        "redis://... (default: lead_state.sqlite in the serving folder)",
    )
    webhook_url: str | None = Field(
        None, description="where hand-offs go, signed with LEADSCORE_WEBHOOK_SECRET"
    )
    history_url: str | None = Field(
        None,
        description="the score history's store whose hand-off experiments the stream follows "
        "(a DuckDB file or a SQLAlchemy URL; `leadscore serve --history` sets it)",
    )
    handoff_grades: str = Field("A", description="model grades above the hand-off line")
    handoff_mql: bool = Field(True, description="the rules' MQL flag puts a lead above the line")
    max_events: int = Field(1_000, ge=1, description="events in one request, at most")
    events_merge: int = Field(
        500,
        ge=1,
        description="a worker's concurrent /events requests are applied in one store run of "
        "up to this many events (1: each request alone)",
    )
    events_bulk: int = Field(
        50,
        ge=1,
        description="/events requests of more events than this run in a lane of their own "
        "(one-event calls never wait behind a sync)",
    )
    events_backlog: int = Field(
        5_000, ge=1, description="events waiting in a worker, at most (429 with Retry-After beyond)"
    )
    # What one lead's state may hold (leadscore.stream.bounds): beyond, a 413 or a 422.
    max_profile_keys: int = Field(200, ge=1, description="profile fields of a lead, at most")
    max_profile_key_chars: int = Field(128, ge=1, description="a profile field's name, at most")
    max_profile_value_chars: int = Field(
        1024, ge=1, le=1024, description="a profile value's text, at most (1,024: the schema's)"
    )
    max_deals: int = Field(200, ge=1, description="deals of a lead, at most")
    max_held: int = Field(
        1_000, ge=0, description="events held for a lead not known yet (until its lead event)"
    )
    held_days: float = Field(
        7.0, gt=0, description="how long events wait for their lead before they are dropped"
    )

    def bounds(self):
        """The stream's per-lead bounds (`leadscore.stream.bounds.Bounds`) of these settings."""
        from leadscore.stream.bounds import Bounds

        return Bounds(
            max_profile_keys=self.max_profile_keys,
            max_key_chars=self.max_profile_key_chars,
            max_value_chars=self.max_profile_value_chars,
            max_deals=self.max_deals,
            max_held=self.max_held,
            held_days=self.held_days,
        )

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ServeConfig:
        env = dict(os.environ if env is None else env)
        raw = env.get(env_name("api_keys"), "")
        keys = tuple(k.strip() for k in raw.split(",") if k.strip())
        values = {name: env.get(env_name(name)) for name in cls.model_fields if name != "api_keys"}
        return cls(api_keys=keys, **{k: v for k, v in values.items() if v})

    def __repr__(self) -> str:  # keys never appear in logs
        from leadscore.crm.secrets import masked_url

        state = masked_url(self.state_url) if self.state_url else "default"
        hook = masked_url(self.webhook_url) if self.webhook_url else None
        return (
            f"ServeConfig(model={self.model_name}@{self.model_alias}, scorer_path="
            f"{self.scorer_path}, api_keys=<{len(self.api_keys)} keys>, state={state}, "
            f"webhook={hook})"
        )

    __str__ = __repr__
