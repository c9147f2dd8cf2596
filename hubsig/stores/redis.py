"""A store in Redis, shared by every receiver behind a load balancer (``hubsig[redis]``).

A claim is a key holding ``claimed:<token>:<deadline>``, set by a Lua script
that compares the deadline with Redis's own clock: exactly one delivery
attempt wins it, and when its worker dies the lease runs out and the next
claim is ``RECLAIMED`` (the key outlives its lease by a day, so the crash is
seen). Completing, renewing and releasing are scripts that act only on the
attempt's own token, so a worker whose lease ran out cannot overwrite or
delete a claim another attempt now holds. Each call sends one pipeline,
used as a context manager so its connection always goes back to the pool.
Connection errors become ``StoreUnavailable``: the receiver answers 500 and
the sender's retry comes back when Redis does.

A Redis that stalls for longer than the lease lets another worker reclaim an
event whose handler still runs, so it runs twice. That is never silent: the
first worker logs at ERROR, once per event, with its key and trace id
(``hubsig.stores._leases``), and the second run is ``redelivered``.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Sequence
from typing import Any

from hubsig._dedupe import Claim, StoreUnavailable
from hubsig._hidden import HiddenValue
from hubsig.errors import ConfigurationError
from hubsig.stores._leases import Leases

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
# ARGV[1]: 'claimed:<token>:', the prefix of this attempt's claims. Answers 0 (another
# attempt's live claim: nothing written), 1 (over this attempt's claim), 2 (over a completion),
# 3 (over no claim, or another attempt's expired one).
_COMPLETE = (
    _NOW
    + """
local current = redis.call('GET', KEYS[1])
local verdict = 3
if current == 'done' then
  verdict = 2
elseif current and string.sub(current, 1, #ARGV[1]) == ARGV[1] then
  verdict = 1
elseif current and deadline(current) > now then
  return 0
end
redis.call('SET', KEYS[1], 'done', 'PX', ARGV[2])
return verdict
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

    @staticmethod
    def won(claims: Sequence[Claim]) -> bool:
        return Claim.CLAIMED in claims or Claim.RECLAIMED in claims

    @staticmethod
    def kept(answers: Sequence[Any]) -> list[bool]:
        """Per renewal answer: whether the claim was still this attempt's."""
        return [int(answer) == 1 for answer in answers]

    @staticmethod
    def taken(answers: Sequence[Any], first: bool) -> list[bool]:
        """Per completion answer: whether another attempt had claimed the event. Only a first
        try can tell: a retry may find the completion its own lost answer made."""
        return [int(answer) == 0 or (first and int(answer) != 1) for answer in answers]

    def probe(self) -> str:
        return self.key(f"hubsig-check:{secrets.token_hex(8)}")


POOL_SIZE = 100
"""Connections a store built from a URL opens at most (``?max_connections=`` overrides)."""
POOL_WAIT = 5.0
"""Seconds a call waits for a free connection when all are busy (``?timeout=`` overrides)."""


def _client_from_url(url: str, asynchronous: bool) -> Any:
    """A client for ``url`` that owns its pool, with two changes from ``from_url``.

    Its pool makes a call wait (up to ``POOL_WAIT``) for a free connection
    instead of failing at once with ``MaxConnectionsError`` when more
    requests are in flight than it has connections; and the URL's user and
    password are held by a credential provider that hides them (``redis``
    keeps them in plain view, in the pool's and every connection's attributes).
    """
    if asynchronous:
        import redis.asyncio

        options = _pool_options(redis.asyncio.connection.parse_url(url))
        pool: Any = redis.asyncio.BlockingConnectionPool(**options)
        return redis.asyncio.Redis.from_pool(pool)
    import redis

    options = _pool_options(redis.connection.parse_url(url))  # type: ignore[no-untyped-call]
    return redis.Redis.from_pool(redis.BlockingConnectionPool(**options))  # type: ignore[no-untyped-call]


def _pool_options(parsed: Any) -> dict[str, Any]:
    options = _hide_credentials(parsed)
    options.setdefault("max_connections", POOL_SIZE)
    options.setdefault("timeout", POOL_WAIT)
    return options


def _hide_credentials(options: Any) -> dict[str, Any]:
    username, password = options.pop("username", None), options.pop("password", None)
    if username is None and password is None:
        return dict(options)
    return {**options, "credential_provider": HiddenCredentials(username, password)}


class HiddenCredentials:
    """A Redis credential provider whose user and password no ``repr`` or ``vars`` shows."""

    __slots__ = ("_held",)

    def __init__(self, username: str | None, password: str | None) -> None:
        self._held = HiddenValue((username, password))

    def get_credentials(self) -> tuple[str] | tuple[str, str]:
        """``(user, password)``, or ``(password,)`` for the default user (``AUTH`` forms)."""
        username, password = self._held.reveal()
        return (username, password or "") if username else (password or "",)

    async def get_credentials_async(self) -> tuple[str] | tuple[str, str]:
        return self.get_credentials()


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
    """Synchronous store over a ``redis.Redis`` client (or a URL).

    Given a URL, the store holds its password where no ``repr`` or ``vars``
    shows it; a client you pass keeps what you gave it (a
    ``credential_provider`` keeps a password out of its attributes).
    """

    blocking = True
    """Its calls wait on I/O: async receivers run them in a worker thread."""

    def __init__(self, client: Any, prefix: str = "hubsig:") -> None:
        import redis

        self._redis = _client_from_url(client, False) if isinstance(client, str) else client
        self._errors = (redis.RedisError, OSError)
        self._scripts = _Scripts(self._redis, prefix)
        self._leases = Leases()

    def _run(self, script: Any, keys: Sequence[str], arguments: list[Any]) -> list[Any]:
        # As a context manager, so the pipeline gives its connection back whatever happens.
        with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                script(keys=[self._scripts.key(key)], args=arguments, client=pipe)
            answers: list[Any] = pipe.execute()
        return answers

    def claim(self, keys: Sequence[str], lease: float, token: str) -> list[Claim]:
        sent = self._leases.now()
        try:
            answers = self._run(self._scripts.claim, keys, [token, _ms(lease), CLAIM_MEMORY_MS])
        except self._errors as error:
            self.release(keys, token)  # whichever it won: releasing is fenced by the token
            raise StoreUnavailable(f"Redis is unavailable: {type(error).__name__}") from None
        claims = _Scripts.verdicts(answers)
        self._leases.claimed(token, _Scripts.won(claims), lease, sent)
        return claims

    def complete(self, keys: Sequence[str], retention: float, token: str) -> None:
        first = self._leases.completing(token)
        try:
            answers = self._run(
                self._scripts.complete, keys, [_Scripts.held(token), _ms(retention)]
            )
        except self._errors as error:
            self._leases.unconfirmed(token, keys)
            raise StoreUnavailable(f"Redis is unavailable: {type(error).__name__}") from None
        self._leases.completed(token, keys, _Scripts.taken(answers, first))

    def release(self, keys: Sequence[str], token: str) -> None:
        self._leases.settled(token)
        with contextlib.suppress(*self._errors):  # the claims expire with their lease
            self._run(self._scripts.release, keys, [_Scripts.held(token)])

    def renew(self, keys: Sequence[str], lease: float, token: str) -> None:
        """Extend the claims ``token`` holds; log at ERROR each event whose claim another
        attempt took, or whose lease ended before Redis confirmed the renewal."""
        arguments = [_Scripts.held(token), _ms(lease), CLAIM_MEMORY_MS]
        sent = self._leases.now()
        try:
            answers = self._run(self._scripts.renew, keys, arguments)
        except self._errors as error:
            self._leases.unconfirmed(token, keys)
            raise StoreUnavailable(f"Redis is unavailable: {type(error).__name__}") from None
        self._leases.renewed(token, keys, _Scripts.kept(answers), lease, sent)

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
    """The same store over ``redis.asyncio`` for ASGI receivers (a client or a URL)."""

    blocking = False
    """Its calls are awaited on the event loop."""

    def __init__(self, client: Any, prefix: str = "hubsig:") -> None:
        import redis
        import redis.asyncio

        self._redis = _client_from_url(client, True) if isinstance(client, str) else client
        self._errors = (redis.RedisError, OSError)
        self._scripts = _Scripts(self._redis, prefix)
        self._leases = Leases()

    async def _run(self, script: Any, keys: Sequence[str], arguments: list[Any]) -> list[Any]:
        # As a context manager: a pipeline that failed (or was cancelled) before it executed,
        # while loading its scripts say, would otherwise keep its connection out of the pool.
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                await script(keys=[self._scripts.key(key)], args=arguments, client=pipe)
            answers: list[Any] = await pipe.execute()
        return answers

    async def claim(self, keys: Sequence[str], lease: float, token: str) -> list[Claim]:
        sent = self._leases.now()
        try:
            arguments = [token, _ms(lease), CLAIM_MEMORY_MS]
            answers = await self._run(self._scripts.claim, keys, arguments)
        except self._errors as error:
            await self.release(keys, token)
            raise StoreUnavailable(f"Redis is unavailable: {type(error).__name__}") from None
        claims = _Scripts.verdicts(answers)
        self._leases.claimed(token, _Scripts.won(claims), lease, sent)
        return claims

    async def complete(self, keys: Sequence[str], retention: float, token: str) -> None:
        first = self._leases.completing(token)
        try:
            arguments = [_Scripts.held(token), _ms(retention)]
            answers = await self._run(self._scripts.complete, keys, arguments)
        except self._errors as error:
            self._leases.unconfirmed(token, keys)
            raise StoreUnavailable(f"Redis is unavailable: {type(error).__name__}") from None
        self._leases.completed(token, keys, _Scripts.taken(answers, first))

    async def release(self, keys: Sequence[str], token: str) -> None:
        self._leases.settled(token)
        with contextlib.suppress(*self._errors):  # the claims expire with their lease
            await self._run(self._scripts.release, keys, [_Scripts.held(token)])

    async def renew(self, keys: Sequence[str], lease: float, token: str) -> None:
        """See ``RedisStore.renew``."""
        arguments = [_Scripts.held(token), _ms(lease), CLAIM_MEMORY_MS]
        sent = self._leases.now()
        try:
            answers = await self._run(self._scripts.renew, keys, arguments)
        except self._errors as error:
            self._leases.unconfirmed(token, keys)
            raise StoreUnavailable(f"Redis is unavailable: {type(error).__name__}") from None
        self._leases.renewed(token, keys, _Scripts.kept(answers), lease, sent)

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
