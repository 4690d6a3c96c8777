"""The workload SDK: a workload's only dependency on WI (it needs just the base install)."""
