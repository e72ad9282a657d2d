"""Keys and ids: golden values, then the properties DESIGN.md §2 asks for."""

from __future__ import annotations

import hashlib
import unicodedata
import uuid
from typing import Literal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from contracts.errors import ValidationError
from contracts.keys import (
    CONTRACT_NAMESPACE,
    DERIVED_NAMESPACE,
    canonical_id,
    contract_id,
    contract_key,
    derived_id,
    parse_scope,
    scope_key,
)

TEMPLATE = "freelance-fr@1"
A_UUID = "9B0C6F3E-3D1E-4A51-9A57-0D3F3C6F1A01"

# Characters that an encoding built on separators would trip over.
TRICKY = st.sampled_from(["a", "b", "|", ",", '"', "/", "\\", "\x00", "[", "%", " "])
# Any text that can travel as UTF-8 (lone surrogates cannot).
ANY_TEXT = st.characters(exclude_categories=["Cs"])
IDS = st.text(alphabet=TRICKY | ANY_TEXT, min_size=1, max_size=12)
ID_LISTS = st.lists(IDS, min_size=1, max_size=5)


# Golden values. If one of these fails, the encoding changed: every key and
# id already written to Kafka would stop matching. Do not update the literals.


def test_the_contract_key_is_the_sha256_of_a_tagged_json_array() -> None:
    text = (
        '["contractflow/contract_key/1","org-a","prj-1",["asg-1","asg-2"],'
        '"freelance-fr@1",0]'
    )
    expected = "ck1-" + hashlib.sha256(text.encode("ascii")).hexdigest()

    assert contract_key("org-a", "prj-1", ["asg-2", "asg-1"], TEMPLATE) == expected


@pytest.mark.parametrize(
    ("org", "project", "ids", "sequence", "key", "cid"),
    [
        (
            "org-a",
            "prj-1",
            ["asg-2", "asg-1"],
            0,
            "ck1-de906100ac1b2054d945ecdf3d8242ea47dc4cd7701bafe76d73e472253762c9",
            "e4a6700c-93c1-5f7f-9f93-a92f600d4aed",
        ),
        (
            "org-a",
            "prj-1",
            ["asg-1"],
            1,
            "ck1-e10ca157285985f5a022f3498c9b563b2b3969c7fc3831ed5fec978f20a8d294",
            "0d2e0050-1ffa-56b6-aec9-d64c924f8b22",
        ),
        (
            "Org \u00c9",
            "prj/1",
            [A_UUID, "a|b"],
            0,
            "ck1-32cdd187512c4a04e20c4bda5cf89946568c7257cccd67ea1dad5eb2a4bc7d38",
            "0cd830aa-3eb6-59c3-a3df-5ce3870323cb",
        ),
    ],
)
def test_contract_keys_and_ids_keep_their_golden_values(
    org: str, project: str, ids: list[str], sequence: int, key: str, cid: str
) -> None:
    assert contract_key(org, project, ids, TEMPLATE, sequence) == key
    assert contract_id(key) == cid


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("org-a", "prj-1", "asg-1"), "org-a/prj-1/asg-1"),
        (
            ("org/a", "prj 1", "\u00c9%" + A_UUID),
            "org%2Fa/prj%201/%C3%89%259B0C6F3E-3D1E-4A51-9A57-0D3F3C6F1A01",
        ),
        (("o", "p", A_UUID), "o/p/9b0c6f3e-3d1e-4a51-9a57-0d3f3c6f1a01"),
    ],
)
def test_scope_keys_keep_their_golden_values(
    parts: tuple[str, str, str], expected: str
) -> None:
    assert scope_key(*parts) == expected


@pytest.mark.parametrize(
    ("kind", "parts", "expected"),
    [
        (
            "audit",
            (
                "contract.generated",
                "ck1-de906100ac1b2054d945ecdf3d8242ea47dc4cd7701bafe76d73e472253762c9",
                "asg-1",
                1,
                "evt-1",
            ),
            "83e8ae22-5a6f-5ac3-8f70-6f145ad11676",
        ),
        (
            "notification",
            ("CONTRACT_EXPECTED_WARNING", "org-a/prj-1/asg-1", None),
            "bea32cc6-3c96-5971-a99e-24e2449422ae",
        ),
    ],
)
def test_derived_ids_keep_their_golden_values(
    kind: str, parts: tuple[str | int | None, ...], expected: str
) -> None:
    assert derived_id(kind, *parts) == expected


def test_the_namespaces_are_the_documented_uuid5_names() -> None:
    url = uuid.NAMESPACE_URL
    assert uuid.uuid5(url, "urn:contractflow:contract") == CONTRACT_NAMESPACE
    assert uuid.uuid5(url, "urn:contractflow:derived") == DERIVED_NAMESPACE


# canonical_id


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (A_UUID, A_UUID.lower()),
        ("9b0c6f3e-3d1e-4A51-9a57-0D3F3C6F1A01", A_UUID.lower()),
        ("{" + A_UUID + "}", "{" + A_UUID + "}"),
        (A_UUID + "\n", A_UUID + "\n"),
        (A_UUID.replace("-", ""), A_UUID.replace("-", "")),
        ("ABC", "ABC"),
        ("  asg-1 ", "  asg-1 "),
        ("e\u0301", "\u00e9"),
    ],
)
def test_canonical_id_lowercases_only_uuids_and_composes_unicode(
    value: str, expected: str
) -> None:
    assert canonical_id(value) == expected


# contract_key


@given(ids=ID_LISTS, data=st.data())
def test_the_order_and_repetition_of_assignment_ids_do_not_change_the_key(
    ids: list[str], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(ids))
    repeated = shuffled + data.draw(st.lists(st.sampled_from(ids), max_size=4))

    assert contract_key("o", "p", repeated, TEMPLATE) == contract_key(
        "o", "p", ids, TEMPLATE
    )


KEY_INPUTS = st.tuples(IDS, IDS, ID_LISTS, IDS, st.integers(0, 3))


def _canonical_input(
    value: tuple[str, str, list[str], str, int],
) -> tuple[str, str, frozenset[str], str, int]:
    org, project, ids, template, sequence = value
    return (
        canonical_id(org),
        canonical_id(project),
        frozenset(map(canonical_id, ids)),
        canonical_id(template),
        sequence,
    )


@given(first=KEY_INPUTS, second=KEY_INPUTS)
def test_different_inputs_never_share_a_key(
    first: tuple[str, str, list[str], str, int],
    second: tuple[str, str, list[str], str, int],
) -> None:
    assume(_canonical_input(first) != _canonical_input(second))

    assert contract_key(*first) != contract_key(*second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("o", "p", ["a|b", "c"]), ("o", "p", ["a", "b|c"])),
        (("o", "p", ["a,b"]), ("o", "p", ["a", "b"])),
        (("o", "p", ['a","b']), ("o", "p", ["a", "b"])),
        (("o", "p", ["a\x00b"]), ("o", "p", ["a", "b"])),
        (("o/p", "q", ["a"]), ("o", "p/q", ["a"])),
        (("o", "p|a", ["b"]), ("o", "p", ["a|b"])),
        (("o", "p", ["a"]), ("p", "o", ["a"])),
        (("o", "p", ["[]"]), ("o", "p", ["[", "]"])),
    ],
)
def test_separators_inside_ids_cannot_make_two_inputs_collide(
    first: tuple[str, str, list[str]], second: tuple[str, str, list[str]]
) -> None:
    assert contract_key(*first, TEMPLATE) != contract_key(*second, TEMPLATE)


@given(org=IDS, ids=ID_LISTS)
def test_composed_and_decomposed_unicode_give_the_same_key(
    org: str, ids: list[str]
) -> None:
    def key(form: Literal["NFC", "NFD"]) -> str:
        def norm(text: str) -> str:
            return unicodedata.normalize(form, text)

        return contract_key(norm(org), "p", [norm(i) for i in ids], TEMPLATE)

    assert key("NFD") == key("NFC")


def test_an_accented_id_matches_in_either_unicode_form() -> None:
    composed = contract_key("caf\u00e9", "p", ["\u00e9t\u00e9"], TEMPLATE)
    decomposed = contract_key("cafe\u0301", "p", ["e\u0301te\u0301"], TEMPLATE)

    assert composed == decomposed


@given(org=st.uuids(), project=st.uuids(), ids=st.lists(st.uuids(), min_size=1))
def test_uuid_ids_match_in_either_letter_case(
    org: uuid.UUID, project: uuid.UUID, ids: list[uuid.UUID]
) -> None:
    upper = contract_key(
        str(org).upper(), str(project).upper(), [str(i).upper() for i in ids], "t"
    )
    lower = contract_key(str(org), str(project), [str(i) for i in ids], "t")

    assert upper == lower


@given(value=IDS)
def test_ids_that_are_not_uuids_keep_their_letter_case(value: str) -> None:
    assume(canonical_id(value.upper()) != canonical_id(value.lower()))

    upper = contract_key("o", "p", [value.upper()], TEMPLATE)
    assert upper != contract_key("o", "p", [value.lower()], TEMPLATE)


def test_abc_and_its_lower_case_are_two_assignments() -> None:
    assert contract_key("o", "p", ["ABC"], TEMPLATE) != contract_key(
        "o", "p", ["abc"], TEMPLATE
    )


def test_the_amendment_sequence_changes_the_key() -> None:
    keys = {contract_key("o", "p", ["a"], TEMPLATE, n) for n in range(5)}

    assert len(keys) == 5


def test_the_template_version_changes_the_key() -> None:
    assert contract_key("o", "p", ["a"], "freelance-fr@1") != contract_key(
        "o", "p", ["a"], "freelance-fr@2"
    )


@pytest.mark.parametrize(
    ("org", "project", "ids", "template", "sequence"),
    [
        ("o", "p", [], TEMPLATE, 0),
        ("", "p", ["a"], TEMPLATE, 0),
        ("o", "", ["a"], TEMPLATE, 0),
        ("o", "p", ["a"], "", 0),
        ("o", "p", ["a", ""], TEMPLATE, 0),
        ("o", "p", ["a"], TEMPLATE, -1),
        ("o", "p", ["a"], TEMPLATE, True),
        ("o", "p", "asg-1", TEMPLATE, 0),
        ("o", "p", ["a\ud800"], TEMPLATE, 0),
    ],
)
def test_a_contract_key_refuses_incomplete_or_invalid_parts(
    org: str, project: str, ids: list[str], template: str, sequence: int
) -> None:
    with pytest.raises(ValidationError):
        contract_key(org, project, ids, template, sequence)


# contract_id


def test_a_contract_id_is_a_version_5_uuid() -> None:
    key = contract_key("o", "p", ["a"], TEMPLATE)

    assert uuid.UUID(contract_id(key)).version == 5


@pytest.mark.parametrize(
    "value", ["", "asg-1", "ck1-" + "0" * 63, "ck1-" + "A" * 64, "ck0-" + "0" * 64]
)
def test_a_contract_id_is_only_derived_from_a_contract_key(value: str) -> None:
    with pytest.raises(ValidationError):
        contract_id(value)


# scope_key and parse_scope


def test_a_slash_inside_an_id_cannot_move_the_scope_boundaries() -> None:
    assert scope_key("a/b", "c", "d") != scope_key("a", "b/c", "d")


@given(org=IDS, project=IDS, assignment=IDS)
def test_a_scope_parses_back_into_its_canonical_parts(
    org: str, project: str, assignment: str
) -> None:
    expected = (canonical_id(org), canonical_id(project), canonical_id(assignment))

    assert parse_scope(scope_key(org, project, assignment)) == expected


@pytest.mark.parametrize(
    "scope",
    ["a/b", "a/b/c/d", "a//c", "a/b/c%2", "a/b/%FF", "org%2Da/b/c", "a/b/%c3%a9"],
)
def test_parse_scope_refuses_anything_scope_key_would_not_write(scope: str) -> None:
    with pytest.raises(ValidationError):
        parse_scope(scope)


def test_a_scope_key_refuses_an_empty_part() -> None:
    with pytest.raises(ValidationError):
        scope_key("o", "", "a")


# derived_id


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("a|b", "c"), ("a", "b|c")),
        (("1",), (1,)),
        (("",), (None,)),
        (("None",), (None,)),
        (("a",), ("a", None)),
        ((1, 2), (12,)),
        (("a,b",), ("a", "b")),
    ],
)
def test_derived_ids_keep_the_boundaries_and_types_of_their_parts(
    first: tuple[str | int | None, ...], second: tuple[str | int | None, ...]
) -> None:
    assert derived_id("k", *first) != derived_id("k", *second)


def test_the_kind_is_part_of_a_derived_id() -> None:
    assert derived_id("audit", "x", 1) != derived_id("notification", "x", 1)


def test_derived_ids_compare_their_string_parts_canonically() -> None:
    assert derived_id("k", A_UUID, "e\u0301") == derived_id(
        "k", A_UUID.lower(), "\u00e9"
    )


def test_a_derived_id_is_the_same_on_every_call() -> None:
    assert derived_id("k", "a", 1, None) == derived_id("k", "a", 1, None)


def test_a_derived_id_refuses_a_boolean_part() -> None:
    with pytest.raises(TypeError):
        derived_id("k", True)


def test_a_derived_id_needs_a_kind() -> None:
    with pytest.raises(ValueError, match="kind"):
        derived_id("", "a")
