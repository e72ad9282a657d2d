"""Render a contract body to PDF bytes: the same inputs give the same bytes.

A template is Jinja2 text with a few layout marks at the start of a line:
``# `` a title, ``## `` a heading, ``- `` a list item, an empty line a
paragraph break. Everything else is a paragraph that wraps to the page.
Lines are measured and broken with reportlab's font metrics and written to
the file by `contracts.pdf`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache

import jinja2
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import cm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase.pdfmetrics import stringWidth

from contracts import pdf
from contracts.errors import PermanentError, ReasonCode
from contracts.models import ContractBody

DRAFT_MARK = "DRAFT — NOT A CONTRACT"

# Helvetica is one of the PDF standard fonts: nothing is embedded, so the
# bytes stay small and stable. It draws WinAnsi only, which is cp1252.
_FONT_ENCODING = pdf.TEXT_ENCODING
_PAGE_WIDTH, _PAGE_HEIGHT = A4
_MARGIN = 2 * cm
_TEXT_WIDTH = _PAGE_WIDTH - 2 * _MARGIN
_ITEM_INDENT = 14.0
# An en dash: pypdf reads WinAnsi's bullet back as a control character.
_ITEM_MARK = "\u2013 "
_FOOTER_SIZE = 8.0
_DRAFT_GREY = b"0.82 0.82 0.82"
_DRAFT_FONT = "Helvetica-Bold"
_DRAFT_SIZE = 40.0


@dataclass(frozen=True, slots=True)
class TemplateSource:
    """The text of a contract template and what it says about itself."""

    version: str
    title: str
    language: str
    text: str


@dataclass(frozen=True, slots=True)
class _Style:
    font: str
    size: float
    leading: float
    space_before: float


_TITLE = _Style("Helvetica-Bold", 14.0, 18.0, 0.0)
_HEADING = _Style("Helvetica-Bold", 10.5, 14.0, 8.0)
_BODY = _Style("Helvetica", 9.5, 12.5, 0.0)
_PARAGRAPH_GAP = 5.0


@dataclass(frozen=True, slots=True)
class _Line:
    x: float
    y: float
    style: _Style
    text: str


def render_contract(
    body: ContractBody, contract_id: str | None, template: TemplateSource
) -> bytes:
    """Render the contract, or a draft preview when contract_id is None."""
    text = _fill(body, contract_id, template)
    _check_printable(text, template.version)
    pages = _layout(text)
    return _draw(pages, body, contract_id, template)


def _fill(body: ContractBody, contract_id: str | None, template: TemplateSource) -> str:
    try:
        return _compiled(template).render(_context(body, contract_id, template))
    except jinja2.TemplateError as exc:
        reason = f"template {template.version} cannot render this contract: {exc}"
        raise PermanentError(reason) from exc


def _context(
    body: ContractBody, contract_id: str | None, template: TemplateSource
) -> dict[str, object]:
    collaborators = body.parties.collaborators
    return {
        "draft": contract_id is None,
        "contract_id": contract_id,
        "version": template.version,
        "title": template.title,
        "organization": body.parties.organization,
        "collaborators": collaborators,
        "noms": {c.collaborator_id: c.legal_name for c in collaborators},
        "terms": body.terms,
        "amendment_sequence": body.amendment_sequence,
        "supersedes_contract_id": body.supersedes_contract_id,
        "issued_at": body.issued_at.astimezone(UTC),
    }


def _check_printable(text: str, version: str) -> None:
    # A glyph the font lacks would print as a box: a wrong legal name on a
    # binding document is worse than a contract that is not issued.
    try:
        text.encode(_FONT_ENCODING)
    except UnicodeEncodeError as exc:
        bad = text[exc.start : exc.end]
        reason = f"template {version} cannot print the characters {bad!r}"
        raise PermanentError(reason, reason_code=ReasonCode.VALIDATION) from exc


@lru_cache(maxsize=32)
def _compiled(template: TemplateSource) -> jinja2.Template:
    env = jinja2.Environment(
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(montant=_amount, date_fr=_date_fr, heure=_time)
    try:
        return env.from_string(template.text)
    except jinja2.TemplateError as exc:
        reason = f"template {template.version} does not compile: {exc}"
        raise PermanentError(reason) from exc


def _amount(value: Decimal) -> str:
    """Show at least two decimals, and every decimal the amount really has."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        return f"{value:f}"
    return f"{value:.2f}"


def _date_fr(value: date) -> str:
    return f"{value.day:02d}/{value.month:02d}/{value.year:04d}"


def _time(value: datetime) -> str:
    return f"{value.hour:02d}:{value.minute:02d}"


class _Pager:
    """Place lines from the top of a page down, opening a page when one is full."""

    def __init__(self) -> None:
        self.pages: list[list[_Line]] = [[]]
        self._y = _PAGE_HEIGHT - _MARGIN

    def gap(self, height: float) -> None:
        self._y -= height

    def keep(self, height: float) -> None:
        if self._y - height < _MARGIN and self.pages[-1]:
            self._open_page()

    def place(self, x: float, style: _Style, text: str) -> None:
        if self._y - style.leading < _MARGIN:
            self._open_page()
        self._y -= style.leading
        self.pages[-1].append(_Line(x, self._y, style, text))

    def _open_page(self) -> None:
        self.pages.append([])
        self._y = _PAGE_HEIGHT - _MARGIN


def _layout(text: str) -> list[list[_Line]]:
    pager = _Pager()
    for raw in text.splitlines():
        style, indent, content = _classify(raw.rstrip())
        if content:
            _place_paragraph(pager, style, indent, content)
        else:
            pager.gap(_PARAGRAPH_GAP)
    return pager.pages


def _place_paragraph(pager: _Pager, style: _Style, indent: float, text: str) -> None:
    wrapped = _wrap(text, style.font, style.size, _TEXT_WIDTH - indent)
    # A heading stays on the page of the two lines that follow it.
    followers = 2 if style is _HEADING else 0
    pager.keep(style.space_before + style.leading * (len(wrapped) + followers))
    pager.gap(style.space_before)
    for number, line in enumerate(wrapped):
        pager.place(_MARGIN + (indent if number else 0.0), style, line)


# Most paragraphs are a template's fixed clauses, the same in every contract,
# and measuring glyph widths to wrap them was about a third of a render. The
# wrap is a pure function of its arguments, so a cache keeps output identical;
# 4096 lines hold every clause of a few dozen template versions.
@lru_cache(maxsize=4096)
def _wrap(text: str, font: str, size: float, width: float) -> tuple[str, ...]:
    return tuple(simpleSplit(text, font, size, width))


def _classify(line: str) -> tuple[_Style, float, str]:
    if line.startswith("## "):
        return _HEADING, 0.0, line[3:].strip()
    if line.startswith("# "):
        return _TITLE, 0.0, line[2:].strip()
    if line.startswith("- "):
        return _BODY, _ITEM_INDENT, _ITEM_MARK + line[2:].strip()
    return _BODY, 0.0, line.strip()


def _draw(
    pages: list[list[_Line]],
    body: ContractBody,
    contract_id: str | None,
    template: TemplateSource,
) -> bytes:
    draft = contract_id is None
    title = "draft" if contract_id is None else contract_id
    label = "BROUILLON" if draft else f"Contrat n° {title}"
    streams = [
        b"".join(
            (
                _draft_mark() if draft else b"",
                _text(lines),
                _footer(f"{label} — page {number}/{len(pages)}"),
            )
        )
        for number, lines in enumerate(pages, start=1)
    ]
    info = pdf.Info(
        title=title,
        subject=template.title,
        author="contractflow",
        creator=f"contractflow {template.version}",
        created=_pdf_date(body.issued_at),
        language=template.language,
    )
    return pdf.document(streams, _PAGE_WIDTH, _PAGE_HEIGHT, info)


def _pdf_date(value: datetime) -> str:
    return value.astimezone(UTC).strftime("D:%Y%m%d%H%M%S+00'00'")


def _text(lines: list[_Line]) -> bytes:
    shown = (
        pdf.text_line(line.style.font, line.style.size, line.x, line.y, line.text)
        for line in lines
    )
    return b"BT\n" + b"".join(shown) + b"ET\n"


def _footer(text: str) -> bytes:
    width = stringWidth(text, _BODY.font, _FOOTER_SIZE)
    x = (_PAGE_WIDTH - width) / 2
    return (
        b"BT\n"
        + pdf.text_line(_BODY.font, _FOOTER_SIZE, x, _MARGIN / 2, text)
        + b"ET\n"
    )


@lru_cache(maxsize=1)
def _draft_mark() -> bytes:
    """The grey diagonal mark across a draft page, the same on every page."""
    width = stringWidth(DRAFT_MARK, _DRAFT_FONT, _DRAFT_SIZE)
    turn = pdf.number(math.cos(math.pi / 4))
    across = b" ".join((turn, turn, b"-" + turn, turn))
    centre = pdf.number(_PAGE_WIDTH / 2) + b" " + pdf.number(_PAGE_HEIGHT / 2)
    return b"".join(
        (
            b"q ",
            _DRAFT_GREY,
            b" rg\n1 0 0 1 ",
            centre,
            b" cm\n",
            across,
            b" 0 0 cm\nBT\n",
            pdf.text_line(_DRAFT_FONT, _DRAFT_SIZE, -width / 2, 0.0, DRAFT_MARK),
            b"ET\nQ\n",
        )
    )
