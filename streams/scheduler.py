"""Where failed jobs wait for their next attempt: Redis, behind a small port.

Three keys per namespace:

    <ns>:parked      sorted set, job id -> due time (epoch seconds)
    <ns>:processing  sorted set, job id -> lease deadline of its claimer
    <ns>:payloads    hash, job id -> the job's bytes

A claim moves due jobs from `parked` to `processing` in one Lua script, so two
workers claiming at once never get the same job. The claimer puts the job
back on its topic and then acks it; if it dies first, the lease runs out and
the next claim takes the job again. Redis must run with append-only
persistence, or a restart forgets every parked job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from contracts.errors import TransientError

log = logging.getLogger(__name__)

# A worker waits this long on Redis at most, so an outage shows up in about a
# second instead of blocking the loop; a healthy local Redis answers in < 1 ms.
SOCKET_TIMEOUT_SECONDS = 1.0
CONNECT_TIMEOUT_SECONDS = 0.5

# KEYS: parked, processing, payloads. ARGV: job id, due time, payload.
# A job that is claimed right now stays claimed; a parked one keeps its due
# time and bytes, so a replayed failure never postpones its own retry.
_PARK = """
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
redis.call('HSETNX', KEYS[3], ARGV[1], ARGV[3])
return redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1])
"""

# KEYS: parked, processing, payloads. ARGV: now, lease deadline, limit.
# Expired leases go back to `parked`, due now; then up to `limit` due jobs
# move to `processing`. Returns job id, payload, job id, payload, ...
_CLAIM = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[1], ARGV[1], id)
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local claimed = {}
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  local payload = redis.call('HGET', KEYS[3], id)
  if payload then
    redis.call('ZADD', KEYS[2], ARGV[2], id)
    table.insert(claimed, id)
    table.insert(claimed, payload)
  end
end
return claimed
"""


class SchedulerUnavailableError(TransientError):
    """The scheduler's store did not answer; the same call may succeed later."""


@dataclass(frozen=True)
class Claimed:
    """A job taken from the scheduler under a lease: its id and its bytes."""

    job_id: str
    payload: bytes


class JobScheduler(Protocol):
    """Parks jobs until they fall due, and hands each due job to one claimer."""

    async def park(self, job_bytes: bytes, job_id: str, due_at: float) -> None:
        """Keep the job until `due_at`; parking the same id again changes nothing."""
        ...

    async def claim(
        self, now: float, lease_seconds: float, limit: int
    ) -> list[Claimed]:
        """Take up to `limit` due jobs, each leased until now + lease_seconds."""
        ...

    async def ack(self, job_id: str) -> None:
        """Forget a claimed job, once it is safely back on its topic."""
        ...

    async def ping(self) -> bool:
        """Tell whether the scheduler's store answers."""
        ...

    async def close(self) -> None:
        """Release connections; the scheduler reconnects if used again."""
        ...


class RedisScheduler:
    """The scheduler on Redis, under the key prefix `namespace`."""

    def __init__(
        self,
        url: str,
        namespace: str,
        *,
        socket_timeout: float = SOCKET_TIMEOUT_SECONDS,
    ) -> None:
        self._url = url
        self._timeout = socket_timeout
        self._keys = [f"{namespace}:{k}" for k in ("parked", "processing", "payloads")]
        self._client: aioredis.Redis | None = None
        self._scripts: dict[str, Any] = {}

    async def park(self, job_bytes: bytes, job_id: str, due_at: float) -> None:
        """Keep the job until `due_at`; parking the same id again changes nothing."""
        await self._run("park", _PARK, [job_id, repr(due_at), job_bytes])

    async def claim(
        self, now: float, lease_seconds: float, limit: int
    ) -> list[Claimed]:
        """Take up to `limit` due jobs, each leased until now + lease_seconds."""
        flat = await self._run(
            "claim", _CLAIM, [repr(now), repr(now + lease_seconds), limit]
        )
        return [
            Claimed(job_id=flat[i].decode(), payload=flat[i + 1])
            for i in range(0, len(flat), 2)
        ]

    async def ack(self, job_id: str) -> None:
        """Forget a claimed job, once it is safely back on its topic."""
        parked, processing, payloads = self._keys
        try:
            async with self._connected().pipeline(transaction=True) as pipe:
                pipe.zrem(processing, job_id)
                pipe.zrem(parked, job_id)
                pipe.hdel(payloads, job_id)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise SchedulerUnavailableError(f"cannot ack job {job_id}: {exc}") from exc

    async def ping(self) -> bool:
        """Tell whether Redis answers."""
        try:
            return bool(await self._connected().ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        """Close the connection pool; the next call opens a new one."""
        client, self._client = self._client, None
        self._scripts.clear()
        if client is not None:
            await client.aclose()

    def _connected(self) -> aioredis.Redis:
        # Made on first use: the pool binds to the running event loop.
        if self._client is None:
            self._client = aioredis.Redis.from_url(
                self._url,
                socket_timeout=self._timeout,
                socket_connect_timeout=min(self._timeout, CONNECT_TIMEOUT_SECONDS),
            )
        return self._client

    async def _run(
        self, name: str, source: str, args: list[Any], keys: list[str] | None = None
    ) -> Any:
        # A registered script runs by its sha and reloads itself after Redis
        # restarts with an empty script cache.
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = self._connected().register_script(source)
        try:
            return await script(keys=keys or self._keys, args=args)
        except (RedisError, OSError) as exc:
            raise SchedulerUnavailableError(
                f"redis did not run {name} at {self._keys[0]}: {exc}"
            ) from exc


class MemoryScheduler:
    """The scheduler in a dict, for tests; held to the same contract suite."""

    def __init__(self) -> None:
        self.parked: dict[str, float] = {}
        self.processing: dict[str, float] = {}
        self.payloads: dict[str, bytes] = {}
        self.available = True

    async def park(self, job_bytes: bytes, job_id: str, due_at: float) -> None:
        """Keep the job until `due_at`; parking the same id again changes nothing."""
        self._check()
        if job_id in self.processing:
            return
        self.payloads.setdefault(job_id, job_bytes)
        self.parked.setdefault(job_id, due_at)

    async def claim(
        self, now: float, lease_seconds: float, limit: int
    ) -> list[Claimed]:
        """Take up to `limit` due jobs, each leased until now + lease_seconds."""
        self._check()
        for job_id in [j for j, until in self.processing.items() if until <= now]:
            del self.processing[job_id]
            self.parked[job_id] = now
        due = sorted((at, j) for j, at in self.parked.items() if at <= now)[:limit]
        claimed = []
        for _, job_id in due:
            del self.parked[job_id]
            if job_id in self.payloads:
                self.processing[job_id] = now + lease_seconds
                claimed.append(Claimed(job_id, self.payloads[job_id]))
        return claimed

    async def ack(self, job_id: str) -> None:
        """Forget a claimed job, once it is safely back on its topic."""
        self._check()
        for store in (self.processing, self.parked, self.payloads):
            store.pop(job_id, None)

    async def ping(self) -> bool:
        """Tell whether the fake is marked available."""
        return self.available

    async def close(self) -> None:
        """Nothing to release."""

    def _check(self) -> None:
        if not self.available:
            raise SchedulerUnavailableError("the memory scheduler is marked down")
