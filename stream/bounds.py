"""How much the online store keeps of one lead, and how long it holds events for a lead that
has not come: every per-lead structure is bounded, so one CRM record (or one runaway
integration) cannot grow a lead's state until every later event on it is slow.

Beyond a bound, an event is refused, never truncated: `LimitError` (413) when one event is
too big by itself, `PayloadError` (422) when the lead's stored state would pass the bound;
both name `events[i].<field>` and the limit. The bounds are the service's settings
(`leadscore.serving.config.ServeConfig`, `LEADSCORE_MAX_PROFILE_KEYS`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from leadscore.crm.errors import PayloadError
from leadscore.crm.times import US_PER_DAY

# The widest a profile value may be anywhere: the typed schema's bound (leadscore.serving.schemas)
MAX_VALUE_CHARS = 1024


class LimitError(PayloadError):
    """One event bigger than a bound allows by itself (the service answers 413)."""

    status = 413


@dataclass(frozen=True)
class Bounds:
    """What one lead's state may hold."""

    max_profile_keys: int = 200  # profile fields of a lead (one event's and the merged state's)
    max_key_chars: int = 128  # a profile field's name
    max_value_chars: int = MAX_VALUE_CHARS  # a profile value's text
    max_deals: int = 200  # deals of a lead
    max_held: int = 1_000  # events held for a lead the store does not know yet
    held_days: float = 7.0  # how long they are held before they are dropped (and counted)

    def __post_init__(self) -> None:
        for name in ("max_profile_keys", "max_key_chars", "max_value_chars", "max_deals"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_value_chars > MAX_VALUE_CHARS:
            raise ValueError(f"max_value_chars is at most {MAX_VALUE_CHARS} (the schema's bound)")
        if self.max_held < 0 or self.held_days <= 0:
            raise ValueError("max_held must be at least 0 and held_days above 0")

    @property
    def held_us(self) -> int:
        return int(round(self.held_days * US_PER_DAY))
