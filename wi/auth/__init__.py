"""Tokens and identities: who may publish and read what, over HTTP and over NATS.

This package's top level needs only the base install (the SDK uses the token format); the platform side
is ``wi.auth.store`` (the tokens' database), ``wi.auth.permissions`` (what a connection may do),
``wi.auth.callout`` (the NATS auth callout) and ``wi.auth.system`` (disconnecting revoked tokens).
"""

from .identity import Identity, TokenKind, token_id_of

__all__ = ["Identity", "TokenKind", "token_id_of"]
