"""What to simulate: the size, seed and period of a simulated CRM, its planted drift and its
B2B accounts (buying groups)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator


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
    # Also write `lead_status` (what sales did with each lead it worked: working, qualified,
    # unqualified with a reason). Off: exactly the files of the same seed without it.
    lead_status: bool = False

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
