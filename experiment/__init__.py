"""Randomised hand-off experiments: which arm a lead is in, the experiments' records, each
arm's hand-off policy, and the readout (`docs/experiments.md`)."""
