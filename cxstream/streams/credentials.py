"""Who a request acts as, and the signed credentials a worker hands out.

Three ways in:
- ``Authorization: Bearer <token>``: the shared CXSTREAM_API_TOKEN (a machine, sees all)
  or a user's own token from the users file;
- the console's session cookie: the user's name and a digest of their token, signed and
  dated by the workers (never the token itself: a stolen cookie ends with its session,
  and a changed token in the users file ends every session of that user);
- ``X-Cxstream-Acting-As``: a user's name signed by a worker, valid for
  ACTING_MAX_AGE_SECONDS. A worker forwarding a request to another (the owner of a
  customer or an alert), and the console calling the API, send their own credential
  (the shared token) with it, never the user's token.

Signatures are itsdangerous' (HMAC-SHA256 with a timestamp) under a key derived from the
shared token, which every worker of a deployment holds; without a shared token (one
worker on loopback) the key is random per process and sessions end with it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from typing import Any

from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer

from cxstream.streams.users import COOKIE, MACHINE, Principal, Users

ACTING_HEADER = "X-Cxstream-Acting-As"
ACTING_MAX_AGE_SECONDS = 30
SESSION_SALT, ACTING_SALT = "cxstream.console-session.v1", "cxstream.acting-user.v1"


def signing_key(api_token: str | None) -> bytes:
    """The workers' shared signing key: derived from the shared token (never the token
    itself), else random for this process."""
    if not api_token:
        return secrets.token_bytes(32)
    return hmac.new(api_token.encode(), b"cxstream signing key v1", hashlib.sha256).digest()


def _serializer(key: bytes, salt: str, clock: Callable[[], float]
                ) -> URLSafeTimedSerializer:
    """itsdangerous' dated serializer, reading the time from ``clock`` (its signer's
    ``get_timestamp`` hook) so tests can move it."""
    class ClockedSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(clock())

    return URLSafeTimedSerializer(key, salt=salt, signer=ClockedSigner,
                                  signer_kwargs={"digest_method": hashlib.sha256})


class Credentials:
    """Finds the principal of a request; signs sessions and acting users."""

    def __init__(self, users: Users, key: bytes, session_hours: float,
                 api_token: str | None, clock: Callable[[], float] = time.time) -> None:
        self.users = users
        self.session_seconds = int(session_hours * 3_600)
        self.api_token = api_token
        self.clock = clock
        self._sessions = _serializer(key, SESSION_SALT, clock)
        self._acting = _serializer(key, ACTING_SALT, clock)

    # -- sessions ----------------------------------------------------------------------

    def session_for(self, token: str) -> tuple[str, Principal] | None:
        """The session cookie of a user signing in with ``token`` (None: not a user's
        token; the shared token signs in nobody, it has no name to show)."""
        entry = self.users.entry_of(token)
        if entry is None:
            return None
        cookie = self._sessions.dumps({"u": entry.name, "d": entry.digest[:32]})
        return cookie, self.users.principal_of_entry(entry)

    def from_session(self, cookie: str | None) -> Principal | None:
        if not cookie:
            return None
        body = self._loads(self._sessions, cookie, self.session_seconds)
        if not isinstance(body, dict):
            return None
        entry = self.users.entry_named(str(body.get("u")))
        if entry is None or not hmac.compare_digest(entry.digest[:32], str(body.get("d"))):
            return None  # the user or their token changed since
        return self.users.principal_of_entry(entry)

    # -- requests ----------------------------------------------------------------------

    def from_request(self, headers: Any, cookies: Any) -> Principal | None:
        """A signed acting user (with the shared token, where one is set), else a bearer
        token, else the console's session cookie."""
        acting = headers.get(ACTING_HEADER)
        if acting is not None:
            bearer = self._bearer(headers)
            if self.api_token and self.users.principal(bearer) != MACHINE:
                return None
            name = self._loads(self._acting, acting, ACTING_MAX_AGE_SECONDS)
            entry = self.users.entry_named(str(name)) if isinstance(name, str) else None
            return None if entry is None else self.users.principal_of_entry(entry)
        bearer = self._bearer(headers)
        if bearer is not None:
            return self.users.principal(bearer)
        return self.from_session(cookies.get(COOKIE))

    def forward_headers(self, principal: Principal) -> dict[str, str]:
        """What a worker sends on behalf of ``principal``: its own credential, and the
        user's name signed (a machine needs no name)."""
        headers = {"Authorization": f"Bearer {self.api_token}"} if self.api_token else {}
        if not principal.machine:
            headers[ACTING_HEADER] = self._acting.dumps(principal.name)
        return headers

    @staticmethod
    def _bearer(headers: Any) -> str | None:
        supplied = headers.get("Authorization", "")
        return supplied.removeprefix("Bearer ").strip() if supplied.startswith("Bearer ") \
            else None

    @staticmethod
    def _loads(serializer: URLSafeTimedSerializer, value: str, max_age: int) -> Any:
        try:
            return serializer.loads(value, max_age=max_age)
        except BadSignature:  # a wrong signature, an expired one, or not one at all
            return None
