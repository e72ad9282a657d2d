"""The missing-contract detector on Redis: deadlines, warnings, resolutions.

Deadlines live in the same structure as parked retries (a sorted set by due
time, claimed under a lease), in their own namespace, with one more key:

    <ns>:warned   set of assignment scopes warned about and not yet resolved

The intake sets a deadline when an assignment is accepted; the generator
settles it when the contract is out. Every worker runs `tick` on a timer:
it claims due deadlines, so one worker handles each, checks the assignment
once more, warns, and only then marks it warned. A worker that dies after
the claim loses nothing: the lease runs out and another worker takes it; the
warning it may have sent already has a fixed id and is sent again unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from contracts import detector
from contracts.detector import Check
from contracts.keys import contract_id
from contracts.lifecycle import LedgerEntry
from contracts.models import Contract, ContractStatus
from contracts.outcome import NOTHING, Outcome
from streams.batching import Batches
from streams.emit import Emitter
from streams.scheduler import RedisScheduler, SchedulerUnavailableError
from streams.web import Readiness

log = logging.getLogger(__name__)

T = TypeVar("T")
Clock = Callable[[], float]
StateLookup = Callable[[str], LedgerEntry | None]
ContractLookup = Callable[[str], Contract | None]

CLAIM_BATCH = 200
# Deadlines, or settlements, waiting for their batch's round trip, at most;
# past that (Redis does not answer), the stage waits too.
MAX_QUEUED = 1000
# How long a deadline or a settlement waits for others to share its round
# trip. Nothing a user sees waits for it: only a ledger entry's changelog
# record and the commit (once a second) wait for a deadline.
LINGER_SECONDS = 0.02
REDIS = "redis"
WAIT_FIRST_SECONDS = 0.2
WAIT_MAX_SECONDS = 5.0

# KEYS: parked, processing, payloads. ARGV: scope, due time, scope, due time...
# Sets each scope's deadline unless it has one already or is being checked.
_EXPECT = """
for i = 1, #ARGV, 2 do
  local scope = ARGV[i]
  if not redis.call('ZSCORE', KEYS[2], scope) then
    redis.call('HSETNX', KEYS[3], scope, scope)
    redis.call('ZADD', KEYS[1], 'NX', ARGV[i + 1], scope)
  end
end
return 1
"""

# KEYS: parked, processing, payloads, warned. ARGV: scope.
# Marks a claimed deadline warned; 0 when the generator settled it meanwhile.
_MARK_WARNED = """
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
return 1
"""

# KEYS: parked, processing, payloads, warned. ARGV: scopes.
# Forgets each scope's deadline; returns how many of them had been warned.
_SETTLE = """
local warned = 0
for _, scope in ipairs(ARGV) do
  redis.call('ZREM', KEYS[1], scope)
  redis.call('ZREM', KEYS[2], scope)
  redis.call('HDEL', KEYS[3], scope)
  warned = warned + redis.call('SREM', KEYS[4], scope)
end
return warned
"""


def detector_interval(grace_seconds: float) -> float:
    """How often to look for due deadlines: a tenth of the grace, 0.2 to 5 s."""
    return min(5.0, max(0.2, grace_seconds / 10))


class Deadlines(RedisScheduler):
    """Deadlines by assignment scope, on Redis under the prefix `namespace`."""

    def __init__(self, url: str, namespace: str) -> None:
        super().__init__(url, namespace)
        self._all_keys = [*self._keys, f"{namespace}:warned"]

    async def expect(self, deadlines: Iterable[tuple[str, float]]) -> None:
        """Set the deadline of each (scope, due time), unless it has one."""
        args: list[str] = []
        for scope, due_at in deadlines:
            args += (scope, repr(due_at))
        if args:
            await self._run("expect", _EXPECT, args)

    async def warned(self, scopes: Iterable[str]) -> set[str]:
        """Return those of `scopes` that were warned about and not resolved."""
        names = list(scopes)
        if not names:
            return set()
        flags = await self._run(
            "warned",
            "return redis.call('SMISMEMBER', KEYS[4], unpack(ARGV))",
            names,
            self._all_keys,
        )
        return {name for name, flag in zip(names, flags, strict=True) if flag}

    async def settle(self, scopes: Iterable[str]) -> int:
        """Forget the deadlines of `scopes`; return how many had been warned."""
        names = list(scopes)
        if not names:
            return 0
        return int(await self._run("settle", _SETTLE, names, self._all_keys))

    async def mark_warned(self, scope: str) -> bool:
        """Record the warning of a claimed deadline; False if it was settled."""
        return bool(await self._run("mark", _MARK_WARNED, [scope], self._all_keys))


class Detector:
    """Warns about accepted assignments whose contract is late."""

    def __init__(
        self,
        deadlines: Deadlines,
        emitter: Emitter,
        readiness: Readiness,
        *,
        states: StateLookup,
        contracts: ContractLookup,
        grace: timedelta,
        lease_seconds: float,
        clock: Clock = time.time,
    ) -> None:
        self._deadlines = deadlines
        self._emitter = emitter
        self._readiness = readiness
        self._states = states
        self._contracts = contracts
        self._grace = grace
        self._lease = lease_seconds
        self._clock = clock
        self._expecting = Batches(
            self._set_deadlines, limit=MAX_QUEUED, linger=LINGER_SECONDS
        )
        self._settling = Batches(
            self._settle_deadlines, limit=MAX_QUEUED, linger=LINGER_SECONDS
        )

    async def expect(self, scope: str) -> asyncio.Future[None]:
        """Start the grace period of an assignment just accepted.

        Deadlines go to Redis in batches; the future resolves once this one
        is there. Whatever depends on it (the ledger entry, the commit) waits
        for the future.
        """
        due_at = self._clock() + self._grace.total_seconds()
        return await self._expecting.add((scope, due_at))

    async def resolutions(self, contract: Contract, scopes: list[str]) -> Outcome:
        """The notices owed for `scopes`, warned about before `contract` came."""
        warned = await self._patiently(
            "read warnings", lambda: self._deadlines.warned(scopes)
        )
        outcome = NOTHING
        for scope in sorted(warned):
            entry = self._states(scope)
            if entry is not None:
                outcome += detector.expected_resolved(
                    entry, contract.contract_id, self._now()
                )
        return outcome

    async def settle(self, scopes: list[str]) -> None:
        """Forget the deadlines of `scopes`, whose contract is out."""
        settled = [await self._settling.add(scope) for scope in scopes]
        await asyncio.gather(*settled)

    async def _set_deadlines(self, deadlines: list[tuple[str, float]]) -> None:
        await self._patiently(
            "set deadlines", lambda: self._deadlines.expect(deadlines)
        )

    async def _settle_deadlines(self, scopes: list[str]) -> None:
        await self._patiently(
            "settle deadlines", lambda: self._deadlines.settle(scopes)
        )

    async def tick(self) -> None:
        """Warn about every due deadline once; report, never raise."""
        try:
            while True:
                claimed = await self._deadlines.claim(
                    self._clock(), self._lease, CLAIM_BATCH
                )
                for item in claimed:
                    await self._due(item.job_id)
                if len(claimed) < CLAIM_BATCH:
                    break
        except SchedulerUnavailableError as error:
            self._readiness.degrade(REDIS)
            log.debug("cannot claim deadlines: %s", error.reason)
            return
        except Exception:
            log.exception("checking contract deadlines failed")
            return
        self._readiness.recover(REDIS)

    async def _due(self, scope: str) -> None:
        entry = self._states(scope)
        contract = self._contract_of(entry)
        verdict = detector.check(entry, contract is not None)
        if verdict is Check.UNKNOWN:
            # The state view lags the intake: the lease runs out, and the
            # deadline is looked at again then.
            log.info("deadline due for an assignment not seen yet scope=%s", scope)
            return
        if verdict is Check.SETTLED:
            await self._deadlines.settle([scope])
            return
        assert entry is not None
        await self._emitter.emit(
            detector.expected_missing(entry, self._grace, self._now()), []
        )
        log.warning(
            "contract missing after the grace period org_id=%s project_id=%s "
            "mission_id=%s assignment_id=%s",
            entry.org_id,
            entry.project_id,
            entry.mission_id,
            entry.assignment_id,
        )
        if not await self._deadlines.mark_warned(scope):
            # The contract went out while the warning was being sent.
            late = self._contract_of(entry)
            resolved = detector.expected_resolved(
                entry, late.contract_id if late else "", self._now()
            )
            await self._emitter.emit(resolved, [])

    def _contract_of(self, entry: LedgerEntry | None) -> Contract | None:
        if entry is None or entry.contract_key is None:
            return None
        contract = self._contracts(contract_id(entry.contract_key))
        if contract is None or contract.status is ContractStatus.VOIDED:
            return None
        return contract

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def _patiently(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        # The input that needs this waits for Redis rather than count as done.
        pause = WAIT_FIRST_SECONDS
        while True:
            try:
                result = await call()
            except SchedulerUnavailableError as error:
                self._readiness.degrade(REDIS)
                log.warning(
                    "cannot %s, partition blocked; retrying in %.1fs: %s",
                    what,
                    pause,
                    error.reason,
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, WAIT_MAX_SECONDS)
                continue
            self._readiness.recover(REDIS)
            return result
