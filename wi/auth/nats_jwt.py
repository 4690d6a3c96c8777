"""NATS JWTs, as nats-server's auth callout exchanges them: claims signed with an ed25519 nkey.

A NATS JWT is ``base64url(header).base64url(claims).base64url(signature)`` (no padding), the header
``{"typ":"JWT","alg":"ed25519-nkey"}``, the signature the nkey's ed25519 signature of
``header.claims``, and the signer's public nkey the ``iss`` claim. NATS-specific claims live under
``nats`` with their ``type`` and ``version`` 2 (a ``type`` at the top level would mark a version-1 JWT,
whose signature covers the claims alone). No maintained Python library writes the authorization claims,
so this is the small part WI needs; ``nkeys`` signs.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import time
from collections.abc import Mapping
from typing import Any

import nacl.exceptions
import nacl.signing
import nkeys

HEADER = {"typ": "JWT", "alg": "ed25519-nkey"}
CLAIMS_VERSION = 2
"""The ``nats.version`` of the claims WI writes (the current one of nats-io/jwt)."""

SERVER_PREFIX = nkeys.PREFIX_BYTE_SERVER
"""The kind of nkey a server signs authorization requests with (``N...``)."""
ACCOUNT_PREFIX = nkeys.PREFIX_BYTE_ACCOUNT
"""The kind of nkey that issues user JWTs and authorization responses (``A...``)."""
USER_PREFIX = nkeys.PREFIX_BYTE_USER
"""The kind of nkey a user JWT is for (``U...``)."""


class JwtError(ValueError):
    """A JWT or nkey that is malformed, carries a bad signature, or has expired."""


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise JwtError(f"not base64url: {exc}") from exc


def new_account_seed() -> str:
    """A fresh account nkey seed (``SA...``), e.g. the issuer of the auth callout's JWTs."""
    seed: bytes = nkeys.encode_seed(os.urandom(32), ACCOUNT_PREFIX)
    return seed.decode()


def account_keypair(seed: str) -> nkeys.KeyPair:
    """The key pair of an account seed; raises JwtError if ``seed`` is not one."""
    try:
        prefix, _ = nkeys.decode_seed(seed.encode())
    except nkeys.NkeysError as exc:
        raise JwtError(f"not an nkey seed: {exc}") from exc
    if prefix != ACCOUNT_PREFIX:
        raise JwtError("not an account nkey seed (an account seed starts with SA)")
    return nkeys.from_seed(seed.encode())


def public_key(keypair: nkeys.KeyPair) -> str:
    """The encoded public nkey of a key pair (``A...`` for an account)."""
    encoded: bytes = keypair.public_key
    return encoded.decode()


def decode_public_key(encoded: str, prefix: int) -> bytes:
    """The raw ed25519 key in an encoded public nkey of the given kind; raises JwtError otherwise."""
    try:
        raw = base64.b32decode(encoded + "=" * (-len(encoded) % 8))
    except (binascii.Error, ValueError) as exc:
        raise JwtError(f"not an nkey: {exc}") from exc
    if len(raw) != 35:
        raise JwtError("not a public nkey")
    body, checksum = raw[:-2], raw[-2:]
    if nkeys.crc16_checksum(body) != checksum:
        raise JwtError("public nkey checksum mismatch")
    if body[0] != prefix:
        raise JwtError(f"not the expected kind of public nkey: {encoded[:1]}...")
    return body[1:]


def encode(claims: Mapping[str, Any], signer: nkeys.KeyPair) -> str:
    """Signs ``claims`` as a NATS JWT: ``iss`` is the signer, ``iat`` now, ``jti`` a fresh id."""
    body = {**claims, "iss": public_key(signer), "iat": int(time.time()), "jti": secrets.token_hex(16)}
    signing_input = f"{_b64encode(json.dumps(HEADER).encode())}.{_b64encode(json.dumps(body).encode())}"
    signature: bytes = signer.sign(signing_input.encode())
    return f"{signing_input}.{_b64encode(signature)}"


def decode(token: str, issuer_prefix: int) -> dict[str, Any]:
    """The claims of a NATS JWT whose ``iss`` is a public nkey of ``issuer_prefix`` that signed it.

    Raises JwtError when the JWT is malformed, its signature does not verify, or it has expired.
    """
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise JwtError("a JWT has three dot-separated parts")
    try:
        header = json.loads(_b64decode(parts[0]))
        claims = json.loads(_b64decode(parts[1]))
    except ValueError as exc:
        raise JwtError(f"not JSON: {exc}") from exc
    if not isinstance(header, dict) or header.get("alg", "").lower() != HEADER["alg"]:
        raise JwtError(f"unsupported JWT header {header!r}")
    if not isinstance(claims, dict) or not isinstance(claims.get("iss"), str):
        raise JwtError("the claims name no issuer")
    key = nacl.signing.VerifyKey(decode_public_key(claims["iss"], issuer_prefix))
    try:
        key.verify(f"{parts[0]}.{parts[1]}".encode(), _b64decode(parts[2]))
    except nacl.exceptions.CryptoError as exc:  # a wrong signature, or one of the wrong length
        raise JwtError("the signature does not verify") from exc
    expires = claims.get("exp", 0)
    if isinstance(expires, int) and 0 < expires < time.time():
        raise JwtError("the JWT has expired")
    return claims
