"""Deployments: a workload asks the platform for capacity, scales it and ends it."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from ._base import WHOLE_NUMBER, Family, MessageId, Slug, TenantMessage, new_message_id

MAX_INSTANCES = 10_000
"""The most instances one deployment request asks for."""


class DeploymentRequest(TenantMessage):
    """Asks for instances of a given size; the platform answers with a placement notice."""

    family: ClassVar[Family] = Family.DEPLOYMENT

    kind: Literal["deployment_request"] = "deployment_request"
    request_id: MessageId = Field(default_factory=new_message_id)
    """Idempotency key of the request."""
    deployment: Slug
    """The deployment's name, unique within the workload."""
    instances: Annotated[int, Field(ge=1, le=MAX_INSTANCES), WHOLE_NUMBER]
    """How many instances."""
    cores: Annotated[int, Field(ge=1, le=1024), WHOLE_NUMBER]
    """Cores per instance."""
    memory_gb: Annotated[float, Field(gt=0, le=24_576)]
    """Memory per instance, in GB."""
    gpus: Annotated[int, Field(ge=0, le=16), WHOLE_NUMBER] = 0
    """GPUs per instance."""
    regions: Annotated[list[Slug], Field(max_length=64)] = Field(default_factory=list)
    """Preferred regions, most preferred first; empty for no preference (the region hint still binds)."""

    @property
    def message_id(self) -> str:
        return self.request_id


class DeploymentScale(TenantMessage):
    """Asks for a deployment to run ``instances`` instances of its size: more are placed, the newest go."""

    family: ClassVar[Family] = Family.DEPLOYMENT

    kind: Literal["deployment_scale"] = "deployment_scale"
    request_id: MessageId = Field(default_factory=new_message_id)
    """Idempotency key of the request."""
    deployment: Slug
    """The deployment, as its deployment request named it."""
    instances: Annotated[int, Field(ge=0, le=MAX_INSTANCES), WHOLE_NUMBER]
    """How many instances it runs from now on; 0 keeps the deployment with none."""

    @property
    def message_id(self) -> str:
        return self.request_id


class DeploymentEnd(TenantMessage):
    """Ends a deployment: every instance it runs is released."""

    family: ClassVar[Family] = Family.DEPLOYMENT

    kind: Literal["deployment_end"] = "deployment_end"
    request_id: MessageId = Field(default_factory=new_message_id)
    """Idempotency key of the request."""
    deployment: Slug
    """The deployment, as its deployment request named it."""

    @property
    def message_id(self) -> str:
        return self.request_id


DeploymentMessage = Annotated[
    DeploymentRequest | DeploymentScale | DeploymentEnd,
    Field(discriminator="kind"),
]
"""Any deployment message, told apart by its kind."""
