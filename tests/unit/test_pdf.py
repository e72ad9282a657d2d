"""The PDF writer under the renderer: files any reader opens, text as written."""

from __future__ import annotations

import io
import re

import pytest
from pypdf import PdfReader

from contracts import pdf

INFO = pdf.Info(
    title="Contrat n° 12",
    subject="Prestation (test)",
    author="contractflow",
    creator="contractflow test@1",
    created="D:20260302100000+00'00'",
    language="fr",
)


def page(*lines: str) -> bytes:
    """Lay lines of body text down the page, 20 points apart."""
    shown = (
        pdf.text_line("Helvetica", 10.0, 50.0, 800.0 - 20 * n, line)
        for n, line in enumerate(lines)
    )
    return b"BT\n" + b"".join(shown) + b"ET\n"


def read(data: bytes) -> PdfReader:
    return PdfReader(io.BytesIO(data), strict=True)


def test_each_page_shows_its_own_lines() -> None:
    data = pdf.document(
        [page("Première page"), page("Seconde", "page")], 595, 842, INFO
    )

    texts = [p.extract_text() for p in read(data).pages]

    assert texts[0].split() == ["Première", "page"]
    assert texts[1].split() == ["Seconde", "page"]


DELIMITED = ["(entre parenthèses)", "a \\ b", "))((", "\\(", "12 € \u2013 50 %"]


@pytest.mark.parametrize("line", DELIMITED)
def test_text_with_pdf_delimiters_reads_back_unchanged(line: str) -> None:
    data = pdf.document([page(line)], 595, 842, INFO)

    assert read(data).pages[0].extract_text() == line


def test_the_information_dictionary_reads_back_with_its_accents() -> None:
    metadata = read(pdf.document([page("x")], 595, 842, INFO)).metadata

    assert metadata is not None
    assert metadata.title == "Contrat n° 12"
    assert metadata.subject == "Prestation (test)"
    assert metadata.creator == "contractflow test@1"
    assert metadata.creation_date_raw == "D:20260302100000+00'00'"


def test_every_cross_reference_points_at_its_object() -> None:
    data = pdf.document([page("un"), page("deux"), page("trois")], 595, 842, INFO)

    found = re.search(rb"startxref\n(\d+)\n%%EOF\n$", data)
    assert found is not None
    start = int(found.group(1))
    table = data[start:].split(b"trailer")[0].splitlines()
    entries = table[3:]
    assert table[0] == b"xref"
    assert len(entries) == int(table[1].split()[1]) - 1
    for number, entry in enumerate(entries, start=1):
        offset = int(entry[:10])
        assert data[offset:].startswith(b"%d 0 obj\n" % number)


def test_the_page_size_is_the_one_asked_for() -> None:
    box = read(pdf.document([page("x")], 595.2756, 841.8898, INFO)).pages[0].mediabox

    assert (float(box.width), float(box.height)) == (595.28, 841.89)


def test_the_same_pages_give_the_same_bytes_and_others_do_not() -> None:
    first = pdf.document([page("a", "b")], 595, 842, INFO)

    assert pdf.document([page("a", "b")], 595, 842, INFO) == first
    assert pdf.document([page("a", "c")], 595, 842, INFO) != first


@pytest.mark.parametrize(
    ("value", "written"),
    [(0.0, b"0"), (-0.001, b"0"), (12.0, b"12"), (9.5, b"9.5"), (56.6929, b"56.69")],
)
def test_a_number_is_written_short(value: float, written: bytes) -> None:
    assert pdf.number(value) == written


def test_line_ends_in_the_information_read_back_unchanged() -> None:
    info = pdf.Info("a\r\nb\rc", "s", "a", "c", "D:20260302100000+00'00'", "fr")

    metadata = read(pdf.document([page("x")], 595, 842, info)).metadata

    assert metadata is not None
    assert metadata.title == "a\r\nb\rc"
