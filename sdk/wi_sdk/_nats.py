"""The SDK over NATS: the bus directly, with the tenant's token as its NATS credential."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence

import nats.errors
from nats.aio.msg import Msg

from wi.auth import token_id_of
from wi.bus import (
    DELIVER_GROUP,
    Bus,
    attach_subject,
    decode_republished,
    deliver_subjects,
    drill_report_subject,
    drill_start_subject,
    hints_query_subject,
    tenant_inbox,
)
from wi.contract import (
    ATTACH_ANSWER,
    DRILL_ANSWER,
    AttachError,
    AttachRequest,
    DeploymentEnd,
    DeploymentRequest,
    DeploymentScale,
    DrillError,
    DrillQuery,
    DrillReport,
    DrillRequest,
    Family,
    HintBase,
    HintsQuery,
    HintsView,
    InvalidMessage,
    NoticeBase,
    QueryError,
    ResponseBase,
    TenantMessage,
)

from ._errors import AuthError, ForbiddenError, InvalidInputError, NotFoundError, TransportError
from ._transport import Sent

REQUEST_TIMEOUT_S = 10.0


class NatsTransport:
    """Publishes to the bus and receives notices from the workload's durable consumer.

    The token is the connection's NATS token; with ``token_as_password`` it is the password of the user
    named by its id instead (for tools that cannot send a token). The workload's processes share its
    notices (each arrives at one of them); with ``share_notices=False`` this one receives every notice as
    it arrives, as an agent for one instance must (``wi imds``).
    """

    def __init__(
        self,
        url: str,
        tenant: str,
        workload: str,
        token: str | None,
        *,
        token_as_password: bool = False,
        share_notices: bool = True,
    ) -> None:
        self.url = url
        self.tenant = tenant
        self.workload = workload
        self.token = token
        self.token_as_password = token_as_password
        self.share_notices = share_notices
        self.bus: Bus | None = None

    async def open(self) -> None:
        token, user, password = self.token, None, None
        try:
            if self.token and self.token_as_password:
                token, user, password = None, token_id_of(self.token), self.token
        except ValueError as exc:
            raise AuthError(f"the token is malformed: {exc}") from None
        try:
            self.bus = await Bus.connect(
                self.url,
                source=f"/tenants/{self.tenant}/{self.workload}",
                name=f"wi-sdk {self.tenant}/{self.workload}",
                user=user,
                password=password,
                token=token,
                inbox_prefix=tenant_inbox(self.tenant),
            )
        except PermissionError as exc:
            raise AuthError(str(exc)) from exc
        except (ConnectionError, OSError) as exc:
            raise TransportError(str(exc)) from exc
        try:  # only the tenant's own token may use the tenant's inbox
            await self.bus.check_subscribe(f"{tenant_inbox(self.tenant)}.>")
        except PermissionError as exc:
            raise ForbiddenError(f"the token is not tenant {self.tenant}'s: {exc}") from exc

    async def close(self) -> None:
        if self.bus is not None:
            await self.bus.close()
            self.bus = None

    def _bus(self) -> Bus:
        if self.bus is None:
            raise TransportError("not connected")
        return self.bus

    async def _publish(self, messages: Sequence[TenantMessage]) -> Sent:
        seq = 0
        try:
            for message in messages:
                seq = (await self._bus().publish(message)).seq
        except (TimeoutError, nats.errors.Error) as exc:
            raise TransportError(f"the bus did not store the message: {exc}") from exc
        return Sent([m.message_id for m in messages], seq)

    async def send_hints(self, hints: list[HintBase]) -> Sent:
        return await self._publish(hints)

    async def send_deployment(self, request: DeploymentRequest | DeploymentScale | DeploymentEnd) -> Sent:
        return await self._publish([request])

    async def respond(self, response: ResponseBase) -> None:
        await self._publish([response])

    async def hints(self, after_seq: int | None) -> HintsView:
        query = HintsQuery(after_seq=after_seq).model_dump_json().encode()
        try:
            reply = await self._bus().nc.request(
                hints_query_subject(self.tenant, self.workload), query, timeout=REQUEST_TIMEOUT_S
            )
        except (TimeoutError, nats.errors.Error) as exc:
            raise TransportError(f"the registry did not answer: {exc}") from exc
        if json.loads(reply.data).get("kind") == "query_error":
            error = QueryError.model_validate_json(reply.data)
            raise InvalidInputError("; ".join(p.message for p in error.problems))
        return HintsView.model_validate_json(reply.data)

    async def _ask_drills(self, subject: str, body: DrillRequest | DrillQuery) -> DrillReport | DrillError:
        try:
            reply = await self._bus().nc.request(
                subject, body.model_dump_json().encode(), timeout=REQUEST_TIMEOUT_S
            )
        except (TimeoutError, nats.errors.Error) as exc:
            raise TransportError(f"the platform did not answer the drill request: {exc}") from exc
        return DRILL_ANSWER.validate_json(reply.data)

    async def drill(self, request: DrillRequest) -> DrillReport:
        answer = await self._ask_drills(drill_start_subject(self.tenant, self.workload), request)
        if isinstance(answer, DrillError):
            raise TransportError(answer.error)
        return answer

    async def drill_report(self, drill_id: str) -> DrillReport:
        query = DrillQuery(drill_id=drill_id)
        answer = await self._ask_drills(drill_report_subject(self.tenant, self.workload), query)
        if isinstance(answer, DrillError):
            raise NotFoundError(answer.error)
        return answer

    async def notices(self) -> AsyncIterator[NoticeBase]:
        """Listens on the workload's deliver subjects, then reads the open notices (see
        ``wi.contract.attach``); after a reconnect, reads them again, since what was republished while
        the connection was down is lost."""
        bus = self._bus()
        arrived: asyncio.Queue[Msg | None] = asyncio.Queue()  # None: reconnected, attach again

        async def enqueue(msg: Msg) -> None:
            arrived.put_nowait(msg)

        subscription = await bus.nc.subscribe(
            deliver_subjects(self.tenant, self.workload),
            queue=DELIVER_GROUP if self.share_notices else "",
            cb=enqueue,
        )
        forget = bus.on_reconnect(lambda: arrived.put_nowait(None))
        try:
            while True:
                await bus.nc.flush()  # the server listens for us before the registry reads what is open
                async for notice in self._open_notices(bus):
                    yield notice
                while (msg := await arrived.get()) is not None:
                    try:
                        delivered, _ = decode_republished(Family.NOTICE, msg.headers, msg.data)
                    except InvalidMessage:
                        continue  # the platform parks what breaks the contract; nothing to hand over
                    assert isinstance(delivered, NoticeBase)
                    yield delivered
        finally:
            forget()
            if not bus.nc.is_closed:
                await subscription.unsubscribe()

    async def _open_notices(self, bus: Bus) -> AsyncIterator[NoticeBase]:
        """The workload's open notices, page by page, from the registry."""
        after: int | None = None
        while True:
            request = AttachRequest(after=after).model_dump_json(exclude_none=True).encode()
            try:
                reply = await bus.nc.request(
                    attach_subject(self.tenant, self.workload), request, timeout=REQUEST_TIMEOUT_S
                )
                answer = ATTACH_ANSWER.validate_json(reply.data)
            except (TimeoutError, nats.errors.Error) as exc:
                raise TransportError(f"the registry did not send the open notices: {exc}") from exc
            except ValueError as exc:
                raise TransportError(f"the registry's answer to attach is not one: {exc}") from exc
            if isinstance(answer, AttachError):
                raise TransportError(f"attach: {answer.error}")
            for notice in answer.notices:
                yield notice
            if answer.next_cursor is None:
                return
            after = answer.next_cursor
