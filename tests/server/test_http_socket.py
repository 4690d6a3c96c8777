"""The gateway's listening socket: what every accepted connection inherits from it."""

from __future__ import annotations

import socket

from fastapi import FastAPI

from wi.server.http import HttpServer


def test_accepted_connections_send_without_waiting_for_acks() -> None:
    """A kept-alive connection must not hold each response back for the client's delayed ACK (Nagle's
    algorithm, about 40 ms a request), so the connection the server accepts has TCP_NODELAY set."""
    server = HttpServer(FastAPI(), "127.0.0.1", 0)
    try:
        with socket.create_connection((server.host, server.port)):
            accepted, _ = server.socket.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        server.socket.close()
