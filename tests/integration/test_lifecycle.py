"""Bundles, amendments, voids, refusals and previews, through the real broker."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from contracts.keys import contract_id, contract_key, scope_key
from contracts.models import Contract, ContractStatus, PaymentBlock
from streams.codec import to_json
from streams.settings import Settings
from streams.topics import Catalog, TopicSpec
from tests.factories import TEMPLATE, event
from tests.integration.harness import Read, latest_by_key, produce, read_all, workers

ISSUED = "2026-03-02T10:00:00+00:00"


def as_json(**kwargs: Any) -> dict[str, Any]:
    return to_json(event(**kwargs))


def solo_id(assignment_id: str, sequence: int = 0, org_id: str = "org-a") -> str:
    return contract_id(
        contract_key(org_id, "prj-1", [assignment_id], TEMPLATE, sequence)
    )


def command(command_id: str, command_type: str, **fields: Any) -> dict[str, Any]:
    return {
        "command_id": command_id,
        "command_type": command_type,
        "issued_at": ISSUED,
        "trace_id": "c" * 32,
        "actor_id": "svc-staffing",
        "org_id": "org-a",
        "project_id": "prj-1",
        **fields,
    }


def until_keys(*keys: str) -> Callable[[list[Read]], bool]:
    return lambda records: set(keys) <= {r.key for r in records}


def wait_for(
    settings: Settings, spec: TopicSpec, check: Callable[[dict[Any, Any]], bool]
) -> dict[Any, Any]:
    records = read_all(
        settings, spec, until=lambda r: check(latest_by_key(r)), timeout=60
    )
    return latest_by_key(records)


def test_a_cancel_after_the_contract_voids_it_and_blocks_payment_until_resolved(
    settings: Settings, catalog: Catalog, tmp_path: Path
) -> None:
    produce(
        settings,
        catalog.assignments,
        [
            as_json(assignment_id="asg-v"),
            as_json(
                event_type="AssignmentCanceled",
                assignment_id="asg-v",
                at=5,
                rationale="mission cancelled by the client",
            ),
        ],
    )
    void_id = solo_id("asg-v")

    with workers(settings, tmp_path):
        requested = wait_for(
            settings,
            catalog.contracts,
            lambda c: void_id in c and c[void_id].status == "VOID_REQUESTED",
        )
        blocks = wait_for(settings, catalog.payment_blocks, lambda b: len(b) >= 1)
        [block] = blocks.values()
        assert isinstance(block, PaymentBlock) and block.blocked
        assert block.reason == "mission cancelled by the client"

        produce(
            settings,
            catalog.commands,
            [command("cmd-r", "ResolveVoid", contract_id=void_id, resolution="VOIDED")],
        )
        resolved = wait_for(
            settings, catalog.contracts, lambda c: c[void_id].status == "VOIDED"
        )
        lifted = wait_for(
            settings,
            catalog.payment_blocks,
            lambda b: not next(iter(b.values())).blocked,
        )

    assert requested[void_id].status is ContractStatus.VOID_REQUESTED
    assert resolved[void_id].status is ContractStatus.VOIDED
    [block] = lifted.values()
    assert block.resolved_at is not None


def test_a_cancel_delivered_before_its_acceptance_leaves_no_contract(
    settings: Settings, catalog: Catalog, tmp_path: Path
) -> None:
    produce(
        settings,
        catalog.assignments,
        [
            as_json(event_type="AssignmentCanceled", assignment_id="asg-c", at=10),
            as_json(assignment_id="asg-c", at=0),
            as_json(assignment_id="asg-marker", at=20),
        ],
    )

    with workers(settings, tmp_path):
        contracts = wait_for(
            settings, catalog.contracts, lambda c: solo_id("asg-marker") in c
        )

    assert solo_id("asg-c") not in contracts


def test_a_change_after_acceptance_is_refused_and_the_contract_keeps_its_terms(
    settings: Settings, catalog: Catalog, tmp_path: Path
) -> None:
    produce(
        settings,
        catalog.assignments,
        [
            as_json(assignment_id="asg-x"),
            as_json(
                event_type="AssignmentChanged",
                assignment_id="asg-x",
                at=3,
                role="Chief architect",
            ),
        ],
    )

    with workers(settings, tmp_path):
        notes = wait_for(settings, catalog.notifications, lambda n: len(n) >= 1)
        contracts = wait_for(
            settings, catalog.contracts, lambda c: solo_id("asg-x") in c
        )

    [note] = notes.values()
    assert note.code == "CONTRACT_CHANGE_REFUSED" and note.assignment_id == "asg-x"
    assert contracts[solo_id("asg-x")].terms[0].role == "Backend developer"


def test_a_bundle_named_in_any_order_and_repeated_gives_one_contract(
    settings: Settings, catalog: Catalog, tmp_path: Path
) -> None:
    produce(
        settings,
        catalog.assignments,
        [
            as_json(assignment_id="asg-b1", bundle_id="b-1"),
            as_json(assignment_id="asg-b2", bundle_id="b-1", at=1),
        ],
    )
    bundle = ["asg-b2", "asg-b1"]
    produce(
        settings,
        catalog.commands,
        [
            command("cmd-1", "GenerateContract", assignment_ids=bundle),
            command(
                "cmd-2",
                "GenerateContract",
                assignment_ids=[*reversed(bundle), "asg-b1"],
            ),
        ],
    )
    bundle_id = contract_id(contract_key("org-a", "prj-1", bundle, TEMPLATE))

    with workers(settings, tmp_path):
        contracts = wait_for(settings, catalog.contracts, lambda c: bundle_id in c)
        # Give a second contract the time to appear, if one were coming.
        everything = read_all(settings, catalog.contracts, timeout=5, idle=3)

    assert contracts[bundle_id].assignment_ids == ("asg-b1", "asg-b2")
    assert {r.key for r in everything} == {bundle_id}


def test_a_cancel_voids_an_issued_bundle_and_a_repeat_issues_no_second_contract(
    settings: Settings, catalog: Catalog, tmp_path: Path
) -> None:
    produce(
        settings,
        catalog.assignments,
        [
            as_json(assignment_id="asg-k1", bundle_id="b-k"),
            as_json(assignment_id="asg-k2", bundle_id="b-k", at=1),
        ],
    )
    produce(
        settings,
        catalog.commands,
        [command("cmd-k", "GenerateContract", assignment_ids=["asg-k1", "asg-k2"])],
    )
    key = contract_key("org-a", "prj-1", ["asg-k1", "asg-k2"], TEMPLATE)
    bundle_id = contract_id(key)
    repeated, canceled = (
        scope_key("org-a", "prj-1", "asg-k1"),
        scope_key("org-a", "prj-1", "asg-k2"),
    )

    with workers(settings, tmp_path):
        wait_for(settings, catalog.contracts, lambda c: bundle_id in c)
        # Both assignments know their bundle before the cancel and the repeat.
        wait_for(
            settings,
            catalog.assignment_states,
            lambda s: all(
                scope in s and s[scope].contract_key == key
                for scope in (repeated, canceled)
            ),
        )
        produce(
            settings,
            catalog.assignments,
            [
                as_json(
                    assignment_id="asg-k1", bundle_id="b-k", event_id="again", at=2
                ),
                as_json(
                    event_type="AssignmentCanceled",
                    assignment_id="asg-k2",
                    at=5,
                    rationale="collaborator left the mission",
                ),
            ],
        )
        voided = wait_for(
            settings,
            catalog.contracts,
            lambda c: c[bundle_id].status == "VOID_REQUESTED",
        )
        blocks = wait_for(settings, catalog.payment_blocks, lambda b: canceled in b)
        states = wait_for(
            settings,
            catalog.assignment_states,
            lambda s: s[repeated].last_event_id == "again",
        )
        # Give a second contract the time to appear, if one were coming.
        everything = read_all(settings, catalog.contracts, timeout=5, idle=3)

    assert voided[bundle_id].assignment_ids == ("asg-k1", "asg-k2")
    block = blocks[canceled]
    assert block.blocked and block.contract_id == bundle_id
    assert block.reason == "collaborator left the mission"
    assert states[canceled].state == "CANCELED"
    assert {r.key for r in everything} == {bundle_id}


def test_an_amendment_chain_of_three_keeps_every_link_and_repeats_issue_once(
    settings: Settings, catalog: Catalog, tmp_path: Path
) -> None:
    produce(settings, catalog.assignments, [as_json(assignment_id="asg-a")])
    chain = [solo_id("asg-a", n) for n in range(4)]

    def amend(n: int, command_id: str) -> dict[str, Any]:
        return command(
            command_id,
            "RequestAmendment",
            contract_id=chain[n],
            reason=f"renegotiation {n}",
            changes={
                "asg-a": {
                    "rate": {
                        "amount": f"{500 + n}.00",
                        "currency": "EUR",
                        "unit": "DAY",
                    }
                }
            },
        )

    with workers(settings, tmp_path):
        for n in range(3):
            wait_for(settings, catalog.contracts, lambda c, n=n: chain[n] in c)
            produce(settings, catalog.commands, [amend(n, f"amend-{n}")])
        produce(settings, catalog.commands, [amend(2, "amend-2-again")])
        contracts = wait_for(settings, catalog.contracts, lambda c: chain[3] in c)
        everything = read_all(settings, catalog.contracts, timeout=5, idle=3)

    issued: list[Contract] = [contracts[i] for i in chain]
    assert [c.amendment_sequence for c in issued] == [0, 1, 2, 3]
    assert [c.supersedes_contract_id for c in issued] == [None, *chain[:3]]
    assert [c.terms[0].rate.amount for c in issued[1:]] == [500, 501, 502]
    assert {r.key for r in everything} == set(chain)
    assert all(c.status is ContractStatus.ISSUED for c in issued)


def test_previews_write_nothing_and_a_later_acceptance_is_issued(
    settings: Settings, catalog: Catalog, tmp_path: Path
) -> None:
    draft = {
        k: v
        for k, v in as_json(assignment_id="asg-d").items()
        if k
        not in {
            "event_id",
            "event_type",
            "occurred_at",
            "trace_id",
            "actor_id",
            "source",
            "rationale",
            "bundle_id",
        }
    }
    previews = [
        command(
            f"cmd-p{n}", "RequestDraftPreview", request_id=f"prev-{n}", assignment=draft
        )
        for n in range(3)
    ]
    produce(settings, catalog.commands, previews)

    with workers(settings, tmp_path):
        replies = wait_for(settings, catalog.previews, lambda p: len(p) >= 3)
        nothing = read_all(settings, catalog.contracts, timeout=3, idle=2)
        stored_before = _files(settings.artifact_dir)
        produce(settings, catalog.assignments, [as_json(assignment_id="asg-d")])
        contracts = wait_for(
            settings, catalog.contracts, lambda c: solo_id("asg-d") in c
        )

    assert not nothing and stored_before == []
    reply = replies["prev-0"]
    assert reply.draft and reply.document.startswith(b"%PDF")
    assert "contract_id" not in type(reply).model_fields
    assert contracts[solo_id("asg-d")].contract_id == solo_id("asg-d")


def _files(root: Path) -> list[str]:
    if not root.exists():
        return []
    return sorted(str(Path(d) / f) for d, _, files in os.walk(root) for f in files)
