"""Deployment requests: a workload asks the platform for capacity."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from ._base import Family, MessageId, Slug, TenantMessage, new_message_id


class DeploymentRequest(TenantMessage):
    """Asks for instances of a given size; the platform answers with a placement notice."""

    family: ClassVar[Family] = Family.DEPLOYMENT

    kind: Literal["deployment_request"] = "deployment_request"
    request_id: MessageId = Field(default_factory=new_message_id)
    """Idempotency key of the request."""
    deployment: Slug
    """The deployment's name, unique within the workload."""
    instances: Annotated[int, Field(ge=1, le=10_000)]
    """How many instances."""
    cores: Annotated[int, Field(ge=1, le=1024)]
    """Cores per instance."""
    memory_gb: Annotated[float, Field(gt=0, le=24_576)]
    """Memory per instance, in GB."""
    gpus: Annotated[int, Field(ge=0, le=16)] = 0
    """GPUs per instance."""
    regions: Annotated[list[Slug], Field(max_length=64)] = Field(default_factory=list)
    """Preferred regions, most preferred first; empty for no preference (the region hint still binds)."""

    @property
    def message_id(self) -> str:
        return self.request_id
