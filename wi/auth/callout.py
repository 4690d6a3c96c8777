"""The NATS auth callout: nats-server asks WI who each connecting client is and what it may do.

Every nats-server WI uses (the embedded one, or each node of a cluster) is configured with
``authorization { auth_callout { issuer: <account public nkey>, auth_users: [...], account: AUTH } }``.
For each client that is not one of the ``auth_users`` it sends the client's CONNECT options to
``$SYS.REQ.USER.AUTH`` in the AUTH account, as a JWT it signs with its own server nkey. WI processes
answer in one queue group: a response JWT, signed with the issuer account's nkey, that holds either a user
JWT (placed in the WI account, with the permissions of ``wi.auth.permissions``) or an error, which
nats-server turns into an authorization violation. Tokens are checked in the database on every connect,
so a revoked token is refused at once; WI disconnects its open connections through the system account
(``wi.auth.system``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from . import nats_jwt
from .identity import token_id_of
from .permissions import EVERYTHING, NatsPermissions, permissions_for
from .store import InvalidToken, TokenStore

log = logging.getLogger("wi.auth.callout")

DATA_ACCOUNT = "WI"
"""The account of WI's streams and subjects, where every authorized client is placed."""
CALLOUT_ACCOUNT = "AUTH"
"""The account nats-server sends authorization requests in; it holds only the callout's user."""
SYSTEM_ACCOUNT = "SYS"
"""nats-server's system account, whose user WI disconnects revoked tokens' connections with."""
CALLOUT_USER = "wi-auth"
"""The callout's own user, in the AUTH account; exempt from the callout."""
SYSTEM_USER = "wi-system"
"""The system account's user (on a cluster its name is WI_NATS_SYSTEM_USER's); exempt from the callout."""
PLATFORM_USER = "wi-platform"
"""WI's own connection: this user with the password ``platform_password`` derives."""

AUTH_REQUEST_SUBJECT = "$SYS.REQ.USER.AUTH"
"""Where nats-server sends authorization requests, in the callout's account."""
CALLOUT_QUEUE = "wi-auth-callout"
"""WI processes sharing the issuer share the authorization requests."""
_PLATFORM_PASSWORD_LABEL = b"wi/nats/platform-password/v1"


def platform_password(issuer_seed: str) -> str:
    """WI's own NATS password: an HMAC of the issuer seed, so every WI process holding it agrees."""
    return hmac.new(issuer_seed.encode(), _PLATFORM_PASSWORD_LABEL, hashlib.sha256).hexdigest()


class Refused(Exception):
    """A client the callout does not authorize; the message says why (never the secret)."""


@dataclass(frozen=True)
class Grant:
    """Who an authorized client is (shown as its NATS user) and what it may do."""

    user: str
    permissions: NatsPermissions


@dataclass(frozen=True)
class CalloutAccounts:
    """The accounts and the callout that a nats-server of WI's needs, as nats-server configuration.

    ``issuer`` is the public nkey of the account seed WI signs with; the passwords are those of the
    callout's user and of the system account's user, both exempt from the callout.
    """

    issuer: str
    callout_password: str
    system_password: str

    def config(self) -> str:
        """The ``accounts``, ``system_account`` and ``authorization`` blocks."""

        def user(name: str, password: str) -> str:
            return f"{{ user: {json.dumps(name)}, password: {json.dumps(password)} }}"

        return "\n".join(
            [
                "accounts {",
                f"  {DATA_ACCOUNT} {{ jetstream: enabled }}",
                f"  {CALLOUT_ACCOUNT} {{ users: [ {user(CALLOUT_USER, self.callout_password)} ] }}",
                f"  {SYSTEM_ACCOUNT} {{ users: [ {user(SYSTEM_USER, self.system_password)} ] }}",
                "}",
                f"system_account: {SYSTEM_ACCOUNT}",
                "authorization {",
                "  auth_callout {",
                f"    issuer: {json.dumps(self.issuer)}",
                f"    auth_users: [ {json.dumps(CALLOUT_USER)}, {json.dumps(SYSTEM_USER)} ]",
                f"    account: {CALLOUT_ACCOUNT}",
                "  }",
                "}",
            ]
        )


class AuthCallout:
    """Answers nats-server's authorization requests from the tokens in the store."""

    def __init__(self, tokens: TokenStore, issuer_seed: str) -> None:
        self.tokens = tokens
        self.issuer = nats_jwt.account_keypair(issuer_seed)
        self._platform_password = platform_password(issuer_seed)
        self._nc: NatsClient | None = None
        self._subscription: Subscription | None = None

    @property
    def live(self) -> bool:
        """Whether requests can reach this callout: it is subscribed and its connection is up."""
        return self._subscription is not None and self._nc is not None and self._nc.is_connected

    async def start(self, nc: NatsClient) -> None:
        """Starts answering on ``nc``, a connection of the callout's user in the AUTH account.

        Returns once ``nc``'s server has the subscription, so that clients connecting there from then on
        reach the callout (other nodes of a cluster learn of it a moment later, through their routes).
        """
        self._nc = nc
        self._subscription = await nc.subscribe(AUTH_REQUEST_SUBJECT, queue=CALLOUT_QUEUE, cb=self._answer)
        await nc.flush()

    async def stop(self) -> None:
        """Stops answering (the connection is the caller's to close)."""
        if self._subscription is not None and self._nc is not None and not self._nc.is_closed:
            await self._subscription.unsubscribe()
        self._subscription = None

    async def _answer(self, msg: Msg) -> None:
        response = await asyncio.to_thread(self.respond, msg.data)
        await msg.respond(response)

    def respond(self, request: bytes) -> bytes:
        """The response JWT to an authorization request JWT; empty (a refusal) if the request is invalid."""
        try:
            claims = nats_jwt.decode(request.decode(errors="replace"), nats_jwt.SERVER_PREFIX)
            nats = claims["nats"]
            user_nkey, server_id = nats["user_nkey"], nats["server_id"]["id"]
            if nats.get("type") != "authorization_request" or server_id != claims["iss"]:
                raise nats_jwt.JwtError("not an authorization request of the server that signed it")
            nats_jwt.decode_public_key(user_nkey, nats_jwt.USER_PREFIX)
        except (nats_jwt.JwtError, KeyError, TypeError, AttributeError) as exc:
            log.warning("ignored an invalid authorization request: %s", exc)
            return b""
        client = nats.get("client_info", {})
        whom = f"{client.get('name') or 'unnamed client'} from {client.get('host', '?')}"
        try:
            grant = self.grant(nats.get("connect_opts", {}))
        except Refused as exc:
            log.info("NATS: refused %s: %s", whom, exc)
            outcome: dict[str, Any] = {"error": str(exc)}
        else:
            log.debug("NATS: authorized %s as %s", whom, grant.user)
            outcome = {"jwt": self._user_jwt(user_nkey, grant)}
        response = {
            "sub": user_nkey,
            "aud": server_id,
            "nats": {**outcome, "type": "authorization_response", "version": nats_jwt.CLAIMS_VERSION},
        }
        return nats_jwt.encode(response, self.issuer).encode()

    def grant(self, connect_opts: dict[str, Any]) -> Grant:
        """Who the client's credential names and what it may do; raises Refused otherwise.

        A WI token comes as ``auth_token`` (NATS ``token=``), or as ``pass`` with ``user`` its id; WI's
        own connection is PLATFORM_USER with the derived password.
        """
        user, password, token = (connect_opts.get(key) or None for key in ("user", "pass", "auth_token"))
        if user == PLATFORM_USER:
            if password is None or not hmac.compare_digest(str(password), self._platform_password):
                raise Refused(f"wrong password for {PLATFORM_USER}")
            return Grant(PLATFORM_USER, EVERYTHING)
        if token is None and user is not None and password is not None:
            try:
                matches = token_id_of(str(password)) == user
            except ValueError:
                matches = False
            if not matches:
                raise Refused(f"user {user!r} is not the id of the token given as password")
            token = password
        if token is None:
            raise Refused("no credential: give a WI token as the token, or as the password of its id")
        try:
            identity = self.tokens.check(str(token))
        except InvalidToken as exc:
            raise Refused(str(exc)) from None
        return Grant(identity.token_id, permissions_for(identity))

    def _user_jwt(self, user_nkey: str, grant: Grant) -> str:
        claims = {
            "sub": user_nkey,
            "aud": DATA_ACCOUNT,
            "name": grant.user,
            "nats": {
                **grant.permissions.jwt_claims(),
                "subs": -1,
                "data": -1,
                "payload": -1,
                "type": "user",
                "version": nats_jwt.CLAIMS_VERSION,
            },
        }
        return nats_jwt.encode(claims, self.issuer)
