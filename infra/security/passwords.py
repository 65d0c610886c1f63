"""Argon2id password hashes (argon2-cffi), computed off the event loop."""

from __future__ import annotations

import secrets
from functools import cached_property

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class Argon2PasswordHasher:
    """Implements :class:`domain.users.ports.PasswordHasher`."""

    def __init__(self, time_cost: int = 3, memory_kib: int = 65_536, parallelism: int = 4) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)

    @cached_property
    def _dummy_hash(self) -> str:
        return self._hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        def _verify() -> bool:
            try:
                return self._hasher.verify(password_hash or self._dummy_hash, password) and bool(password_hash)
            except (VerificationError, InvalidHashError):
                return False

        return await anyio.to_thread.run_sync(_verify)
