"""A store in Redis, shared by every receiver behind a load balancer (``hubsig[redis]``).

A claim is a key holding ``claimed:<token>:<deadline>``, set by a Lua script
that compares the deadline with Redis's own clock: exactly one delivery
attempt wins it, and when its worker dies the lease runs out and the next
claim is ``RECLAIMED`` (the key outlives its lease by a day, so the crash is
seen). Completing, renewing and releasing are scripts that act only on the
attempt's own token, so a worker whose lease ran out cannot overwrite or
delete a claim another attempt now holds. Each call sends one pipeline, one
round trip however many events a delivery has. Connection errors become
``StoreUnavailable``: the receiver answers 500 and the sender's retry comes
back when Redis does.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Sequence
from typing import Any

from hubsig._dedupe import Claim, StoreUnavailable
from hubsig.errors import ConfigurationError

__all__ = ["AsyncRedisStore", "RedisStore"]

logger = logging.getLogger("hubsig")

_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local function deadline(value)
  return tonumber(string.match(value, ':(%d+)$')) or 0
end
"""
# KEYS[1]: the event; ARGV: token, lease ms, how long an expired claim is remembered (ms).
_CLAIM = (
    _NOW
    + """
local current = redis.call('GET', KEYS[1])
if current == 'done' then return 0 end
local verdict = 1
if current then
  if deadline(current) > now then return 2 end
  verdict = 3
end
local lease = tonumber(ARGV[2])
local claim = 'claimed:' .. ARGV[1] .. ':' .. (now + lease)
redis.call('SET', KEYS[1], claim, 'PX', lease + tonumber(ARGV[3]))
return verdict
"""
)
# ARGV[1]: 'claimed:<token>:', the prefix of this attempt's claims.
_COMPLETE = (
    _NOW
    + """
local current = redis.call('GET', KEYS[1])
if current and current ~= 'done' and string.sub(current, 1, #ARGV[1]) ~= ARGV[1]
   and deadline(current) > now then
  return 0
end
redis.call('SET', KEYS[1], 'done', 'PX', ARGV[2])
return 1
"""
)
_RENEW = (
    _NOW
    + """
local current = redis.call('GET', KEYS[1])
if current and string.sub(current, 1, #ARGV[1]) == ARGV[1] then
  local lease = tonumber(ARGV[2])
  redis.call('SET', KEYS[1], ARGV[1] .. (now + lease), 'PX', lease + tonumber(ARGV[3]))
  return 1
end
return 0
"""
)
_RELEASE = """
local current = redis.call('GET', KEYS[1])
if current and string.sub(current, 1, #ARGV[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
_VERDICTS = {0: Claim.DONE, 1: Claim.CLAIMED, 2: Claim.BUSY, 3: Claim.RECLAIMED}
CLAIM_MEMORY_MS = 24 * 3600 * 1000
"""How long an expired, unsettled claim is remembered, so the next claim is RECLAIMED."""


class _Scripts:
    """What both stores share: key names, the scripts' arguments, and reading their answers."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.prefix = prefix
        self.claim = client.register_script(_CLAIM)
        self.complete = client.register_script(_COMPLETE)
        self.renew = client.register_script(_RENEW)
        self.release = client.register_script(_RELEASE)

    def key(self, key: str) -> str:
        return self.prefix + key

    @staticmethod
    def held(token: str) -> str:
        """The prefix of every claim this attempt holds."""
        return f"claimed:{token}:"

    @staticmethod
    def verdicts(answers: Sequence[Any]) -> list[Claim]:
        return [_VERDICTS[int(answer)] for answer in answers]

    def probe(self) -> str:
        return self.key(f"hubsig-check:{secrets.token_hex(8)}")


def _check_eviction(memory: Any) -> None:
    """Refuse a Redis that may evict keys: an evicted completion runs its event again."""
    if not isinstance(memory, dict):
        return
    policy = memory.get("maxmemory_policy")
    if isinstance(policy, bytes):
        policy = policy.decode()
    if int(memory.get("maxmemory") or 0) > 0 and policy not in (None, "noeviction"):
        raise ConfigurationError(
            f"Redis may evict hubsig's keys (maxmemory-policy {policy} with a maxmemory "
            "limit): a forgotten completion runs its event again; use noeviction, or a Redis "
            "of its own"
        )


def _unusable(error: BaseException) -> ConfigurationError:
    import redis

    if isinstance(error, redis.exceptions.ResponseError):
        return ConfigurationError(
            "the Redis store cannot run its scripts (EVAL/EVALSHA and GET/SET/DEL on its "
            f"keys are needed; check the user's ACL): {error}"
        )
    return ConfigurationError(f"the Redis store cannot reach Redis: {type(error).__name__}")


class RedisStore:
    """Synchronous store over a ``redis.Redis`` client (or a URL)."""

    blocking = True
    """Its calls wait on I/O: async receivers run them in a worker thread."""

    def __init__(self, client: Any, prefix: str = "hubsig:") -> None:
        import redis

        self._redis = redis.Redis.from_url(client) if isinstance(client, str) else client
        self._errors = (redis.RedisError, OSError)
        self._scripts = _Scripts(self._redis, prefix)

    def _run(self, script: Any, keys: Sequence[str], arguments: list[Any]) -> list[Any]:
        pipe = self._redis.pipeline(transaction=False)
        for key in keys:
            script(keys=[self._scripts.key(key)], args=arguments, client=pipe)
        answers: list[Any] = pipe.execute()
        return answers

    def claim(self, keys: Sequence[str], lease: float, token: str) -> list[Claim]:
        try:
            answers = self._run(self._scripts.claim, keys, [token, _ms(lease), CLAIM_MEMORY_MS])
        except self._errors as error:
            self.release(keys, token)  # whichever it won: releasing is fenced by the token
            raise StoreUnavailable(f"Redis is unavailable: {type(error).__name__}") from None
        return _Scripts.verdicts(answers)

    def complete(self, keys: Sequence[str], retention: float, token: str) -> None:
        try:
            self._run(self._scripts.complete, keys, [_Scripts.held(token), _ms(retention)])
        except self._errors as error:
            raise StoreUnavailable(f"Redis is unavailable: {type(error).__name__}") from None

    def release(self, keys: Sequence[str], token: str) -> None:
        with contextlib.suppress(*self._errors):  # the claims expire with their lease
            self._run(self._scripts.release, keys, [_Scripts.held(token)])

    def renew(self, keys: Sequence[str], lease: float, token: str) -> None:
        arguments = [_Scripts.held(token), _ms(lease), CLAIM_MEMORY_MS]
        try:
            self._run(self._scripts.renew, keys, arguments)
        except self._errors as error:
            raise StoreUnavailable(f"Redis is unavailable: {type(error).__name__}") from None

    def check(self) -> None:
        """Fail start-up with ``ConfigurationError`` unless Redis answers and runs the scripts."""
        probe, token = self._scripts.probe(), secrets.token_hex(8)
        try:
            self._scripts.claim(keys=[probe], args=[token, 1000, 0])
            self._scripts.renew(keys=[probe], args=[_Scripts.held(token), 1000, 0])
            self._scripts.release(keys=[probe], args=[_Scripts.held(token)])
            self._scripts.complete(keys=[probe], args=[_Scripts.held(token), 1])
        except self._errors as error:
            raise _unusable(error) from None
        try:
            memory = self._redis.info("memory")
        except self._errors:
            logger.warning("could not read Redis's eviction policy (INFO is not allowed)")
            return
        _check_eviction(memory)

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
        self._scripts = _Scripts(self._redis, prefix)

    async def _run(self, script: Any, keys: Sequence[str], arguments: list[Any]) -> list[Any]:
        pipe = self._redis.pipeline(transaction=False)
        for key in keys:
            await script(keys=[self._scripts.key(key)], args=arguments, client=pipe)
        answers: list[Any] = await pipe.execute()
        return answers

    async def claim(self, keys: Sequence[str], lease: float, token: str) -> list[Claim]:
        try:
            arguments = [token, _ms(lease), CLAIM_MEMORY_MS]
            answers = await self._run(self._scripts.claim, keys, arguments)
        except self._errors as error:
            await self.release(keys, token)
            raise StoreUnavailable(f"Redis is unavailable: {type(error).__name__}") from None
        return _Scripts.verdicts(answers)

    async def complete(self, keys: Sequence[str], retention: float, token: str) -> None:
        try:
            await self._run(self._scripts.complete, keys, [_Scripts.held(token), _ms(retention)])
        except self._errors as error:
            raise StoreUnavailable(f"Redis is unavailable: {type(error).__name__}") from None

    async def release(self, keys: Sequence[str], token: str) -> None:
        with contextlib.suppress(*self._errors):  # the claims expire with their lease
            await self._run(self._scripts.release, keys, [_Scripts.held(token)])

    async def renew(self, keys: Sequence[str], lease: float, token: str) -> None:
        arguments = [_Scripts.held(token), _ms(lease), CLAIM_MEMORY_MS]
        try:
            await self._run(self._scripts.renew, keys, arguments)
        except self._errors as error:
            raise StoreUnavailable(f"Redis is unavailable: {type(error).__name__}") from None

    async def check(self) -> None:
        """Raise ``ConfigurationError`` unless Redis answers and runs the scripts."""
        probe, token = self._scripts.probe(), secrets.token_hex(8)
        try:
            await self._scripts.claim(keys=[probe], args=[token, 1000, 0])
            await self._scripts.renew(keys=[probe], args=[_Scripts.held(token), 1000, 0])
            await self._scripts.release(keys=[probe], args=[_Scripts.held(token)])
            await self._scripts.complete(keys=[probe], args=[_Scripts.held(token), 1])
        except self._errors as error:
            raise _unusable(error) from None
        try:
            memory = await self._redis.info("memory")
        except self._errors:
            logger.warning("could not read Redis's eviction policy (INFO is not allowed)")
            return
        _check_eviction(memory)

    async def close(self) -> None:
        """Close the client's connections."""
        await self._redis.aclose()


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
