"""The audit log of platform-service decisions: what each service decided, why, and what it sent."""

from .store import AuditStore, Decision

__all__ = ["AuditStore", "Decision"]
