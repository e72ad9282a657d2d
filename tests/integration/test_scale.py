"""A 1,000-assignment run, with a worker killed mid-run: one contract each."""

from __future__ import annotations

import hashlib
import io
import random
from collections import defaultdict
from pathlib import Path

from pypdf import PdfReader

from contracts.keys import contract_id, contract_key
from contracts.models import Contract, ContractBody
from contracts.rendering import render_contract
from streams.scenario import TEMPLATE, generate
from streams.settings import Settings
from streams.topics import Catalog
from templates import load_template
from tests.integration.harness import Read, produce, read_all, workers

ASSIGNMENTS = 1000


def contracts_by_assignment(records: list[Read]) -> dict[tuple[str, ...], set[str]]:
    found: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for record in records:
        contract = record.value
        assert isinstance(contract, Contract)
        for assignment_id in contract.assignment_ids:
            found[(contract.org_id, contract.project_id, assignment_id)].add(
                contract.contract_id
            )
    return found


def test_a_killed_worker_leaves_exactly_one_stored_contract_per_acceptance(
    settings: Settings, catalog: Catalog, tmp_path: Path
) -> None:
    scenario = generate(seed=11, assignments=ASSIGNMENTS)
    produce(settings, catalog.organizations, scenario.organizations)
    produce(settings, catalog.collaborators, scenario.collaborators)
    produce(settings, catalog.assignments, scenario.events)
    expected = len(scenario.expected_contracts)

    with workers(settings, tmp_path) as [worker]:
        read_all(settings, catalog.contracts, until=lambda r: len(r) >= expected // 3)
        worker.kill()
        worker.start()
        records = read_all(
            settings,
            catalog.contracts,
            until=lambda r: len({x.key for x in r}) >= expected,
            timeout=240,
        )
        # Whatever else the replay emits arrives in the next seconds, if at all.
        records = read_all(settings, catalog.contracts, timeout=5, idle=4)

    found = contracts_by_assignment(records)
    assert set(found) == scenario.expected_contracts
    assert all(len(ids) == 1 for ids in found.values())
    assert not set(found) & scenario.never_contract
    assert {next(iter(ids)) for ids in found.values()} == {
        contract_id(contract_key(org, project, [asg], TEMPLATE))
        for org, project, asg in scenario.expected_contracts
    }

    latest = {r.key: r.value for r in records}
    for contract in latest.values():
        pdf = Path(contract.document.uri.removeprefix("file://")).read_bytes()
        assert hashlib.sha256(pdf).hexdigest() == contract.document.sha256
        assert len(pdf) == contract.document.size

    for contract in random.Random(3).sample(sorted(latest.values(), key=str), 25):
        _check_document_shows_terms(contract)


def _check_document_shows_terms(contract: Contract) -> None:
    pdf = Path(contract.document.uri.removeprefix("file://")).read_bytes()
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    text = " ".join(text.split())
    [terms] = contract.terms
    [collaborator] = contract.parties.collaborators
    for shown in (
        contract.parties.organization.legal_name,
        collaborator.legal_name,
        terms.role,
        terms.rate.currency,
        terms.start_date.strftime("%d/%m/%Y"),
        terms.end_date.strftime("%d/%m/%Y"),
        contract.contract_id,
    ):
        assert " ".join(shown.split()) in text, shown

    body = ContractBody(
        org_id=contract.org_id,
        project_id=contract.project_id,
        parties=contract.parties,
        terms=contract.terms,
        contract_template_version=contract.contract_template_version,
        amendment_sequence=contract.amendment_sequence,
        supersedes_contract_id=contract.supersedes_contract_id,
        issued_at=contract.issued_at,
    )
    again = render_contract(
        body, contract.contract_id, load_template(contract.contract_template_version)
    )
    assert hashlib.sha256(again).hexdigest() == contract.document.sha256
