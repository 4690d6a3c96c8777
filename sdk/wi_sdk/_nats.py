"""The SDK over NATS: the bus directly, with the tenant's token as its NATS credential."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import nats.errors
from nats.aio.msg import Msg

from wi.auth import token_id_of
from wi.bus import Bus, attach_subject, decode, hints_query_subject, tenant_inbox
from wi.contract import (
    DeploymentRequest,
    Family,
    HintBase,
    HintsQuery,
    HintsView,
    InvalidMessage,
    NoticeBase,
    QueryError,
    ResponseBase,
)

from ._errors import AuthError, InvalidInputError, TransportError
from ._transport import Incoming, Sent

REQUEST_TIMEOUT_S = 10.0


class NatsTransport:
    """Publishes to the bus and receives notices from the workload's durable consumer."""

    def __init__(self, url: str, tenant: str, workload: str, token: str | None) -> None:
        self.url = url
        self.tenant = tenant
        self.workload = workload
        self.token = token
        self.bus: Bus | None = None

    async def open(self) -> None:
        user = token_id_of(self.token) if self.token else None
        try:
            self.bus = await Bus.connect(
                self.url,
                source=f"/tenants/{self.tenant}/{self.workload}",
                name=f"wi-sdk {self.tenant}/{self.workload}",
                user=user,
                password=self.token,
                inbox_prefix=tenant_inbox(self.tenant),
            )
        except PermissionError as exc:
            raise AuthError(str(exc)) from exc
        except (ConnectionError, OSError) as exc:
            raise TransportError(str(exc)) from exc

    async def close(self) -> None:
        if self.bus is not None:
            await self.bus.close()
            self.bus = None

    def _bus(self) -> Bus:
        if self.bus is None:
            raise TransportError("not connected")
        return self.bus

    async def _publish(self, messages: list[HintBase] | list[DeploymentRequest] | list[ResponseBase]) -> Sent:
        seq = 0
        try:
            for message in messages:
                seq = (await self._bus().publish(message)).seq
        except (TimeoutError, nats.errors.Error) as exc:
            raise TransportError(f"the bus did not store the message: {exc}") from exc
        return Sent([m.message_id for m in messages], seq)

    async def send_hints(self, hints: list[HintBase]) -> Sent:
        return await self._publish(hints)

    async def send_deployment(self, request: DeploymentRequest) -> Sent:
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

    async def notices(self) -> AsyncIterator[Incoming]:
        bus = self._bus()
        try:
            reply = await bus.nc.request(
                attach_subject(self.tenant, self.workload), b"", timeout=REQUEST_TIMEOUT_S
            )
        except (TimeoutError, nats.errors.Error) as exc:
            raise TransportError(f"the platform did not set up notice delivery: {exc}") from exc
        answer = json.loads(reply.data)
        if "error" in answer:
            raise TransportError(f"notice delivery: {answer['error']}")
        arrived: asyncio.Queue[Msg] = asyncio.Queue()

        async def enqueue(msg: Msg) -> None:
            arrived.put_nowait(msg)

        subscription = await bus.nc.subscribe(answer["deliver_subject"], queue=answer["queue"], cb=enqueue)
        try:
            while True:
                msg = await arrived.get()
                try:
                    notice, _ = decode(Family.NOTICE, msg.subject, msg.headers, msg.data)
                except InvalidMessage:
                    await msg.ack()  # the platform parks what breaks the contract; nothing to hand over
                    continue
                assert isinstance(notice, NoticeBase)
                yield Incoming(notice, msg.ack)
        finally:
            if not bus.nc.is_closed:
                await subscription.unsubscribe()
