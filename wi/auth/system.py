"""Disconnecting a user's connections on every server of a NATS cluster, through the system account.

``$SYS.REQ.SERVER.PING.CONNZ`` asks every server for its connections, filtered by account and user;
each answers once. ``$SYS.REQ.SERVER.<server id>.KICK`` then closes one connection by its id. A client
closed this way reconnects, and the auth callout refuses it if its token is revoked.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

log = logging.getLogger("wi.auth.system")

CONNZ_PING_SUBJECT = "$SYS.REQ.SERVER.PING.CONNZ"
"""Every server of the cluster answers it with its connections."""
FIRST_REPLY_S = 2.0
"""How long to wait for the first server's answer to a ping."""
QUIET_S = 0.25
"""A ping is over once no server has answered for this long (the number of servers is not known)."""


def kick_subject(server_id: str) -> str:
    """Where one server takes requests to close one of its connections."""
    return f"$SYS.REQ.SERVER.{server_id}.KICK"


@dataclass(frozen=True)
class Connection:
    """A client connection: the server it is on and its id there."""

    server_id: str
    cid: int


class SystemAccount:
    """WI's connection to nats-server's system account."""

    def __init__(self, nc: NatsClient) -> None:
        self.nc = nc

    @property
    def live(self) -> bool:
        """Whether the system connection is up (its credential was accepted)."""
        return self.nc.is_connected

    async def _ping(self, subject: str, request: dict[str, Any]) -> list[dict[str, Any]]:
        """Every server's answer to a ping request."""
        replies: asyncio.Queue[Msg] = asyncio.Queue()

        async def collect(msg: Msg) -> None:
            replies.put_nowait(msg)

        inbox = self.nc.new_inbox()
        subscription = await self.nc.subscribe(inbox, cb=collect)
        answers: list[dict[str, Any]] = []
        try:
            await self.nc.publish(subject, json.dumps(request).encode(), reply=inbox)
            wait_s = FIRST_REPLY_S
            while True:
                try:
                    msg = await asyncio.wait_for(replies.get(), wait_s)
                except TimeoutError:
                    return answers
                answers.append(json.loads(msg.data))
                wait_s = QUIET_S
        finally:
            await subscription.unsubscribe()

    async def connections(self, account: str, user: str) -> list[Connection]:
        """The open connections of ``user`` in ``account`` on every server that answers."""
        answers = await self._ping(CONNZ_PING_SUBJECT, {"acc": account, "user": user, "auth": True})
        found = []
        for answer in answers:
            if "error" in answer:
                log.warning("CONNZ from %s failed: %s", answer.get("server", {}).get("name"), answer["error"])
                continue
            server_id = answer["server"]["id"]
            found += [Connection(server_id, c["cid"]) for c in answer["data"].get("connections") or []]
        return found

    async def disconnect(self, account: str, user: str) -> int:
        """Closes every open connection of ``user`` in ``account``; returns how many it closed."""
        closed = 0
        for connection in await self.connections(account, user):
            reply = await self.nc.request(
                kick_subject(connection.server_id), json.dumps({"cid": connection.cid}).encode(), timeout=5
            )
            error = json.loads(reply.data).get("error")
            if error:  # it may have closed by itself meanwhile
                log.info("could not close connection %d of %s: %s", connection.cid, user, error)
            else:
                closed += 1
        return closed
