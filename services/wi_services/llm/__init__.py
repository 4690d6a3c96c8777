"""The LLM reconfigurer: endpoints fitted to their load at the least power (DynamoLLM), and graded GPU
frequency caps under power limits (POLCA), on a performance model built from Splitwise's measurements."""

from .perf_model import Estimate, Load, PerfDataMissing, PerfModel, load_perf_model
from .policy import EndpointState, Slo, choose_config, fit_to_budget
from .service import LlmReconfigurer

__all__ = [
    "EndpointState",
    "Estimate",
    "LlmReconfigurer",
    "Load",
    "PerfDataMissing",
    "PerfModel",
    "Slo",
    "choose_config",
    "fit_to_budget",
    "load_perf_model",
]
