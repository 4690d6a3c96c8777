"""A synchronous facade over WorkloadClient for scripts."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from types import TracebackType
from typing import Any, TypeVar

from wi.contract import DrillNoticeKind, DrillReport, HintBase, HintKind, HintsView, TenantMessage

from ._client import WorkloadClient

T = TypeVar("T")
M = TypeVar("M", bound=TenantMessage)


class SyncWorkloadClient:
    """``with SyncWorkloadClient(tenant=..., workload=..., url=..., token=...) as client:`` for scripts.

    Hints, clears, reads and deployments; handlers need the async client.
    """

    def __init__(self, **options: Any) -> None:
        self._runner = asyncio.Runner()
        self._client = WorkloadClient(**options)

    def _run(self, call: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(call)

    def __enter__(self) -> SyncWorkloadClient:
        self._run(self._client.__aenter__())
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self._run(self._client.close())
        finally:
            self._runner.close()

    def new(self, model: type[M], **fields: Any) -> M:
        """A message of this workload."""
        return self._client.new(model, **fields)

    def hint(self, *hints: HintBase) -> list[str]:
        """Sends hints; returns their ids."""
        return self._run(self._client.hint(*hints))

    def clear_hint(self, kind: HintKind, instance: str | None = None) -> str:
        """Removes the effective hint of one kind."""
        return self._run(self._client.clear_hint(kind, instance))

    def hints(self) -> HintsView:
        """The effective hints."""
        return self._run(self._client.hints())

    def deploy(
        self,
        *,
        deployment: str,
        instances: int,
        cores: int,
        memory_gb: float,
        gpus: int = 0,
        regions: Sequence[str] = (),
    ) -> str:
        """Requests a deployment."""
        return self._run(
            self._client.deploy(
                deployment=deployment,
                instances=instances,
                cores=cores,
                memory_gb=memory_gb,
                gpus=gpus,
                regions=regions,
            )
        )

    def scale(self, deployment: str, instances: int) -> str:
        """Asks for ``instances`` instances of a deployment; returns the request id."""
        return self._run(self._client.scale(deployment, instances))

    def end_deployment(self, deployment: str) -> str:
        """Ends a deployment; returns the request id."""
        return self._run(self._client.end_deployment(deployment))

    def drill(
        self, notice_kind: DrillNoticeKind = "eviction", notice_s: int = 120, target: str = "drill"
    ) -> DrillReport:
        """Sends this workload a test notice marked as a drill; the report so far."""
        return self._run(self._client.drill(notice_kind, notice_s, target))

    def drill_report(self, drill_id: str) -> DrillReport:
        """A drill's report."""
        return self._run(self._client.drill_report(drill_id))
