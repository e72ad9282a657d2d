"""Rendering a contract body to PDF, from the templates that ship."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pytest
from pypdf import PdfReader

import templates
from contracts.errors import PermanentError, ReasonCode
from contracts.models import (
    ContractBody,
    ContractParties,
    NamedCollaborator,
    OrganizationParty,
    Rate,
    RateUnit,
    Terms,
)
from contracts.rendering import DRAFT_MARK, TemplateSource, render_contract

VERSION = "freelance-fr@1"
CONTRACT_ID = "6f1c2a9e-8d4b-5c3a-9e71-2b0d4f6a8c13"
PRIOR_CONTRACT_ID = "0b7e4d21-3f5a-5e8c-a1d2-9c4b6e8f0a37"


def make_terms(
    assignment_id: str = "asg-1",
    role: str = "Développeuse backend",
    amount: str = "450.00",
    unit: RateUnit = RateUnit.DAY,
) -> Terms:
    """Build the terms of one assignment of the usual collaborator."""
    return Terms(
        assignment_id=assignment_id,
        mission_id="mis-4",
        collaborator_id="col-7",
        role=role,
        rate=Rate(amount=Decimal(amount), currency="EUR", unit=unit),
        start_date=date(2026, 3, 9),
        end_date=date(2026, 6, 26),
    )


def make_body(*terms: Terms, amendment: int = 0) -> ContractBody:
    """Build a contract body between a Lyon company and a Nantes freelancer."""
    organization = OrganizationParty(
        legal_name="Ateliers Méridien SAS",
        registration_id="823456789",
        address="18 rue Mercière, 69002 Lyon, FR",
        representative="Hélène Durand",
    )
    collaborator = NamedCollaborator(
        collaborator_id="col-7",
        legal_name="Éloïse Garnier EI",
        registration_id="91234567800021",
        address="7 allée des Tanneurs, 44000 Nantes, FR",
        email="eloise.garnier@example.fr",
    )
    return ContractBody(
        org_id="org-a",
        project_id="prj-1",
        parties=ContractParties(
            organization=organization, collaborators=(collaborator,)
        ),
        terms=terms or (make_terms(),),
        contract_template_version=VERSION,
        amendment_sequence=amendment,
        supersedes_contract_id=PRIOR_CONTRACT_ID if amendment else None,
        issued_at=datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
    )


def render(body: ContractBody, contract_id: str | None = CONTRACT_ID) -> bytes:
    """Render with the shipped template."""
    return render_contract(body, contract_id, templates.load_template(VERSION))


def page_texts(pdf: bytes) -> list[str]:
    """Extract each page's text with its whitespace folded to single spaces."""
    pages = PdfReader(io.BytesIO(pdf)).pages
    return [" ".join(page.extract_text().split()) for page in pages]


def test_a_contract_names_both_parties_and_the_terms() -> None:
    text = " ".join(page_texts(render(make_body())))

    for expected in (
        "Ateliers Méridien SAS",
        "823456789",
        "18 rue Mercière, 69002 Lyon, FR",
        "Hélène Durand",
        "Éloïse Garnier EI",
        "91234567800021",
        "7 allée des Tanneurs, 44000 Nantes, FR",
        "eloise.garnier@example.fr",
        "mis-4",
        "Développeuse backend",
        "450.00 EUR par jour",
        "09/03/2026",
        "26/06/2026",
        "02/03/2026",
        VERSION,
        CONTRACT_ID,
    ):
        assert expected in text


def test_a_contract_carries_its_id_and_issue_date_as_metadata() -> None:
    metadata = PdfReader(io.BytesIO(render(make_body()))).metadata

    assert metadata is not None
    assert metadata.title == CONTRACT_ID
    assert metadata.creation_date_raw == "D:20260302100000+00'00'"


def test_a_contract_is_not_marked_as_a_draft() -> None:
    text = " ".join(page_texts(render(make_body())))

    assert "DRAFT" not in text
    assert "BROUILLON" not in text


def test_a_draft_carries_the_draft_mark_on_every_page() -> None:
    pages = page_texts(render(make_body(), contract_id=None))

    assert len(pages) >= 2
    for text in pages:
        assert DRAFT_MARK in text
        assert "BROUILLON" in text


def test_a_draft_shows_no_contract_id() -> None:
    pdf = render(make_body(), contract_id=None)

    assert CONTRACT_ID.encode() not in pdf
    assert "Contrat n°" not in " ".join(page_texts(pdf))
    metadata = PdfReader(io.BytesIO(pdf)).metadata
    assert metadata is not None
    assert metadata.title == "draft"


def test_rendering_twice_gives_the_same_bytes() -> None:
    assert render(make_body()) == render(make_body())


def test_rendering_in_another_process_gives_the_same_bytes() -> None:
    # A different hash seed shows that no set or dict order leaks into the PDF.
    script = (
        "import sys, test_rendering as t; "
        "sys.stdout.buffer.write(t.render(t.make_body()))"
    )
    environment = {**os.environ, "PYTHONHASHSEED": "4242"}
    child = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).parent,
        env=environment,
        capture_output=True,
        check=True,
    )

    assert child.stdout == render(make_body())


def test_different_contract_ids_give_different_bytes() -> None:
    assert render(make_body()) != render(make_body(), contract_id="another-id")


def test_an_amendment_names_the_contract_it_supersedes() -> None:
    text = " ".join(page_texts(render(make_body(amendment=1))))

    assert "AVENANT N° 1" in text
    assert PRIOR_CONTRACT_ID in text


def test_a_bundle_shows_one_terms_line_per_assignment() -> None:
    body = make_body(
        make_terms("asg-1", role="Développeuse backend"),
        make_terms(
            "asg-2", role="Référente sécurité", amount="95.50", unit=RateUnit.HOUR
        ),
    )

    text = " ".join(page_texts(render(body)))

    assert "affectation asg-1 : Développeuse backend" in text
    assert "affectation asg-2 : Référente sécurité" in text
    assert "95.50 EUR par heure" in text


def test_an_amount_keeps_every_decimal_it_has() -> None:
    body = make_body(make_terms(amount="12.125", unit=RateUnit.FIXED))

    assert "12.125 EUR au forfait" in " ".join(page_texts(render(body)))


def test_a_long_line_wraps_inside_the_page() -> None:
    long_role = " ".join(["Architecte"] + ["plateforme"] * 40)
    pdf = render(make_body(make_terms(role=long_role)))

    raw_lines = PdfReader(io.BytesIO(pdf)).pages[0].extract_text().splitlines()

    wrapped = [line for line in raw_lines if "plateforme" in line]
    assert len(wrapped) >= 3
    assert long_role in page_texts(pdf)[0]


def test_a_name_the_font_cannot_print_is_refused() -> None:
    body = make_body(make_terms(role="Développeur 王"))

    with pytest.raises(PermanentError) as caught:
        render(body)

    assert caught.value.reason_code is ReasonCode.VALIDATION


def test_an_unknown_template_version_is_a_permanent_error() -> None:
    with pytest.raises(PermanentError) as caught:
        templates.load_template("freelance-fr@999")

    assert caught.value.reason_code is ReasonCode.UNKNOWN_TEMPLATE


def test_a_version_naming_a_path_is_an_unknown_template() -> None:
    with pytest.raises(PermanentError) as caught:
        templates.load_template("../contracts")

    assert caught.value.reason_code is ReasonCode.UNKNOWN_TEMPLATE


def test_the_french_freelance_template_ships_with_the_package() -> None:
    assert VERSION in templates.KNOWN_TEMPLATES
    assert resources.files("templates").joinpath(VERSION, "template.json").is_file()


def test_every_template_declares_the_version_of_its_folder() -> None:
    for version in templates.KNOWN_TEMPLATES:
        source = templates.load_template(version)
        manifest = resources.files("templates").joinpath(version, "template.json")

        assert source.version == version
        assert json.loads(manifest.read_text(encoding="utf-8"))["version"] == version


def test_a_template_referring_to_a_missing_field_is_a_permanent_error() -> None:
    broken = TemplateSource("broken@1", "Cassé", "fr", "{{ nowhere.to_be_found }}")

    with pytest.raises(PermanentError):
        render_contract(make_body(), CONTRACT_ID, broken)
