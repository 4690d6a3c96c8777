"""The hint registry: effective hints and their history, notices and their states, in SQL.

``semantics`` holds the rules as pure functions, ``store`` applies them in SQL (SQLite or PostgreSQL,
migrated by Alembic), ``service`` is the shell that consumes the bus.
"""

from .semantics import (
    EffectiveHints,
    NoticeState,
    NoticeStatus,
    ResponseRefused,
    effective_hints,
    respond,
    supersedes,
)
from .service import Registry, hints_view
from .store import RegistryStore, StoredNotice, UnknownNotice

__all__ = [
    "EffectiveHints",
    "NoticeState",
    "NoticeStatus",
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
