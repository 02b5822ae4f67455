"""Marketing's points rules (config, one scorer for batch and online), the learned
scorecard, and calibration (points or raw scores -> probabilities). Imports `crm`, `features`."""
