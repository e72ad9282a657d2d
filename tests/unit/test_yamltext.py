"""The YAML writer behind `contractflow asyncapi`, checked against PyYAML."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from streams.yamltext import dumps

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(),
    st.sampled_from(["yes", "No", "null", "~", "8", "1.0", "a: b", "x #y", "end:"]),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=20), children, max_size=4),
    ),
    max_leaves=20,
)


@given(documents)
def test_any_json_shaped_document_reads_back_equal(document: Any) -> None:
    assert yaml.safe_load(dumps(document)) == document


def test_words_a_yaml_reader_would_turn_into_booleans_stay_strings() -> None:
    assert yaml.safe_load(dumps({"cleanup": ["on", "off", "yes"]})) == {
        "cleanup": ["on", "off", "yes"]
    }


def test_identifier_like_strings_are_written_without_quotes() -> None:
    assert dumps({"address": "contract.jobs"}) == "address: contract.jobs\n"


def test_nested_lists_of_mappings_are_written_in_block_style() -> None:
    text = dumps({"fields": [{"name": "a", "type": "string"}]})

    assert text == "fields:\n  - name: a\n    type: string\n"


def test_a_value_that_is_not_json_shaped_is_refused() -> None:
    with pytest.raises(TypeError):
        dumps({"when": object()})
