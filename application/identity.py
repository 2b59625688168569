"""API tokens: issued once, stored as argon2id hashes, verified with a small cache.

A token reads ``tuohu_<user name>_<48 hex digits>``: the name lets the user be
found without scanning (its aggregate id is derived from it), the 192 random
bits are the secret. Only ``argon2id`` hashes are stored (OWASP's minimum
parameters: 19 MiB, 2 passes, 1 lane), on the user's events.

:class:`Authenticator` verifies a token against the user's current hash and
remembers the verified token (by its SHA-256, never the token itself) with the
user's version: a rotated or revoked token fails on the next request because
the user's version moved, and argon2 runs only once per token and version.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from application.access import Principal, Unauthenticated
from domain.user import NAME_PATTERN, User, user_id

if TYPE_CHECKING:
    from application.app import TuohuApplication

TOKEN_PREFIX = "tuohu_"
_SECRET_HEX = 48
_TOKEN = re.compile(rf"^{TOKEN_PREFIX}({NAME_PATTERN[1:-1]})_([0-9a-f]{{{_SECRET_HEX}}})$", re.ASCII)
_HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
_REFUSED = "missing, malformed, unknown, rotated or revoked bearer token"


def new_token(name: str) -> str:
    """A fresh token for user ``name``."""
    return f"{TOKEN_PREFIX}{name}_{secrets.token_hex(_SECRET_HEX // 2)}"


def token_user(token: str) -> str | None:
    """The user name a well-formed token names, else None."""
    match = _TOKEN.match(token) if isinstance(token, str) else None
    return match.group(1) if match else None


def hash_token(token: str) -> str:
    """The argon2id hash (PHC string) of ``token``."""
    return _HASHER.hash(token)


def verify_token(token_hash: str, token: str) -> bool:
    """Whether ``token`` matches ``token_hash`` (constant time in the library)."""
    try:
        return _HASHER.verify(token_hash, token)
    except (VerificationError, InvalidHashError):
        return False


class Authenticator:
    """Turns a bearer token into a :class:`Principal`, or raises :class:`Unauthenticated`.

    One indexed read per request (the user's newest event, for its version);
    argon2 only when the token was not yet verified at that version.
    """

    def __init__(self, app: TuohuApplication, cache_size: int = 10_000) -> None:
        self.app = app
        self.cache_size = cache_size
        self._cache: OrderedDict[str, tuple[int, Principal]] = OrderedDict()
        self._lock = threading.Lock()

    def authenticate(self, token: str | None) -> Principal:
        name = token_user(token or "")
        if name is None:
            raise Unauthenticated(_REFUSED)
        uid = user_id(name)
        newest = self.app.recorder.select_events(uid, desc=True, limit=1)
        if not newest:
            raise Unauthenticated(_REFUSED)
        version = newest[0].originator_version
        key = hashlib.sha256(token.encode()).hexdigest()  # type: ignore[union-attr]
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[0] == version:
                self._cache.move_to_end(key)
                return cached[1]
        user = self.app.repository.get(uid)
        if not isinstance(user, User) or not user.active or not verify_token(user.token_hash, token or ""):
            with self._lock:
                self._cache.pop(key, None)
            raise Unauthenticated(_REFUSED)
        principal = Principal(name=user.name, role=user.role, branch=user.branch)
        with self._lock:
            self._cache[key] = (user.version, principal)
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return principal


def users(app: TuohuApplication) -> list[User]:
    """Every user ever added, in the order they were added (revoked ones included).

    Reads the ``User.Added`` notifications (a topic-filtered scan of the log),
    then each user; meant for the administrator's listing, not for every request.
    """
    found: list[User] = []
    start = 1
    while True:
        page = app.recorder.select_notifications(start, limit=1000, topics=[User.Added.TOPIC])
        if not page:
            return found
        found.extend(app.repository.get(n.originator_id) for n in page)
        start = page[-1].id + 1
