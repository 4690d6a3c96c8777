"""The fleet the platform services act on: regions, clusters, servers, pools, power domains, LLM endpoints.

Loaded from a JSON file (``sample_fleet.json`` ships with WI). Regions take their grid carbon intensity
from Azure's public region data (``../shared/data/azure-regions/azure_dc_data.csv``, CC-BY-4.0) when it
is there, unless the fleet file gives one.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from wi.contract import Pool, Slug

SAMPLE_FLEET = Path(__file__).with_name("sample_fleet.json")
REGION_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "azure-regions" / "azure_dc_data.csv"


class _FleetModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Region(_FleetModel):
    """A region and what a core-hour costs and emits there."""

    name: Slug
    """Region id, e.g. useast."""
    geography: Slug
    """Where the region is, for data residency (e.g. us, europe)."""
    price_per_core_hour: Annotated[float, Field(gt=0, le=100)]
    """Price of a regular core-hour."""
    carbon_g_per_kwh: Annotated[float, Field(ge=0, le=2000)] | None = None
    """Average grid carbon intensity; taken from the public region data when not given."""


class Server(_FleetModel):
    """A server and the pool its capacity is sold in."""

    id: Slug
    """Server id."""
    cluster: Slug
    """Cluster it belongs to."""
    region: Slug
    """Region of its cluster."""
    pool: Pool
    """regular, spot, harvest or oversubscribed."""
    cores: Annotated[int, Field(ge=1, le=1024)]
    """Cores for VMs."""
    memory_gb: Annotated[float, Field(gt=0, le=24_576)]
    """Memory for VMs, in GB."""
    gpus: Annotated[int, Field(ge=0, le=16)] = 0
    """GPUs."""
    fault_domain: Slug
    """Servers in one fault domain can fail together (a rack, a power feed)."""
    power_domain: Slug
    """The power domain whose budget it draws from."""


class PowerDomain(_FleetModel):
    """A power domain and its budget."""

    id: Slug
    """Power domain id."""
    budget_watts: Annotated[int, Field(ge=1, le=100_000_000)]
    """The power it may draw."""


class LlmEndpoint(_FleetModel):
    """An LLM inference endpoint the platform runs for a tenant's workload."""

    name: Slug
    """Endpoint id."""
    tenant: Slug
    """Owner."""
    workload: Slug
    """The workload whose hints apply."""
    model: Annotated[str, Field(max_length=64)]
    """Model, e.g. llama2-70b."""
    hardware: Annotated[str, Field(max_length=64)]
    """GPU type, e.g. h100-80gb."""
    replicas: Annotated[int, Field(ge=0, le=10_000)]
    """Replicas now."""
    tensor_parallel: Annotated[int, Field(ge=1, le=64)]
    """GPUs per replica."""
    gpu_frequency_mhz: Annotated[int, Field(ge=100, le=5_000)]
    """GPU frequency now."""
    power_domain: Slug
    """Where its GPUs draw power."""
    requests_per_s: Annotated[float, Field(ge=0, le=1_000_000)] = 1.0
    """The load assumed until the first endpoint_load report, in requests per second."""
    mean_prompt_tokens: Annotated[int, Field(ge=1, le=1_000_000)] = 1024
    """Mean prompt length assumed until a report gives one."""
    mean_output_tokens: Annotated[int, Field(ge=1, le=1_000_000)] = 256
    """Mean output length assumed until a report gives one."""


class Fleet(_FleetModel):
    """Everything the services place on and act on."""

    regions: Annotated[list[Region], Field(min_length=1, max_length=200)]
    """The regions."""
    pool_price_factors: dict[Pool, Annotated[float, Field(gt=0, le=1)]]
    """Price of a core-hour in each pool relative to regular (spot is typically 48-91 % cheaper)."""
    servers: Annotated[list[Server], Field(min_length=1, max_length=1_000_000)]
    """The servers."""
    power_domains: Annotated[list[PowerDomain], Field(max_length=100_000)] = []
    """The power domains."""
    llm_endpoints: Annotated[list[LlmEndpoint], Field(max_length=100_000)] = []
    """The LLM endpoints."""

    @model_validator(mode="after")
    def _references_resolve(self) -> Fleet:
        regions = {r.name for r in self.regions}
        domains = {d.id for d in self.power_domains}
        for server in self.servers:
            if server.region not in regions:
                raise ValueError(f"servers: {server.id} names unknown region {server.region}")
            if domains and server.power_domain not in domains:
                raise ValueError(f"servers: {server.id} names unknown power domain {server.power_domain}")
        if set(self.pool_price_factors) != set(Pool):
            raise ValueError("pool_price_factors: give a factor for every pool")
        return self

    def region(self, name: str) -> Region:
        """A region by name."""
        return next(r for r in self.regions if r.name == name)

    def server(self, server_id: str) -> Server:
        """A server by id."""
        return next(s for s in self.servers if s.id == server_id)

    def price_per_core_hour(self, server: Server) -> float:
        """What a core-hour on this server costs: its region's price times its pool's factor."""
        return self.region(server.region).price_per_core_hour * self.pool_price_factors[server.pool]


def public_carbon(path: Path = REGION_DATA) -> dict[str, float]:
    """Each region's average grid carbon intensity (gCO2/kWh) in Azure's public region data; {} without it."""
    if not path.is_file():
        return {}
    with path.open(newline="") as rows:
        return {row["Region"]: float(row["Avg Grid Intensity"]) for row in csv.DictReader(rows)}


def load_fleet(path: Path = SAMPLE_FLEET, region_data: Path = REGION_DATA) -> Fleet:
    """Reads a fleet file; fills in each region's carbon intensity from the public data where missing."""
    fleet = Fleet.model_validate_json(path.read_text())
    carbon = public_carbon(region_data)
    regions = [
        r
        if r.carbon_g_per_kwh is not None or r.name not in carbon
        else r.model_copy(update={"carbon_g_per_kwh": carbon[r.name]})
        for r in fleet.regions
    ]
    return fleet.model_copy(update={"regions": regions})
