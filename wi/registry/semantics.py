"""The registry's rules as pure functions: which hints are in effect, and how notices answer responses.

No I/O here: the store and the simulator both call these.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from wi.contract import ClearHint, HintBase, NoticeBase, NoticeState, ResponseAction, ResponseBase
from wi.contract.responses import Defer

WORKLOAD_SCOPE = ""
"""The scope key of a workload-wide hint; an instance-scoped hint's scope key is its instance."""


def scope_of(hint: HintBase) -> str:
    """The scope a hint applies to: the instance, or the whole workload."""
    return hint.instance or WORKLOAD_SCOPE


def supersedes(new: tuple[datetime, int], old: tuple[datetime, int]) -> bool:
    """Whether a hint (or clear) issued at ``new`` replaces one issued at ``old``.

    Each side is (issued_at, stream sequence): the later issue wins, and the stream order breaks ties,
    so replaying the stream in any delivery order ends in the same state.
    """
    return new > old


@dataclass(frozen=True)
class EffectiveHints:
    """The hints in effect for one workload: workload-wide, and per-instance overrides."""

    tenant: str
    workload: str
    workload_hints: dict[str, HintBase] = field(default_factory=dict)
    instance_hints: dict[str, dict[str, HintBase]] = field(default_factory=dict)

    def for_instance(self, instance: str) -> dict[str, HintBase]:
        """The hints that apply to one instance: its own override each kind, else the workload's."""
        return {**self.workload_hints, **self.instance_hints.get(instance, {})}


def is_live(hint: HintBase, now: datetime) -> bool:
    """Whether a current hint is in effect at ``now`` (a clear never is; an expired hint is not)."""
    if isinstance(hint, ClearHint):
        return False
    expires_at = hint.expires_at
    return expires_at is None or now < expires_at


def effective_hints(tenant: str, workload: str, current: Iterable[HintBase], now: datetime) -> EffectiveHints:
    """Resolves the latest hint of each kind and scope into what is in effect at ``now``."""
    result = EffectiveHints(tenant, workload)
    for hint in current:
        if not is_live(hint, now):
            continue
        if hint.instance is None:
            result.workload_hints[hint.kind] = hint
        else:
            result.instance_hints.setdefault(hint.instance, {})[hint.kind] = hint
    return result


ANSWERED = {
    ResponseAction.ACK: NoticeState.ACKED,
    ResponseAction.ACCEPT: NoticeState.ACCEPTED,
    ResponseAction.DECLINE: NoticeState.DECLINED,
    ResponseAction.DEFER: NoticeState.DEFERRED,
}
FINAL = frozenset({NoticeState.ACKED, NoticeState.ACCEPTED, NoticeState.DECLINED})
OPEN = frozenset({NoticeState.PENDING, NoticeState.DEFERRED})


@dataclass(frozen=True)
class NoticeStatus:
    """A notice's state and, once deferred, the time it was deferred to."""

    state: NoticeState = NoticeState.PENDING
    deferred_until: datetime | None = None

    def deadline(self, notice: NoticeBase) -> datetime | None:
        """The deadline in force: the deferral if the notice was deferred, else the notice's own."""
        return self.deferred_until or notice.deadline

    def observed(self, notice: NoticeBase, now: datetime) -> NoticeState:
        """The state as seen at ``now``: an open notice whose deadline passed is expired."""
        deadline = self.deadline(notice)
        if self.state in OPEN and deadline is not None and now >= deadline:
            return NoticeState.EXPIRED
        return self.state


class ResponseRefused(ValueError):
    """A response that the notice cannot take; ``rule`` names why (late, conflict, not_allowed, ...)."""

    def __init__(self, rule: str, message: str) -> None:
        self.rule = rule
        super().__init__(f"{rule}: {message}")


def respond(
    notice: NoticeBase, status: NoticeStatus, response: ResponseBase, received_at: datetime
) -> NoticeStatus:
    """The notice's status after a response received at ``received_at``; raises ResponseRefused.

    Repeating the action that settled a notice changes nothing; a different one contradicts it.
    """
    if (response.tenant, response.workload) != (notice.tenant, notice.workload):
        raise ResponseRefused("unknown_notice", f"no notice {response.notice_id} for this workload")
    action = ResponseAction(response.kind)
    if action not in notice.responses:
        allowed = ", ".join(notice.responses)
        raise ResponseRefused("not_allowed", f"a {notice.kind} notice takes {allowed}, not {action}")
    settled_by = ANSWERED[action]
    if status.state in FINAL:
        if status.state is settled_by:
            return status
        raise ResponseRefused("conflict", f"the notice was already {status.state}; {action} contradicts it")
    if status.observed(notice, received_at) is NoticeState.EXPIRED:
        raise ResponseRefused("late", f"the deadline {status.deadline(notice)} has passed")
    if isinstance(response, Defer):
        limit = getattr(notice, "deferrable_until", None)
        if limit is not None and response.until > limit:
            raise ResponseRefused("defer_too_long", f"until must not be later than deferrable_until {limit}")
        return NoticeStatus(NoticeState.DEFERRED, response.until)
    return NoticeStatus(settled_by, status.deferred_until)
