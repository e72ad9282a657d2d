"""Hypothesis strategies shared by the fuzz tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Values that sit on the edges the decoder must reject cleanly: instants UTC
# cannot hold, an impossible date, names of real event and command types, a
# template version nobody ships, money as text that is or is not a decimal.
TRICKY_STRINGS = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "2026-02-30T10:00:00Z",
    "AssignmentAccepted",
    "AssignmentCanceled",
    "GenerateContract",
    "RequestDraftPreview",
    "freelance-fr@0",
    "450.00",
    "-450.00",
    "1e400",
    "",
]

json_scalars: st.SearchStrategy[Any] = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from(TRICKY_STRINGS)
)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=12,
)
