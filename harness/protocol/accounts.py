"""Users and keypairs that the mock manager issues and the mock FastTrack verifies against.

Keys are derived from a seed and the username, so the same run always issues the same keypairs. An access
key carries a check code keyed by the seed, so a mock FastTrack in another process (behind a tap, say) can
recognise the keypairs the harness's manager issued and derive their secret keys from the seed alone.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

AK_PREFIX = "AKHARNESS"


@dataclass(frozen=True, slots=True)
class User:
    username: str
    password: str
    access_key: str
    secret_key: str
    role: str = "user"
    status: str = "active"


def derive(seed: str, label: str, length: int) -> str:
    return hmac.new(seed.encode(), label.encode(), hashlib.sha256).hexdigest()[:length]


class Directory:
    """The manager's user table. ``trust_seed``: also accept any access key bearing the seed's check code."""

    def __init__(self, seed: str = "harness", *, trust_seed: bool = False) -> None:
        self.seed = seed
        self.trust_seed = trust_seed
        self._by_name: dict[str, User] = {}
        self._by_key: dict[str, User] = {}
        self._session_tokens: dict[str, str] = {}  # username -> the last login-session token the manager answered

    def _access_key(self, username: str) -> str:
        body = derive(self.seed, f"ak:{username}", 6).upper()
        return AK_PREFIX + body + derive(self.seed, f"akc:{body}", 5).upper()

    def _secret_key(self, access_key: str) -> str:
        return derive(self.seed, f"sk:{access_key}", 40)

    def create(self, username: str) -> User:
        if username in self._by_name:
            return self._by_name[username]
        ak = self._access_key(username)
        user = User(username=username, password=derive(self.seed, f"pw:{username}", 16), access_key=ak,
                    secret_key=self._secret_key(ak))
        self._by_name[username] = user
        self._by_key[user.access_key] = user
        return user

    def forget(self, username: str) -> None:
        self._session_tokens.pop(username, None)
        user = self._by_name.pop(username, None)
        if user is not None:
            self._by_key.pop(user.access_key, None)

    def note_session_token(self, username: str, token: str) -> None:
        """The manager answered this login with ``token`` (26.4 contract): what a 26.x session id must be."""
        self._session_tokens[username] = token

    def session_token(self, username: str) -> str | None:
        return self._session_tokens.get(username)

    def by_name(self, username: str) -> User | None:
        return self._by_name.get(username)

    def by_access_key(self, access_key: str) -> User | None:
        user = self._by_key.get(access_key)
        if user is None and self.trust_seed and self._seeded(access_key):
            user = User("", "", access_key, self._secret_key(access_key))
        return user

    def _seeded(self, access_key: str) -> bool:
        if not access_key.startswith(AK_PREFIX) or len(access_key) != len(AK_PREFIX) + 11:
            return False
        body, check = access_key[len(AK_PREFIX):-5], access_key[-5:]
        return hmac.compare_digest(check, derive(self.seed, f"akc:{body}", 5).upper())

    def secrets(self) -> dict[str, str]:
        return {ak: u.secret_key for ak, u in self._by_key.items()}

    def secret_for(self, access_key: str) -> str | None:
        user = self.by_access_key(access_key)
        return user.secret_key if user else None
