"""CRM simulator: demo data, tests and benchmarks; it knows the true probabilities."""

from leadscore.simulation.simulator import SimulationConfig, simulate, simulate_apart

__all__ = ["SimulationConfig", "simulate", "simulate_apart"]
