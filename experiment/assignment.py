"""Which arm a lead is in: a keyed hash of the experiment's name and the lead id.

The same (experiment, lead) gives the same arm in every process, on every machine and on
every day (no random state, no Python `hash()`), and nothing about the lead but its id goes
in, so the arm is independent of its source, profile and score. Each experiment keys its own
hash with its name: the arms of two experiments are independent of each other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

RULES, MODEL = "rules", "model"
ARMS = (RULES, MODEL)
_PERSON = b"leadscore-arm"  # blake2b's personalisation: this hash, not any other of ours


def unit_of(experiment: str, lead_id: str) -> float:
    """The lead's point in [0, 1): 64 bits of blake2b keyed with the experiment's name."""
    key = hashlib.blake2b(experiment.encode("utf-8"), digest_size=32).digest()
    digest = hashlib.blake2b(
        str(lead_id).encode("utf-8"), digest_size=8, key=key, person=_PERSON
    ).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def units(experiment: str, lead_ids: Iterable[str]) -> np.ndarray:
    """`unit_of` for many leads (float64)."""
    return np.fromiter((unit_of(experiment, i) for i in lead_ids), dtype=np.float64)


def arm_of(experiment: str, lead_id: str, share: float) -> str:
    """`model` when the lead's point falls below `share` (the model arm's share), else
    `rules`."""
    return MODEL if unit_of(experiment, lead_id) < share else RULES


def in_model_arm(experiment: str, lead_ids: Iterable[str], share: float) -> np.ndarray:
    """Per lead: True in the model arm (bool array)."""
    return units(experiment, lead_ids) < share
