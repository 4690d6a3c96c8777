"""The simulator: replays a fleet and a workload mix through the platform services' own policies, in
virtual time, once without WI and once with it, and reports what the hints save.

``simulate`` runs a ``Scenario`` (``load_scenario`` finds a built-in one or reads a file); ``summary``
turns the outcome into figures, ``print_table`` and ``write`` show and save them. See the README's
section "The simulator".
"""

from .prices import PAPER_SAVING_PCT
from .report import print_table, summary, write
from .scenario import SCENARIOS, Scenario, ScenarioError, load_scenario
from .simulation import Simulation, simulate
from .traces import TraceError
from .workloads import Characterization, Optimization

__all__ = [
    "PAPER_SAVING_PCT",
    "SCENARIOS",
    "Characterization",
    "Optimization",
    "Scenario",
    "ScenarioError",
    "Simulation",
    "TraceError",
    "load_scenario",
    "print_table",
    "simulate",
    "summary",
    "write",
]
