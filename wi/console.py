"""The commands for people: ``wi hint``, ``wi deployments``, ``wi notices``, ``wi drill``, against a gateway
with a token.

They speak plain HTTP to the gateway (the same routes curl would use) and print problem details as
``field: message [rule]``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import httpx

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
DRILL_POLL_S = 0.5
"""How often ``wi drill`` reads the report while it waits."""
DRILL_GRACE_S = 10.0
"""How long past the notice's lead time ``wi drill`` waits for the report to settle."""


class Console:
    """A gateway URL and a token, and what a person can do with them."""

    def __init__(self, url: str | None, token: str | None) -> None:
        url = url or os.environ.get("WI_URL")
        token = token or os.environ.get("WI_TOKEN")
        if not url or not token:
            raise SystemExit("wi: give --url and --token (or set WI_URL and WI_TOKEN)")
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=httpx.Timeout(10.0, read=None)
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            reply = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise SystemExit(f"wi: {self.http.base_url} did not answer: {exc}") from exc
        if reply.status_code >= 400:
            problem = reply.json() if reply.headers.get("content-type", "").endswith("json") else {}
            lines = [f"wi: {reply.status_code} {problem.get('title', reply.reason_phrase)}"]
            lines += [f"  {e['field']}: {e['message']} [{e['rule']}]" for e in problem.get("errors", [])]
            print("\n".join(lines), file=sys.stderr)
            raise SystemExit(EXIT_REFUSED)
        return reply.json()

    def hint_set(
        self, workload: str, kind: str, fields: list[str], instance: str | None, ttl_s: int | None
    ) -> int:
        """Sets one hint from ``field=value`` pairs (values are JSON where they parse, else text)."""
        body: dict[str, Any] = {"kind": kind}
        for pair in fields:
            name, equals, value = pair.partition("=")
            if not equals:
                print(f"wi hint set: {pair!r} is not field=value", file=sys.stderr)
                return EXIT_USAGE
            try:
                body[name] = json.loads(value)
            except ValueError:
                body[name] = value
        if instance:
            body["instance"] = instance
        if ttl_s is not None:
            body["ttl_s"] = ttl_s
        reply = self._call("POST", f"/v1/workloads/{workload}/hints", json=body)
        print(reply["ids"][0])
        return EXIT_OK

    def hint_clear(self, workload: str, kind: str, instance: str | None) -> int:
        """Clears the effective hint of one kind."""
        params = {"instance": instance} if instance else {}
        print(self._call("DELETE", f"/v1/workloads/{workload}/hints/{kind}", params=params)["ids"][0])
        return EXIT_OK

    def hint_list(self, workload: str) -> int:
        """Prints the effective hints, one a line."""
        view = self._call("GET", f"/v1/workloads/{workload}/hints")
        rows = [("", h) for h in view["workload_hints"]]
        rows += [(instance, h) for instance, hints in view["instance_hints"].items() for h in hints]
        for instance, hint in rows:
            fields = " ".join(
                f"{k}={_text(v)}" for k, v in hint.items() if k not in _ENVELOPE and v is not None
            )
            scope = f"  (instance {instance})" if instance else ""
            print(f"{hint['kind']:<18} {fields}{scope}")
        if not rows:
            print("no hints in effect")
        return EXIT_OK

    def deployment_request(
        self,
        workload: str,
        deployment: str,
        instances: int,
        cores: int,
        memory_gb: float,
        gpus: int,
        regions: list[str],
    ) -> int:
        """Asks for a deployment; the placement notice arrives with the workload's notices."""
        body = {
            "deployment": deployment,
            "instances": instances,
            "cores": cores,
            "memory_gb": memory_gb,
            "gpus": gpus,
            "regions": regions,
        }
        print(self._call("POST", f"/v1/workloads/{workload}/deployments", json=body)["ids"][0])
        return EXIT_OK

    def deployment_scale(self, workload: str, deployment: str, instances: int) -> int:
        """Asks for a number of instances of a deployment."""
        path = f"/v1/workloads/{workload}/deployments/{deployment}"
        print(self._call("PATCH", path, json={"instances": instances})["ids"][0])
        return EXIT_OK

    def deployment_end(self, workload: str, deployment: str) -> int:
        """Ends a deployment."""
        print(self._call("DELETE", f"/v1/workloads/{workload}/deployments/{deployment}")["ids"][0])
        return EXIT_OK

    def notices_watch(self, workload: str) -> int:
        """Prints each notice as it arrives (open ones first) until interrupted."""
        try:
            with self.http.stream("GET", f"/v1/workloads/{workload}/notices/stream") as stream:
                if stream.status_code >= 400:
                    stream.read()
                    self._call("GET", f"/v1/workloads/{workload}/notices/stream")  # renders the problem
                for line in stream.iter_lines():
                    if line.startswith("data: "):
                        delivery = json.loads(line.removeprefix("data: "))
                        notice = delivery["notice"]
                        deadline = delivery["deadline"] or "no deadline"
                        print(
                            f"{notice['notice_id']}  {notice['kind']:<16} {delivery['state']:<9} "
                            f"deadline {deadline}  responses {','.join(notice['responses'])}",
                            flush=True,
                        )
        except KeyboardInterrupt:
            pass
        return EXIT_OK

    def notices_respond(
        self, workload: str, notice_id: str, action: str, until: str | None, reason: str | None
    ) -> int:
        """Answers a notice: ack, accept, decline or defer --until."""
        body = {
            "action": action,
            **({"until": until} if until else {}),
            **({"reason": reason} if reason else {}),
        }
        reply = self._call("POST", f"/v1/workloads/{workload}/notices/{notice_id}/responses", json=body)
        print(f"{reply['response_id']}  notice is now {reply['state']}")
        return EXIT_OK

    def drill(
        self, workload: str, tenant: str | None, notice_kind: str, notice_s: int, target: str, wait: bool
    ) -> int:
        """Sends the workload a test notice, then (with ``wait``) prints the report once it is done."""
        if tenant is not None:
            own = self._call("GET", f"/v1/workloads/{workload}/hints")["tenant"]
            if own != tenant:
                print(f"wi drill: the token is tenant {own}'s, not {tenant}'s", file=sys.stderr)
                return EXIT_USAGE
        body = {"notice_kind": notice_kind, "notice_s": notice_s, "target": target}
        report = self._call("POST", f"/v1/workloads/{workload}/drills", json=body)
        sent = f"{notice_kind} notice {report['notice_id']} sent, deadline in {notice_s} s"
        print(f"drill {report['drill_id']}: {sent}")
        give_up = time.monotonic() + notice_s + DRILL_GRACE_S
        while wait and not report["done"] and time.monotonic() < give_up:
            time.sleep(DRILL_POLL_S)
            report = self._call("GET", f"/v1/workloads/{workload}/drills/{report['drill_id']}")
        print("\n".join(drill_lines(report)))
        return EXIT_OK


def drill_lines(report: dict[str, Any]) -> list[str]:
    """A drill report (its JSON) as lines for a terminal."""
    lines = [
        f"  workload    {report['tenant']}/{report['workload']}",
        f"  requested   {report['requested_at']}",
        f"  deadline    {report['deadline']}",
    ]
    delivered = report.get("delivered_after_s")
    lines.append(f"  delivered   {'not yet' if delivered is None else f'after {delivered:.3f} s'}")
    answer = report.get("answer")
    if answer is None:
        waiting = "none: the deadline passed without an answer" if report["done"] else "none yet"
        lines.append(f"  answered    {waiting}")
    else:
        lines.append(
            f"  answered    {answer}, {report['answered_after_s']:.3f} s after delivery, "
            f"{report['before_deadline_s']:.3f} s before the deadline"
        )
    until = report.get("deferred_until")
    lines.append(f"  notice      {report['state']}{f' until {until}' if until else ''}")
    return lines


_ENVELOPE = {"kind", "tenant", "workload", "hint_id", "instance", "issued_at"}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
