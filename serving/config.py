"""`ServeConfig`: where the model comes from, who may call, how big a request may be.

Read from the environment when the service starts (secrets never come from files in git).
"""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field

from scoring.model_ref import CHAMPION_ALIAS, DEFAULT_MODEL_NAME


class ServeConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model_name: str = DEFAULT_MODEL_NAME
    model_alias: str = CHAMPION_ALIAS
    scorer_path: str | None = None  # a saved LeadScorer folder instead of the registry
    api_keys: tuple[str, ...] = ()
    max_leads: int = Field(1_000, ge=1)
    max_activities: int = Field(10_000, ge=1)
    max_body_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    # Adaptive batching (serving.batching): concurrent requests merged up to this many leads
    # (1 turns merging off), and how long a lone request may wait for company (0: never).
    batch_max_leads: int = Field(64, ge=1)
    batch_wait_ms: float = Field(0.0, ge=0, le=1_000)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ServeConfig:
        env = dict(os.environ if env is None else env)
        keys = tuple(k.strip() for k in env.get("LEADSCORE_API_KEYS", "").split(",") if k.strip())
        values = {
            "model_name": env.get("LEADSCORE_MODEL_NAME"),
            "model_alias": env.get("LEADSCORE_MODEL_ALIAS"),
            "scorer_path": env.get("LEADSCORE_SCORER_PATH"),
            "max_leads": env.get("LEADSCORE_MAX_LEADS"),
            "max_activities": env.get("LEADSCORE_MAX_ACTIVITIES"),
            "max_body_bytes": env.get("LEADSCORE_MAX_BODY_BYTES"),
            "batch_max_leads": env.get("LEADSCORE_BATCH_MAX_LEADS"),
            "batch_wait_ms": env.get("LEADSCORE_BATCH_WAIT_MS"),
        }
        return cls(api_keys=keys, **{k: v for k, v in values.items() if v})

    def __repr__(self) -> str:  # keys never appear in logs
        return f"ServeConfig(model={self.model_name}@{self.model_alias}, scorer_path={self.scorer_path}, api_keys=<{len(self.api_keys)} keys>)"

    __str__ = __repr__
