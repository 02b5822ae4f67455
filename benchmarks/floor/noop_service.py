"""A BentoML service that parses the same request as /score (the same typed schema) and
scores nothing.

`benchmarks/serving.py` drives it with the same load as the real endpoint: its req/s is
what BentoML itself (HTTP, request validation, JSON, worker hand-off) allows on this
machine, the ceiling any BentoML scoring endpoint can reach here. Named `leadscore` so
that the benchmark's worker settings apply to it unchanged.
"""

from __future__ import annotations

from typing import Any

import bentoml

from leadscore.serving.schemas import Lead


@bentoml.service(name="leadscore")
class NoOp:
    @bentoml.api(route="/score")
    def score(
        self, leads: list[Lead], as_of: str | None = None, reasons: bool = True
    ) -> dict[str, Any]:
        return {"scores": [{"lead_id": lead.get("lead_id"), "probability": 0.0} for lead in leads]}
