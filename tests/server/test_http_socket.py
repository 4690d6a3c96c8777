"""The gateway's listening socket: what every accepted connection inherits from it."""

from __future__ import annotations

import socket

from wi.server.http import bind_http


def test_accepted_connections_send_without_waiting_for_acks() -> None:
    """A kept-alive connection must not hold each response back for the client's delayed ACK (Nagle's
    algorithm, about 40 ms a request), so the connection the server accepts has TCP_NODELAY set."""
    with bind_http("127.0.0.1", 0) as listening, socket.create_connection(listening.getsockname()[:2]):
        accepted, _ = listening.accept()
        with accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
