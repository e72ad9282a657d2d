"""Write a PDF of text pages in the standard fonts, the same bytes every time.

A contract is a few pages of positioned text in Helvetica, so its file is a
catalog, a page tree, two font dictionaries that embed nothing, one page
object and one compressed content stream per page, and the document's
information. Building that directly costs a tenth of what a general drawing
canvas does, and since fixed clauses repeat from contract to contract, the
operators that show a line of text are kept once per process.

Text is shown in WinAnsiEncoding (cp1252); the caller makes sure every
character is printable there. Measuring and wrapping text stay with the font
metrics of reportlab.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

TEXT_ENCODING = "cp1252"

# The resource names under which each page finds the two fonts.
FONTS = {"Helvetica": b"F1", "Helvetica-Bold": b"F2"}

_HEADER = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
# Level 6 is zlib's default: streams shrink about 3x, in about 50 µs a page.
_COMPRESSION = 6
# A reader turns a raw end of line inside a string into a line feed, so
# carriage returns and line feeds are escaped with the delimiters.
_ESCAPES = {
    ord("\\"): b"\\\\",
    ord("("): b"\\(",
    ord(")"): b"\\)",
    ord("\r"): b"\\r",
    ord("\n"): b"\\n",
}
_ESCAPED = frozenset(_ESCAPES)


@dataclass(frozen=True, slots=True)
class Info:
    """What the document says about itself, in its information dictionary."""

    title: str
    subject: str
    author: str
    creator: str
    # A PDF date, "D:YYYYMMDDHHmmSS+00'00'"; taken from the caller, never
    # from the clock.
    created: str
    language: str


@lru_cache(maxsize=4096)
def number(value: float) -> bytes:
    """Write a coordinate with two decimals at most, and no needless zero."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return b"0" if text in ("", "-0") else text.encode("ascii")


@lru_cache(maxsize=8192)
def shown(text: str) -> bytes:
    """Return the operator that shows `text` in the current font."""
    return b"(" + _escaped(text.encode(TEXT_ENCODING)) + b") Tj\n"


def text_line(font: str, size: float, x: float, y: float, text: str) -> bytes:
    """Return the operators that show one line of text at (x, y)."""
    return b"".join(
        (
            b"/",
            FONTS[font],
            b" ",
            number(size),
            b" Tf 1 0 0 1 ",
            number(x),
            b" ",
            number(y),
            b" Tm ",
            shown(text),
        )
    )


def document(pages: Sequence[bytes], width: float, height: float, info: Info) -> bytes:
    """Assemble the file from each page's content stream."""
    objects = _Objects()
    catalog = objects.reserve()
    tree = objects.reserve()
    fonts = {
        name: objects.add(
            b"<< /Type /Font /Subtype /Type1 /BaseFont /"
            + name.encode("ascii")
            + b" /Encoding /WinAnsiEncoding >>"
        )
        for name in FONTS
    }
    resources = (
        b"<< /Font << "
        + b" ".join(
            b"/" + FONTS[name] + b" " + _ref(number_) for name, number_ in fonts.items()
        )
        + b" >> >>"
    )
    media_box = b"[0 0 " + number(width) + b" " + number(height) + b"]"
    kids = [_page(objects, tree, content, media_box, resources) for content in pages]
    objects.put(
        tree,
        b"<< /Type /Pages /Kids ["
        + b" ".join(_ref(kid) for kid in kids)
        + b"] /Count "
        + str(len(kids)).encode("ascii")
        + b" >>",
    )
    objects.put(
        catalog,
        b"<< /Type /Catalog /Pages "
        + _ref(tree)
        + b" /Lang "
        + _text_string(info.language)
        + b" >>",
    )
    information = objects.add(_information(info))
    return objects.file(catalog, information, _identifier(pages, info))


def _page(
    objects: _Objects, tree: int, content: bytes, media_box: bytes, resources: bytes
) -> int:
    packed = zlib.compress(content, _COMPRESSION)
    stream = objects.add(
        b"<< /Length "
        + str(len(packed)).encode("ascii")
        + b" /Filter /FlateDecode >>\nstream\n"
        + packed
        + b"\nendstream"
    )
    return objects.add(
        b"<< /Type /Page /Parent "
        + _ref(tree)
        + b" /MediaBox "
        + media_box
        + b" /Resources "
        + resources
        + b" /Contents "
        + _ref(stream)
        + b" >>"
    )


def _information(info: Info) -> bytes:
    entries = (
        (b"Title", info.title),
        (b"Subject", info.subject),
        (b"Author", info.author),
        (b"Creator", info.creator),
        (b"Producer", info.author),
        (b"CreationDate", info.created),
        (b"ModDate", info.created),
    )
    return (
        b"<< "
        + b" ".join(b"/" + key + b" " + _text_string(value) for key, value in entries)
        + b" >>"
    )


def _identifier(pages: Sequence[bytes], info: Info) -> bytes:
    # The file identifier is a digest of the content, so it is stable too.
    digest = hashlib.md5(usedforsecurity=False)
    for content in pages:
        digest.update(content)
    digest.update(repr(info).encode("utf-8"))
    hexed = digest.hexdigest().encode("ascii")
    return b"[<" + hexed + b"> <" + hexed + b">]"


def _text_string(value: str) -> bytes:
    """Write a string outside page content: ASCII as is, anything else UTF-16."""
    if value.isascii():
        return b"(" + _escaped(value.encode("ascii")) + b")"
    return b"<feff" + value.encode("utf-16-be").hex().encode("ascii") + b">"


def _escaped(raw: bytes) -> bytes:
    if _ESCAPED.isdisjoint(raw):
        return raw
    return b"".join(_ESCAPES.get(byte, bytes((byte,))) for byte in raw)


def _ref(number_: int) -> bytes:
    return str(number_).encode("ascii") + b" 0 R"


class _Objects:
    """Numbered indirect objects, written out with their cross-reference table."""

    def __init__(self) -> None:
        self._bodies: list[bytes | None] = []

    def reserve(self) -> int:
        self._bodies.append(None)
        return len(self._bodies)

    def add(self, body: bytes) -> int:
        self._bodies.append(body)
        return len(self._bodies)

    def put(self, number_: int, body: bytes) -> None:
        self._bodies[number_ - 1] = body

    def file(self, root: int, info: int, identifier: bytes) -> bytes:
        parts = [_HEADER]
        offsets = []
        position = len(_HEADER)
        for number_, body in enumerate(self._bodies, start=1):
            if body is None:
                raise ValueError(f"PDF object {number_} was reserved, never written")
            chunk = str(number_).encode("ascii") + b" 0 obj\n" + body + b"\nendobj\n"
            offsets.append(position)
            parts.append(chunk)
            position += len(chunk)
        size = len(self._bodies) + 1
        parts.append(b"xref\n0 " + str(size).encode("ascii") + b"\n")
        # Every cross-reference entry is exactly 20 bytes, end of line included.
        parts.append(b"0000000000 65535 f \n")
        parts.extend(b"%010d 00000 n \n" % offset for offset in offsets)
        parts.append(
            b"trailer\n<< /Size "
            + str(size).encode("ascii")
            + b" /Root "
            + _ref(root)
            + b" /Info "
            + _ref(info)
            + b" /ID "
            + identifier
            + b" >>\nstartxref\n"
            + str(position).encode("ascii")
            + b"\n%%EOF\n"
        )
        return b"".join(parts)
