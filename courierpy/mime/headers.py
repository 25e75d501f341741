"""A fast header-block splitter over bytes, and decoding helpers.

The hot path (building ENVELOPE and BODYSTRUCTURE for many messages) never
goes through the ``email`` package's policy machinery: the header block is
split by hand here, field by field, with byte offsets kept so that sections
such as ``BODY[HEADER.FIELDS (...)]`` can be served from the original bytes.

Header text is carried as ``str`` decoded with latin-1, which maps every byte
to one code point and back, so nothing is lost for 8-bit headers. The decoding
helpers at the bottom (RFC 2047 words, address lists, dates) are thin wrappers
around the standard library for the slower paths (SEARCH, display).

Lines may end in LF (as Courier stores mail) or CRLF; both are accepted.
"""

from __future__ import annotations

import datetime
import email.errors
import email.header
import email.utils
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "Field",
    "HeaderBlock",
    "count_crlf_size",
    "decode_addresses",
    "decode_date",
    "decode_words",
    "find_header_end",
    "split_fields",
    "unfold",
]

_CHUNK = 1 << 20


def find_header_end(data, start: int = 0, end: int | None = None) -> tuple[int, int, bool]:
    """Where the header block that begins at *start* ends.

    Returns ``(header_end, body_start, terminated)``: the header occupies
    ``[start, header_end)`` (its last line break included), the empty line
    separating it from the body, if any, occupies ``[header_end, body_start)``
    and *terminated* says whether such an empty line was found. Without one the
    whole region is header and the body is empty.
    """
    if end is None:
        end = len(data)
    first = data[start : min(start + 2, end)]
    if first[:1] == b"\n":
        return start, start + 1, True
    if first == b"\r\n":
        return start, start + 2, True
    lf = data.find(b"\n\n", start, end)
    # Look for CRLF's empty line only before the first LF one (LF mail has none).
    crlf = data.find(b"\n\r\n", start, end if lf < 0 else lf)
    if crlf >= 0:
        return crlf + 1, crlf + 3, True
    if lf >= 0:
        return lf + 1, lf + 2, True
    # A part's region stops before the line break that belongs to the next
    # boundary; when the header's last line is followed right there by that
    # break, the two form an empty line and the header counts as ended (as in
    # Courier), with an empty body.
    if end == start or data[end - 1 : end] == b"\n":
        after = data[end : end + 2]
        if after[:1] == b"\n" or after == b"\r\n":
            return end, end, True
    return end, end, False


@dataclass(frozen=True, slots=True)
class Field:
    """One header field: its lower-case name and where its raw bytes lie."""

    name: str  #: lower-case field name (text before the colon, stripped)
    start: int  #: offset of the first byte of the field
    end: int  #: offset just past the field's last line break (or region end)
    colon: int  #: offset of the colon, or -1 for a junk line without one

    def raw(self, data) -> bytes:
        """The field as stored, folding and line breaks included."""
        return bytes(data[self.start : self.end])

    def value(self, data) -> str:
        """The unfolded value (latin-1 text): line breaks removed, ends stripped."""
        return self.raw_value(data).strip(" \t")

    def raw_value(self, data) -> str:
        """The value after the colon with line breaks removed, white space kept."""
        if self.colon < 0:
            return ""
        return unfold(bytes(data[self.colon + 1 : self.end]))


def split_fields(data, start: int, end: int) -> list[Field]:
    """Split the header block ``[start, end)`` into fields.

    A field starts on a line that does not begin with white space; following
    lines beginning with a space or tab continue it. A line without a colon
    becomes a field with ``colon == -1`` (named by the whole line) so that the
    block still reassembles; a continuation line before any field is attached
    to a nameless field.
    """
    fields: list[Field] = []
    pos = start
    cur_start = -1
    while pos < end:
        nl = data.find(b"\n", pos, end)
        line_end = end if nl < 0 else nl + 1
        first = data[pos : pos + 1]
        if first in (b" ", b"\t") and cur_start >= 0:
            pos = line_end
            continue
        if cur_start >= 0:
            fields.append(_make_field(data, cur_start, pos))
        cur_start = pos
        pos = line_end
    if cur_start >= 0:
        fields.append(_make_field(data, cur_start, end))
    return fields


def _make_field(data, start: int, end: int) -> Field:
    nl = data.find(b"\n", start, end)
    first_line_end = end if nl < 0 else nl
    colon = data.find(b":", start, first_line_end)
    if colon < 0:
        name = bytes(data[start:first_line_end]).decode("latin-1").strip().lower()
    else:
        name = bytes(data[start:colon]).decode("latin-1").strip().lower()
    return Field(name, start, end, colon)


def unfold(raw: bytes) -> str:
    """Remove the line breaks of a folded value, as Courier does (white space kept)."""
    return raw.replace(b"\r", b"").replace(b"\n", b"").decode("latin-1")


class HeaderBlock:
    """The fields of one header block with lookup by lower-case name."""

    __slots__ = ("data", "fields", "start", "header_end", "body_start", "terminated", "_index")

    def __init__(self, data, start: int = 0, end: int | None = None) -> None:
        self.data = data
        self.start = start
        self.header_end, self.body_start, self.terminated = find_header_end(data, start, end)
        self.fields = split_fields(data, start, self.header_end)
        index: dict[str, list[Field]] = {}
        for f in self.fields:
            if f.colon >= 0:
                index.setdefault(f.name, []).append(f)
        self._index = index

    def get_all(self, name: str) -> list[str]:
        """Every value of the field *name* (lower case), unfolded, in order."""
        return [f.value(self.data) for f in self._index.get(name, ())]

    def get_all_raw(self, name: str) -> list[str]:
        """Every value of the field *name*, unfolded but not stripped."""
        return [f.raw_value(self.data) for f in self._index.get(name, ())]

    def get(self, name: str) -> str | None:
        """The first value of the field *name*, or None."""
        found = self._index.get(name)
        return found[0].value(self.data) if found else None

    def last(self, name: str) -> str | None:
        """The last value of the field *name*, or None (the one that counts in MIME)."""
        found = self._index.get(name)
        return found[-1].value(self.data) if found else None

    def __contains__(self, name: str) -> bool:
        return name in self._index


def count_crlf_size(data, start: int, end: int) -> tuple[int, int]:
    """Size of ``[start, end)`` once every bare LF becomes CRLF, and its LF count."""
    size = end - start
    if isinstance(data, bytes | bytearray):
        lfs = data.count(b"\n", start, end)
        return size + lfs - data.count(b"\r\n", start, end), lfs
    lfs = 0
    crlfs = 0
    pos = start
    while pos < end:
        stop = min(end, pos + _CHUNK)
        chunk = bytes(data[pos:stop])
        lfs += chunk.count(b"\n")
        crlfs += chunk.count(b"\r\n")
        # A CR at a chunk edge followed by LF at the start of the next chunk.
        if chunk.endswith(b"\r") and stop < end and data[stop : stop + 1] == b"\n":
            crlfs += 1
        pos = stop
    return size + lfs - crlfs, lfs


# --- decoding helpers (slow path; the standard library does the work) ---------


def decode_words(value: str | bytes) -> str:
    """Decode RFC 2047 encoded words into text (8-bit bytes are read as UTF-8)."""
    if isinstance(value, str):
        value = value.encode("latin-1", "replace")
    text = value.decode("utf-8", "replace")
    try:
        return str(email.header.make_header(email.header.decode_header(text)))
    except (email.errors.HeaderParseError, LookupError, UnicodeError, ValueError):
        return text


def decode_addresses(values: Sequence[str]) -> list[tuple[str, str]]:
    """(display name, address) pairs of address header values, names decoded."""
    pairs = email.utils.getaddresses([decode_words(v) for v in values])
    return [(name, addr) for name, addr in pairs if name or addr]


def decode_date(value: str | None) -> datetime.datetime | None:
    """The date of a Date: header value, or None when it cannot be read."""
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
