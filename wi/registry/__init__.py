"""The hint registry: effective hints and their history, notices and their states, in SQL.

``semantics`` holds the rules as pure functions, ``store`` applies them in SQL (SQLite or PostgreSQL,
migrated by Alembic), ``service`` is the shell that consumes the bus.
"""

from wi.contract import NoticeState

from .progress import FreshRead, Progress
from .semantics import (
    EffectiveHints,
    NoticeStatus,
    ResponseRefused,
    effective_hints,
    respond,
    supersedes,
)
from .service import HINTS_CONSUMER, READ_YOUR_WRITES_WAIT_S, Registry, hints_view
from .store import Judgement, NoticeTrail, RegistryStore, StoredNotice, UnknownNotice

__all__ = [
    "HINTS_CONSUMER",
    "READ_YOUR_WRITES_WAIT_S",
    "EffectiveHints",
    "FreshRead",
    "Judgement",
    "NoticeState",
    "NoticeStatus",
    "NoticeTrail",
    "Progress",
    "Registry",
    "RegistryStore",
    "ResponseRefused",
    "StoredNotice",
    "UnknownNotice",
    "effective_hints",
    "hints_view",
    "respond",
    "supersedes",
]
