"""Tokens and identities: who may publish and read what, over HTTP and over NATS.

This package's top level needs only the base install (the SDK uses the token format); the database side
is ``wi.auth.store`` and the NATS permissions ``wi.auth.permissions``, both platform only.
"""

from .identity import Identity, TokenKind, nats_user, token_id_of

__all__ = ["Identity", "TokenKind", "nats_user", "token_id_of"]
