"""Point-in-time features: config, definitions, snapshots and labels, the batch (DuckDB) and
online (NumPy) engines, training-set files. Imports only `crm`."""
