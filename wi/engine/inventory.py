"""What runs where: the platform's one read model of instances, built from the decisions that change it.

Decisions carry typed changes (``InstancePlaced``, ``InstanceReleased``, ``InstanceResized``); every
service folds the same changes, from the one decision log, into an ``Inventory``. A release or resize
takes effect at its time (an eviction at its notice's deadline, or at once when the workload acks it),
so the inventory answers "as of now" once ``advance(now)`` has been called.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Set
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from wi.contract import Pool


class _Change(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant: str
    workload: str
    instance: str

    @property
    def key(self) -> str:
        """The instance's id across tenants: tenant/workload/instance."""
        return f"{self.tenant}/{self.workload}/{self.instance}"


class InstancePlaced(_Change):
    """An instance now runs on a server."""

    kind: Literal["placed"] = "placed"
    deployment: str
    server: str
    cluster: str
    pool: Pool
    cores: int
    memory_gb: float
    gpus: int = 0


class InstanceReleased(_Change):
    """An instance stops running at ``at``: its deployment ended or shrank, or it was evicted."""

    kind: Literal["released"] = "released"
    at: datetime
    why: str


class InstanceResized(_Change):
    """An instance (a Harvest VM) runs with ``cores`` from ``at`` on."""

    kind: Literal["resized"] = "resized"
    cores: int
    at: datetime


InventoryChange = Annotated[InstancePlaced | InstanceReleased | InstanceResized, Field(discriminator="kind")]
"""A change to what runs where, told apart by its kind."""


def instance_name(deployment: str, n: int) -> str:
    """The id of a deployment's ``n``-th instance (from 0, in placement order; numbers are never reused)."""
    return f"{deployment}-{n}"


@dataclass(frozen=True)
class Instance:
    """One running instance of a deployment."""

    tenant: str
    workload: str
    deployment: str
    instance: str
    """Its id: <deployment>-<n>, n counting the deployment's instances in placement order."""
    server: str
    cluster: str
    pool: Pool
    cores: int
    memory_gb: float
    gpus: int = 0
    key: str = field(init=False, repr=False, compare=False)
    """The instance's id across tenants: tenant/workload/instance (built once: every index reads it)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{self.tenant}/{self.workload}/{self.instance}")


@dataclass(frozen=True)
class ServerUse:
    """What the instances on one server use."""

    cores: int = 0
    memory_gb: float = 0.0
    gpus: int = 0

    def plus(self, instance: Instance, sign: int = 1) -> ServerUse:
        """This use with an instance added (``sign`` -1: removed)."""
        return ServerUse(
            self.cores + sign * instance.cores,
            self.memory_gb + sign * instance.memory_gb,
            self.gpus + sign * instance.gpus,
        )


class Inventory:
    """The instances running, by key, and what they use on each server, as of the last ``advance``."""

    JOURNAL = 100_000
    """How many changes of use the inventory keeps for ``changes_since``; a reader further behind rebuilds."""

    def __init__(self) -> None:
        self.instances: dict[str, Instance] = {}
        self.use: dict[str, ServerUse] = {}
        """Server id to what its running instances use."""
        self._cells: dict[tuple[str, Pool], dict[str, Instance]] = {}
        """(cluster, pool) to its running instances by key: a cell's instances without a scan of all."""
        self.version = 0
        """Counts the changes of use; ``changes_since`` hands out those after a version."""
        self._journal: list[tuple[str, ServerUse]] = []
        self._next: dict[tuple[str, str, str], int] = {}
        self._due: list[tuple[datetime, int, InstanceReleased | InstanceResized]] = []
        self._leaving: set[str] = set()
        self._order = 0

    def apply(self, changes: Iterable[InstancePlaced | InstanceReleased | InstanceResized]) -> None:
        """Folds changes in: a placement counts at once, a release or resize from its time on."""
        for change in changes:
            if isinstance(change, InstancePlaced):
                instance = Instance(
                    change.tenant,
                    change.workload,
                    change.deployment,
                    change.instance,
                    change.server,
                    change.cluster,
                    change.pool,
                    change.cores,
                    change.memory_gb,
                    change.gpus,
                )
                self._add(instance)
                index = int(change.instance.rsplit("-", 1)[1]) if "-" in change.instance else 0
                deployment = (change.tenant, change.workload, change.deployment)
                self._next[deployment] = max(self._next.get(deployment, 0), index + 1)
            else:
                if isinstance(change, InstanceReleased):
                    self._leaving.add(change.key)
                self._order += 1
                heapq.heappush(self._due, (change.at, self._order, change))

    def advance(self, now: datetime) -> None:
        """Makes every release and resize due by ``now`` take effect."""
        while self._due and self._due[0][0] <= now:
            _, _, change = heapq.heappop(self._due)
            if isinstance(change, InstanceReleased):
                self._leaving.discard(change.key)  # its first release due ends it: keys are never reused
            instance = self.instances.get(change.key)
            if instance is None:
                continue
            self._remove(instance)
            if isinstance(change, InstanceResized):
                self._add(replace(instance, cores=change.cores))

    @property
    def leaving(self) -> Set[str]:
        """The keys of the instances due to stop: released at a time the last ``advance`` has not reached
        (an eviction notice's deadline still ahead, a release not yet caught up with). Until the first
        ``advance`` past its release such an instance still runs, and is not to be evicted again."""
        return self._leaving

    def next_index(self, tenant: str, workload: str, deployment: str) -> int:
        """The number the deployment's next instance gets (numbers are never reused)."""
        return self._next.get((tenant, workload, deployment), 0)

    def of_deployment(self, tenant: str, workload: str, deployment: str) -> list[Instance]:
        """A deployment's running instances, oldest first (by their number)."""
        return sorted(
            (
                i
                for i in self.instances.values()
                if (i.tenant, i.workload, i.deployment) == (tenant, workload, deployment)
            ),
            key=lambda i: int(i.instance.rsplit("-", 1)[1]),
        )

    def in_cell(self, cluster: str, pool: Pool) -> list[Instance]:
        """The instances running in a cluster's pool, in the order they were placed."""
        return list(self._cells.get((cluster, pool), {}).values())

    def __iter__(self) -> Iterator[Instance]:
        return iter(self.instances.values())

    def __len__(self) -> int:
        return len(self.instances)

    def changes_since(self, version: int) -> list[tuple[str, ServerUse]] | None:
        """The changes of use (server, change) after ``version``, in order; None if they are no longer
        kept (then read ``use`` whole)."""
        start = len(self._journal) - (self.version - version)
        return None if start < 0 else self._journal[start:]

    def _add(self, instance: Instance) -> None:
        self.instances[instance.key] = instance
        self._cells.setdefault((instance.cluster, instance.pool), {})[instance.key] = instance
        self._use(instance, 1)

    def _remove(self, instance: Instance) -> None:
        del self.instances[instance.key]
        del self._cells[(instance.cluster, instance.pool)][instance.key]
        self._use(instance, -1)

    def _use(self, instance: Instance, sign: int) -> None:
        self.use[instance.server] = self.use.get(instance.server, ServerUse()).plus(instance, sign)
        self._journal.append((instance.server, ServerUse().plus(instance, sign)))
        self.version += 1
        if len(self._journal) > 2 * self.JOURNAL:
            del self._journal[: -self.JOURNAL]
