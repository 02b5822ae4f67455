"""CRM simulator: demo data, tests and benchmarks; it knows the true probabilities."""

from leadscore.simulation.config import SimulationConfig
from leadscore.simulation.simulator import simulate, simulate_apart

__all__ = ["SimulationConfig", "simulate", "simulate_apart"]
