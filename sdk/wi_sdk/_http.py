"""The SDK over HTTP: the gateway, with the tenant's token as bearer token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
from opentelemetry import propagate

from wi.contract import (
    DeploymentEnd,
    DeploymentRequest,
    DeploymentScale,
    DrillReport,
    DrillRequest,
    HintBase,
    HintsView,
    NoticeBase,
    Problem,
    ResponseBase,
)
from wi.contract.http import NoticePage

from ._errors import (
    AuthError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    TransportError,
)
from ._transport import Sent

LONG_POLL_S = 25.0
"""How long one notices request waits on the gateway; the HTTP timeout is longer."""

_ERRORS: dict[int, type[Exception]] = {
    401: AuthError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
}
_ENVELOPE = {"tenant", "workload"}


class HttpTransport:
    """Talks to the gateway; long-polls for notices."""

    def __init__(
        self, url: str, tenant: str, workload: str, token: str | None, client: httpx.AsyncClient | None = None
    ) -> None:
        self.tenant = tenant
        self.workload = workload
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = client or httpx.AsyncClient(
            base_url=url, headers=headers, timeout=httpx.Timeout(10.0, read=LONG_POLL_S + 10)
        )
        self.base = f"/v1/workloads/{workload}"

    async def open(self) -> None:
        view = await self.hints(None)  # checks the URL and the token at once
        if view.tenant != self.tenant:  # the gateway takes the tenant from the token
            raise ForbiddenError(f"the token is not tenant {self.tenant}'s: it is tenant {view.tenant}'s")

    async def close(self) -> None:
        await self.http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers: dict[str, str] = {}
        propagate.inject(headers)  # the gateway continues this trace
        try:
            reply = await self.http.request(method, f"{self.base}{path}", headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise TransportError(f"{method} {path}: {exc}") from exc
        if reply.status_code < 400:
            return reply.json()
        try:
            problem = reply.json()
        except ValueError:
            problem = {"detail": reply.text}
        detail = problem.get("detail", reply.reason_phrase)
        if reply.status_code in (413, 422):
            problems = [Problem(e["field"], e["rule"], e["message"]) for e in problem.get("errors", [])]
            raise InvalidInputError(detail, problems)
        raise _ERRORS.get(reply.status_code, TransportError)(detail)

    @staticmethod
    def _body(message: HintBase | DeploymentRequest) -> dict[str, Any]:
        return message.model_dump(mode="json", exclude=_ENVELOPE, exclude_none=True)

    async def send_hints(self, hints: list[HintBase]) -> Sent:
        reply = await self._call("POST", "/hints", json={"hints": [self._body(h) for h in hints]})
        return Sent(reply["ids"], reply["seq"])

    async def send_deployment(self, request: DeploymentRequest | DeploymentScale | DeploymentEnd) -> Sent:
        if isinstance(request, DeploymentRequest):
            reply = await self._call("POST", "/deployments", json=self._body(request))
        elif isinstance(request, DeploymentScale):
            body = {"instances": request.instances, "request_id": request.request_id}
            reply = await self._call("PATCH", f"/deployments/{request.deployment}", json=body)
        else:
            params = {"request_id": request.request_id}
            reply = await self._call("DELETE", f"/deployments/{request.deployment}", params=params)
        return Sent(reply["ids"], reply["seq"])

    async def respond(self, response: ResponseBase) -> None:
        body = response.model_dump(
            mode="json", include={"response_id", "reason", "instance", "until"}, exclude_none=True
        )
        await self._call(
            "POST", f"/notices/{response.notice_id}/responses", json={"action": response.kind, **body}
        )

    async def hints(self, after_seq: int | None) -> HintsView:
        params = {} if after_seq is None else {"after_seq": after_seq}
        return HintsView.model_validate(await self._call("GET", "/hints", params=params))

    async def drill(self, request: DrillRequest) -> DrillReport:
        return DrillReport.model_validate(
            await self._call("POST", "/drills", json=request.model_dump(mode="json"))
        )

    async def drill_report(self, drill_id: str) -> DrillReport:
        return DrillReport.model_validate(await self._call("GET", f"/drills/{drill_id}"))

    async def notices(self) -> AsyncIterator[NoticeBase]:
        cursor: int | None = None  # first the open notices, then everything after them
        while True:
            params: dict[str, Any] = {"wait": LONG_POLL_S}
            if cursor is not None:
                params["after"] = cursor
            page = NoticePage.model_validate(await self._call("GET", "/notices", params=params))
            for delivery in page.notices:
                assert isinstance(delivery.notice, NoticeBase)
                yield delivery.notice
            cursor = page.next_cursor
