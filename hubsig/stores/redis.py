"""A store in Redis, shared by every receiver behind a load balancer (``hubsig[redis]``).

A claim is ``SET key claimed:<token> NX PX lease``, with the token of one
delivery attempt: exactly one attempt wins it, and it expires on its own if
that worker dies. Completing and releasing are Lua scripts that act only on
the attempt's own claim, so a worker whose lease ran out cannot overwrite or
delete a claim another attempt now holds.
Connection errors become ``StoreUnavailable``: the receiver answers 500 and
the sender's retry comes back when Redis does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hubsig._dedupe import Claim, StoreUnavailable

__all__ = ["AsyncRedisStore", "RedisStore"]

_COMPLETE = """
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[1] then
  redis.call('SET', KEYS[1], 'done', 'PX', ARGV[2])
  return 1
end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class _Keys:
    """What both stores share: the key prefix, the value a claim holds, and verdicts."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def key(self, key: str) -> str:
        return self.prefix + key

    @staticmethod
    def claimed(token: str) -> str:
        """What a claim's key holds: its attempt's own token."""
        return "claimed:" + token

    @staticmethod
    def verdict(won: object, current: object) -> Claim:
        if won:
            return Claim.CLAIMED
        return Claim.DONE if current in (b"done", "done") else Claim.BUSY


class RedisStore:
    """Synchronous store over a ``redis.Redis`` client (or a URL)."""

    blocking = True
    """Its calls wait on I/O: async receivers run them in a worker thread."""

    def __init__(self, client: Any, prefix: str = "hubsig:") -> None:
        import redis

        self._redis = redis.Redis.from_url(client) if isinstance(client, str) else client
        self._errors = (redis.RedisError, OSError)
        self._keys = _Keys(prefix)
        self._complete = self._redis.register_script(_COMPLETE)
        self._release = self._redis.register_script(_RELEASE)
        self._renew = self._redis.register_script(_RENEW)

    def claim(self, keys: Sequence[str], lease: float, token: str) -> list[Claim]:
        found = []
        claimed = _Keys.claimed(token)
        try:
            for key in keys:
                full = self._keys.key(key)
                won = self._redis.set(full, claimed, nx=True, px=_ms(lease))
                current = None if won else self._redis.get(full)
                found.append(_Keys.verdict(won, current))
        except self._errors as error:
            won_keys = [k for k, c in zip(keys, found, strict=False) if c is Claim.CLAIMED]
            self.release(won_keys, token)
            raise StoreUnavailable(f"Redis is unavailable: {type(error).__name__}") from None
        return found

    def complete(self, keys: Sequence[str], retention: float, token: str) -> None:
        try:
            for key in keys:
                arguments: list[str | int] = [_Keys.claimed(token), _ms(retention)]
                self._complete(keys=[self._keys.key(key)], args=arguments)
        except self._errors as error:
            raise StoreUnavailable(f"Redis is unavailable: {type(error).__name__}") from None

    def release(self, keys: Sequence[str], token: str) -> None:
        try:
            for key in keys:
                self._release(keys=[self._keys.key(key)], args=[_Keys.claimed(token)])
        except self._errors:
            pass  # the claims expire with their lease

    def renew(self, keys: Sequence[str], lease: float, token: str) -> None:
        try:
            for key in keys:
                arguments: list[str | int] = [_Keys.claimed(token), _ms(lease)]
                self._renew(keys=[self._keys.key(key)], args=arguments)
        except self._errors as error:
            raise StoreUnavailable(f"Redis is unavailable: {type(error).__name__}") from None

    def close(self) -> None:
        """Close the client's connections."""
        self._redis.close()


class AsyncRedisStore:
    """The same store over ``redis.asyncio`` for ASGI receivers."""

    blocking = False
    """Its calls are awaited on the event loop."""

    def __init__(self, client: Any, prefix: str = "hubsig:") -> None:
        import redis
        import redis.asyncio

        self._redis = redis.asyncio.Redis.from_url(client) if isinstance(client, str) else client
        self._errors = (redis.RedisError, OSError)
        self._keys = _Keys(prefix)
        self._complete = self._redis.register_script(_COMPLETE)
        self._release = self._redis.register_script(_RELEASE)
        self._renew = self._redis.register_script(_RENEW)

    async def claim(self, keys: Sequence[str], lease: float, token: str) -> list[Claim]:
        found: list[Claim] = []
        claimed = _Keys.claimed(token)
        try:
            for key in keys:
                full = self._keys.key(key)
                won = await self._redis.set(full, claimed, nx=True, px=_ms(lease))
                current = None if won else await self._redis.get(full)
                found.append(_Keys.verdict(won, current))
        except self._errors as error:
            won_keys = [k for k, c in zip(keys, found, strict=False) if c is Claim.CLAIMED]
            await self.release(won_keys, token)
            raise StoreUnavailable(f"Redis is unavailable: {type(error).__name__}") from None
        return found

    async def complete(self, keys: Sequence[str], retention: float, token: str) -> None:
        try:
            for key in keys:
                arguments: list[str | int] = [_Keys.claimed(token), _ms(retention)]
                await self._complete(keys=[self._keys.key(key)], args=arguments)
        except self._errors as error:
            raise StoreUnavailable(f"Redis is unavailable: {type(error).__name__}") from None

    async def release(self, keys: Sequence[str], token: str) -> None:
        try:
            for key in keys:
                await self._release(keys=[self._keys.key(key)], args=[_Keys.claimed(token)])
        except self._errors:
            pass  # the claims expire with their lease

    async def renew(self, keys: Sequence[str], lease: float, token: str) -> None:
        try:
            for key in keys:
                arguments: list[str | int] = [_Keys.claimed(token), _ms(lease)]
                await self._renew(keys=[self._keys.key(key)], args=arguments)
        except self._errors as error:
            raise StoreUnavailable(f"Redis is unavailable: {type(error).__name__}") from None

    async def close(self) -> None:
        """Close the client's connections."""
        await self._redis.aclose()


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
