"""Which model: the registered model's default name, the champion's URI, and `ModelRef`
(a registered name and version, or a saved folder's path and "local").

One definition for every floor that names a model: training's config, the registry
commands, batch scoring's files and history, the server's config and `/metadata`
(whose `model` field is `ModelRef`'s wire form, `leadscore.serving.schemas.ModelRef`).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MODEL_NAME = "lead-scoring"
CHAMPION_ALIAS = "champion"
DEFAULT_MODEL_URI = f"models:/{DEFAULT_MODEL_NAME}@{CHAMPION_ALIAS}"
LOCAL_VERSION = "local"  # the version of a scorer loaded from a folder


@dataclass(frozen=True)
class ModelRef:
    """Which model scored: its registered name and version (a folder: its path, "local")."""

    name: str
    version: str
