"""Users and keypairs that the mock manager issues and the mock FastTrack verifies against.

Keys are derived from a seed and the username, so the same run always issues the same keypairs.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass


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
    """The manager's user table. Plain data with deterministic key derivation; shared by the mocks."""

    def __init__(self, seed: str = "harness") -> None:
        self.seed = seed
        self._by_name: dict[str, User] = {}
        self._by_key: dict[str, User] = {}

    def create(self, username: str) -> User:
        if username in self._by_name:
            return self._by_name[username]
        user = User(
            username=username,
            password=derive(self.seed, f"pw:{username}", 16),
            access_key="AKHARNESS" + derive(self.seed, f"ak:{username}", 11).upper(),
            secret_key=derive(self.seed, f"sk:{username}", 40),
        )
        self._by_name[username] = user
        self._by_key[user.access_key] = user
        return user

    def forget(self, username: str) -> None:
        user = self._by_name.pop(username, None)
        if user is not None:
            self._by_key.pop(user.access_key, None)

    def by_name(self, username: str) -> User | None:
        return self._by_name.get(username)

    def by_access_key(self, access_key: str) -> User | None:
        return self._by_key.get(access_key)

    def secrets(self) -> dict[str, str]:
        return {ak: u.secret_key for ak, u in self._by_key.items()}
