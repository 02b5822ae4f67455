"""The CRM side: data contract, loading and validation, import of foreign exports, dataset
rows -> CRM payloads, and the project's error types.

Imports nothing else of ours: every other package builds on it.
"""

from leadscore.crm.dataset import Dataset
from leadscore.crm.errors import ConfigError, DatasetError, LeadscoreError
from leadscore.crm.loading import load_dataset

__all__ = ["ConfigError", "Dataset", "DatasetError", "LeadscoreError", "load_dataset"]
