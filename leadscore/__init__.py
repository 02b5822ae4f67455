"""The `leadscore` console script: the single entry point for every job."""
