"""A 3-node JetStream cluster of the wheel's nats-server on loopback, configured for WI's auth callout.

Each node has its own store, client, route and monitoring ports; all share the callout configuration
WI's embedded server uses (``CalloutAccounts``), with a fresh issuer seed. Nodes can be killed with
SIGKILL and restarted, alone or all together, on the same ports and stores.
"""

from __future__ import annotations

import json
import secrets
import signal
import socket
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from wi.auth.callout import CALLOUT_USER, SYSTEM_USER, CalloutAccounts
from wi.auth.nats_jwt import account_keypair, new_account_seed, public_key
from wi.server import EmbeddedNatsServer


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on loopback right now."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.create_server(("127.0.0.1", 0))) for _ in range(count)]
        return [s.getsockname()[1] for s in sockets]


class NatsCluster:
    """Three nats-server processes routed into one JetStream cluster."""

    def __init__(self, root: Path, size: int = 3) -> None:
        self.issuer_seed = new_account_seed()
        self.callout_password = secrets.token_urlsafe(16)
        self.system_password = secrets.token_urlsafe(16)
        accounts = CalloutAccounts(
            public_key(account_keypair(self.issuer_seed)), self.callout_password, self.system_password
        )
        ports = free_ports(3 * size)
        client_ports, route_ports, monitor_ports = ports[:size], ports[size : 2 * size], ports[2 * size :]
        routes = ", ".join(f"nats://127.0.0.1:{port}" for port in route_ports)
        self.monitor_urls = {f"n{i + 1}": f"http://127.0.0.1:{port}" for i, port in enumerate(monitor_ports)}
        self.nodes = {
            f"n{i + 1}": EmbeddedNatsServer(
                root / f"n{i + 1}",
                port=client_ports[i],
                name=f"n{i + 1}",
                auth=accounts,
                extra_config=[
                    f"cluster {{ name: wi-test, listen: 127.0.0.1:{route_ports[i]}, routes: [{routes}] }}",
                    f"http: 127.0.0.1:{monitor_ports[i]}",
                ],
            )
            for i in range(size)
        }

    @property
    def url(self) -> str:
        """Every node's client URL, comma-separated, as WI_NATS_URL takes them."""
        return ",".join(node.url for node in self.nodes.values())

    def wi_environment(self) -> dict[str, str]:
        """The WI_* variables that point ``wi up`` at this cluster with the auth callout."""
        return {
            "WI_NATS_URL": self.url,
            "WI_NATS_AUTH_ISSUER_SEED": self.issuer_seed,
            "WI_NATS_USER": CALLOUT_USER,
            "WI_NATS_PASSWORD": self.callout_password,
            "WI_NATS_SYSTEM_USER": SYSTEM_USER,
            "WI_NATS_SYSTEM_PASSWORD": self.system_password,
            "WI_STREAM_REPLICAS": "3",
        }

    def wi_settings(self, **overrides: Any) -> dict[str, Any]:
        """``Settings`` fields pointing a platform in the test's process at this cluster (no services)."""
        from_environment = {
            name.removeprefix("WI_").lower(): value for name, value in self.wi_environment().items()
        }
        return {**from_environment, "services": "none", **overrides}

    def start(self, timeout_s: float = 30.0) -> None:
        """Starts every node that is not running and waits until JetStream has a meta leader on all."""
        for node in self.nodes.values():
            if not node.running:
                node.start()
        self.wait_healthy(timeout_s)

    def wait_healthy(self, timeout_s: float = 30.0) -> None:
        """Waits until every running node reports JetStream current with a meta leader."""
        deadline = time.monotonic() + timeout_s
        for name, node in self.nodes.items():
            while node.running and not self._healthy(name):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} did not become healthy in {timeout_s:.0f}s")
                time.sleep(0.1)

    def _healthy(self, name: str) -> bool:
        try:
            with urllib.request.urlopen(f"{self.monitor_urls[name]}/jsz", timeout=2) as reply:
                meta = json.load(reply).get("meta_cluster") or {}
            with urllib.request.urlopen(f"{self.monitor_urls[name]}/healthz", timeout=2) as reply:
                return bool(meta.get("leader")) and reply.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def kill(self, name: str) -> None:
        """Kills a node with SIGKILL: no flush, no goodbye to its peers."""
        node = self.nodes[name]
        assert node.process is not None
        node.process.send_signal(signal.SIGKILL)
        node.process.wait()
        node.stop()

    def stop(self) -> None:
        """Stops every running node gracefully."""
        for node in self.nodes.values():
            node.stop()
