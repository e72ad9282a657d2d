"""The opt-in aggregation policy: one contract per collaborator, project and window.

Acceptances of one collaborator in one project whose occurred_at fall in one
tumbling event-time window (aligned on the epoch) are issued as one bundle.
A window closes when event time passes its end plus the grace (a later
acceptance on the same partition of the policy's topic), or when a tick
carrying the wall clock does, so a quiet stream still issues.

Functions here go from (open windows, input) to (open windows, jobs). The
bundle's key is the contract key of its sorted, deduplicated assignment ids,
so the same acceptances, delivered in any order and any number of times,
give the same bundles as long as none arrives after its window closed.

What happens at the edges:

- An acceptance that reaches a window already closed is issued on its own,
  under the key it would have had without the policy: the bundle already went
  out, and terms never change once issued. An acceptance whose window was
  never opened but is already due opens it and closes it at once, which
  gives that same key.
- A cancel before the window closes takes the assignment out of the bundle.
  A cancel after it sends a CANCEL marker under the bundle's key, so the
  bundle's contract is voided as any contract whose assignment is cancelled.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from urllib.parse import quote

from pydantic import AwareDatetime

from contracts.keys import canonical_id, contract_key
from contracts.lifecycle import LedgerEntry
from contracts.models import (
    AssignmentEvent,
    AssignmentSnapshot,
    ContractJob,
    EventType,
    JobKind,
    Record,
    Source,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

# The bundle_id an acceptance gets in the ledger when the policy takes it, so
# a GenerateContract naming it is refused and its cancel reaches the window.
WINDOW_BUNDLE_PREFIX = "contractflow:window:"

TICK_KEY = "tick"


@dataclass(frozen=True)
class WindowPolicy:
    """Window size (> 0) and grace (>= 0) of the policy."""

    size: timedelta
    grace: timedelta

    def __post_init__(self) -> None:
        if self.size <= timedelta(0) or self.grace < timedelta(0):
            raise ValueError("a window needs a size > 0 and a grace >= 0")

    def start_of(self, instant: datetime) -> datetime:
        """The start of the window holding `instant`: floor(t / size) * size."""
        elapsed = (instant - EPOCH) // _MICROSECOND
        size = self.size // _MICROSECOND
        return EPOCH + (elapsed // size) * size * _MICROSECOND

    def group_of(
        self, org_id: str, project_id: str, collaborator_id: str, instant: datetime
    ) -> str:
        """The group key of an acceptance: who, where, and the window's start."""
        parts = (org_id, project_id, collaborator_id)
        start = self.start_of(instant).isoformat()
        return "/".join(quote(canonical_id(p), safe="") for p in parts) + f"/{start}"


class InputKind(StrEnum):
    MEMBER = "MEMBER"
    CANCEL = "CANCEL"
    TICK = "TICK"


class WindowInput(Record):
    """A record on the policy's internal topic, keyed by its group (or `tick`).

    A member carries the job its acceptance would have had on its own; a
    cancel carries the intake's CANCEL marker; a tick carries the wall clock.
    """

    kind: InputKind
    group: str = ""
    window_end: AwareDatetime | None = None
    job: ContractJob | None = None
    now: AwareDatetime | None = None


class OpenWindow(Record):
    """A window still collecting acceptances."""

    group: str
    org_id: str
    project_id: str
    end: AwareDatetime
    members: tuple[ContractJob, ...] = ()


class Shelf(Record):
    """The open windows of one partition of the policy's topic.

    `watermark` is the latest acceptance time seen on the partition.

    Known limit: a partition's open windows are one table record, rewritten
    on every change, so it must stay under the broker's record size (about a
    thousand open acceptances per partition with party snapshots). Windows
    of minutes to hours fit; a window of days for a large tenant may not.
    """

    watermark: AwareDatetime | None = None
    windows: tuple[OpenWindow, ...] = ()


class ClosedWindow(Record):
    """What became of a closed window: each member's contract key.

    Kept for good, as the registry keeps its keys: a repeated acceptance must
    never be issued again, and a cancel must find its bundle however late.
    """

    group: str
    contract_keys: dict[str, str]


@dataclass(frozen=True)
class Step:
    """The shelf to store, the closed windows to record and the jobs to send."""

    shelf: Shelf
    closed: tuple[ClosedWindow, ...] = ()
    jobs: tuple[ContractJob, ...] = ()


def claims(event: AssignmentEvent) -> bool:
    """Whether the policy takes this event: a backend acceptance of no bundle."""
    return (
        event.event_type is EventType.ACCEPTED
        and event.source is Source.BACKEND
        and event.bundle_id is None
        and bool(event.collaborator_id)
    )


def claimed(event: AssignmentEvent, policy: WindowPolicy) -> AssignmentEvent:
    """The event as the intake applies it: bundled into its window.

    The ledger then treats it as any bundled acceptance: it is recorded as
    accepted and waits, here for its window rather than a GenerateContract.
    """
    assert event.collaborator_id is not None
    group = policy.group_of(
        event.org_id, event.project_id, event.collaborator_id, event.occurred_at
    )
    return event.model_copy(update={"bundle_id": WINDOW_BUNDLE_PREFIX + group})


def group_of_bundle(bundle_id: str | None) -> str | None:
    """The group of a bundle_id the policy gave, or None for any other."""
    if bundle_id is None or not bundle_id.startswith(WINDOW_BUNDLE_PREFIX):
        return None
    return bundle_id.removeprefix(WINDOW_BUNDLE_PREFIX)


def forwarded(
    entry: LedgerEntry | None,
    event: AssignmentEvent,
    jobs: Iterable[ContractJob],
    policy: WindowPolicy,
) -> tuple[tuple[ContractJob, ...], tuple[WindowInput, ...]]:
    """Split what the intake decided: jobs for `contract.jobs`, records for windows.

    `entry` is the ledger entry the event leaves (None: the event changed
    nothing). An acceptance the policy holds becomes a member of its window,
    in place of any job of its own; a CANCEL marker goes both ways, since the
    assignment may have been issued alone (after its window closed) or within
    a bundle.
    """
    group = group_of_bundle(entry.bundle_id) if entry is not None else None
    if entry is None or group is None or entry.accepted_at is None:
        return tuple(jobs), ()
    end = policy.start_of(entry.accepted_at) + policy.size
    direct = tuple(j for j in jobs if j.kind is not JobKind.GENERATE)
    windows = [
        WindowInput(kind=InputKind.CANCEL, group=group, window_end=end, job=job)
        for job in direct
    ]
    if event.event_type is EventType.ACCEPTED:
        member = member_job(entry, event)
        windows.append(
            WindowInput(kind=InputKind.MEMBER, group=group, window_end=end, job=member)
        )
    return direct, tuple(windows)


def member_job(entry: LedgerEntry, event: AssignmentEvent) -> ContractJob:
    """The job an acceptance the policy holds would have had on its own."""
    assert entry.terms is not None and entry.accepted_at is not None
    assert entry.contract_key is not None and entry.contract_template_version
    return ContractJob(
        kind=JobKind.GENERATE,
        contract_key=entry.contract_key,
        org_id=entry.org_id,
        project_id=entry.project_id,
        assignments=(
            AssignmentSnapshot(
                terms=entry.terms,
                parties=entry.parties,
                accepted_at=entry.accepted_at,
                actor_id=event.actor_id,
            ),
        ),
        contract_template_version=entry.contract_template_version,
        issued_at=entry.accepted_at,
        first_attempt_at=entry.accepted_at,
        trace_id=event.trace_id,
        cause=event.event_id,
        actor_id=event.actor_id,
    )


def tick(now: datetime) -> WindowInput:
    """A tick: closes the partition's windows whose end plus grace is past `now`."""
    return WindowInput(kind=InputKind.TICK, now=now)


def apply(
    shelf: Shelf, closed: ClosedWindow | None, record: WindowInput, grace: timedelta
) -> Step:
    """Apply one record of the policy's topic to its partition's open windows.

    `closed` is what became of the record's group, if it was closed already.
    """
    if record.kind is InputKind.TICK:
        assert record.now is not None
        return _close_due(shelf, record.now - grace)
    assert record.job is not None and record.window_end is not None
    if record.kind is InputKind.CANCEL:
        return _cancel(shelf, closed, record.group, record.job)
    return _admit(shelf, closed, record, grace)


def _admit(
    shelf: Shelf, closed: ClosedWindow | None, record: WindowInput, grace: timedelta
) -> Step:
    job = record.job
    assert job is not None and record.window_end is not None
    member = _member_id(job)
    if closed is not None:
        if member in closed.contract_keys:
            return Step(shelf)
        # Too late for its bundle: issued on its own, under its own key.
        keys = {**closed.contract_keys, member: job.contract_key}
        recorded = closed.model_copy(update={"contract_keys": keys})
        return Step(shelf, (recorded,), (job,))

    watermark = job.assignments[0].accepted_at
    if shelf.watermark is not None:
        watermark = max(watermark, shelf.watermark)
    windows = _with_member(shelf.windows, record, job)
    return _close_due(Shelf(watermark=watermark, windows=windows), watermark - grace)


def _with_member(
    windows: tuple[OpenWindow, ...], record: WindowInput, job: ContractJob
) -> tuple[OpenWindow, ...]:
    assert record.window_end is not None
    current = next((w for w in windows if w.group == record.group), None)
    if current is None:
        current = OpenWindow(
            group=record.group,
            org_id=job.org_id,
            project_id=job.project_id,
            end=record.window_end,
        )
    member = _member_id(job)
    if any(_member_id(m) == member for m in current.members):
        return windows
    members = tuple(sorted((*current.members, job), key=_member_id))
    updated = current.model_copy(update={"members": members})
    return (*(w for w in windows if w.group != record.group), updated)


def _cancel(
    shelf: Shelf, closed: ClosedWindow | None, group: str, marker: ContractJob
) -> Step:
    member = _member_id(marker)
    if closed is not None:
        key = closed.contract_keys.get(member)
        if key is None or key == marker.contract_key:
            # Issued on its own: the intake's own marker reaches that key.
            return Step(shelf)
        return Step(shelf, jobs=(marker.model_copy(update={"contract_key": key}),))

    windows: list[OpenWindow] = []
    for window in shelf.windows:
        if window.group == group:
            kept = tuple(m for m in window.members if _member_id(m) != member)
            if not kept:
                continue
            window = window.model_copy(update={"members": kept})
        windows.append(window)
    return Step(shelf.model_copy(update={"windows": tuple(windows)}))


def _close_due(shelf: Shelf, horizon: datetime) -> Step:
    """Close every window whose end is at or before `horizon` (now minus grace)."""
    due = [w for w in shelf.windows if w.end <= horizon]
    if not due:
        return Step(shelf)
    still_open = tuple(w for w in shelf.windows if w.end > horizon)
    jobs: list[ContractJob] = []
    closed: list[ClosedWindow] = []
    for window in sorted(due, key=lambda w: w.group):
        bundles = bundle_jobs(window)
        jobs.extend(bundles)
        closed.append(
            ClosedWindow(
                group=window.group,
                contract_keys={
                    _member_id(m): b.contract_key
                    for b in bundles
                    for m in window.members
                    if m.contract_template_version == b.contract_template_version
                },
            )
        )
    remaining = shelf.model_copy(update={"windows": still_open})
    return Step(remaining, tuple(closed), tuple(jobs))


def bundle_jobs(window: OpenWindow) -> tuple[ContractJob, ...]:
    """One GENERATE job per template version named in the window.

    A contract renders from one template, so acceptances naming two versions
    cannot share one; each version gets its own bundle, deterministically.
    """
    templates = sorted({m.contract_template_version for m in window.members})
    return tuple(
        _bundle(window, [m for m in window.members if m.contract_template_version == t])
        for t in templates
    )


def _bundle(window: OpenWindow, members: list[ContractJob]) -> ContractJob:
    # Everything here derives from the members, never from the wall clock,
    # so a replay of the same window issues the same document.
    ordered = sorted(members, key=_member_id)
    first = min(ordered, key=lambda m: (m.issued_at, _member_id(m)))
    issued_at = max(m.issued_at for m in ordered)
    template = ordered[0].contract_template_version
    return ContractJob(
        kind=JobKind.GENERATE,
        contract_key=contract_key(
            window.org_id,
            window.project_id,
            [m.assignments[0].terms.assignment_id for m in ordered],
            template,
        ),
        org_id=window.org_id,
        project_id=window.project_id,
        assignments=tuple(m.assignments[0] for m in ordered),
        contract_template_version=template,
        issued_at=issued_at,
        first_attempt_at=issued_at,
        trace_id=first.trace_id,
        cause=WINDOW_BUNDLE_PREFIX + window.group,
    )


def _member_id(job: ContractJob) -> str:
    return canonical_id(job.assignments[0].terms.assignment_id)
