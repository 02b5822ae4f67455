"""Data contract, loading and validation, point-in-time features, rules.

Imports nothing else of ours, so that `serving` and `training` can both depend on it.
"""

from features.errors import DatasetError, LeadscoreError
from features.loading import Dataset, load_dataset

__all__ = ["Dataset", "DatasetError", "LeadscoreError", "load_dataset"]
