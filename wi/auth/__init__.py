"""Tokens and identities: who may publish and read what, over HTTP and over NATS."""

from .tokens import Identity, TokenInfo, TokenKind, TokenStore, nats_user, token_id_of

__all__ = ["Identity", "TokenInfo", "TokenKind", "TokenStore", "nats_user", "token_id_of"]
