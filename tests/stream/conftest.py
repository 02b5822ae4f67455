from __future__ import annotations

import copy

import pytest


@pytest.fixture(scope="session")
def ruled(trained, served_rules):
    """The test model with the points rules packed next to it (as the endpoint serves it)."""
    scorer = copy.copy(trained.scorer)
    scorer.rules = served_rules
    return scorer
