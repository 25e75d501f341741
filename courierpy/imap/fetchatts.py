"""FETCH attributes: what the client asked for, what each needs, its label.

RFC 3501 section 9::

    fetch           = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" /
                      fetch-att / "(" fetch-att *(SP fetch-att) ")")
    fetch-att       = "ENVELOPE" / "FLAGS" / "INTERNALDATE" /
                      "RFC822" [".HEADER" / ".SIZE" / ".TEXT"] /
                      "BODY" ["STRUCTURE"] / "UID" /
                      "BODY" section ["<" number "." nz-number ">"] /
                      "BODY.PEEK" section ["<" number "." nz-number ">"]
    section         = "[" [section-spec] "]"
    section-spec    = section-msgtext / (section-part ["." section-text])
    section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"
    section-part    = nz-number *("." nz-number)
    section-text    = section-msgtext / "MIME"
    header-list     = "(" header-fld-name *(SP header-fld-name) ")"

Each :class:`FetchAtt` declares the data it :attr:`~FetchAtt.needs` as a
:class:`FetchNeeds` flag, so FETCH can plan: FLAGS and UID come from the
index, ENVELOPE and BODYSTRUCTURE from the metadata cache, header sections
from the header block, anything else from the message file (style.md
example 9, pymap's ``FetchRequirement``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from courierpy.imap.errors import BadSyntax
from courierpy.imap.tokens import MAX_NUMBER, Cursor, Tok
from courierpy.mime.imapwire import Section

__all__ = ["MACROS", "FetchAtt", "FetchNeeds", "Section", "parse_fetch_atts", "section_needs"]


class FetchNeeds(enum.Flag):
    """What a FETCH attribute or SEARCH key needs loaded for a message."""

    NONE = 0
    #: the UID (message index)
    UID = enum.auto()
    #: the flags (message index, keywords file)
    FLAGS = enum.auto()
    #: INTERNALDATE (the file's mtime)
    INTERNALDATE = enum.auto()
    #: RFC822.SIZE with CRLF line ends (metadata cache)
    SIZE = enum.auto()
    #: ENVELOPE / BODYSTRUCTURE / parsed header fields (metadata cache)
    STRUCTURE = enum.auto()
    #: the raw header block of the message (or of a part)
    HEADER = enum.auto()
    #: the whole message file
    BODY = enum.auto()


def section_needs(section: Section) -> FetchNeeds:
    """What fetching *section* needs: the header block for the message's own
    header sections, else the message file."""
    if section.kind in ("HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT") and not section.path:
        return FetchNeeds.HEADER
    return FetchNeeds.BODY


_SIMPLE = {
    "ENVELOPE": FetchNeeds.STRUCTURE,
    "FLAGS": FetchNeeds.FLAGS,
    "INTERNALDATE": FetchNeeds.INTERNALDATE,
    "RFC822": FetchNeeds.BODY,
    "RFC822.HEADER": FetchNeeds.HEADER,
    "RFC822.SIZE": FetchNeeds.SIZE,
    "RFC822.TEXT": FetchNeeds.BODY,
    "BODY": FetchNeeds.STRUCTURE,
    "BODYSTRUCTURE": FetchNeeds.STRUCTURE,
    "UID": FetchNeeds.UID,
}


@dataclass(frozen=True, slots=True)
class FetchAtt:
    """One FETCH attribute.

    *name* is one of the simple names (``FLAGS``, ``RFC822.SIZE``,
    ``BODYSTRUCTURE``, ...) or ``BODY`` with a *section* (``BODY[...]``,
    *peek* for ``BODY.PEEK``) and an optional *partial* ``(origin, length)``
    (length ``None``: to the end).
    """

    name: str
    section: Section | None = None
    peek: bool = False
    partial: tuple[int, int | None] | None = None

    @property
    def needs(self) -> FetchNeeds:
        if self.section is not None:
            return section_needs(self.section)
        return _SIMPLE[self.name]

    @property
    def sets_seen(self) -> bool:
        """True when fetching this sets ``\\Seen`` (RFC 3501 6.4.5)."""
        if self.section is not None:
            return not self.peek
        return self.name in ("RFC822", "RFC822.TEXT")

    @property
    def label(self) -> bytes:
        """The item name in the FETCH response: ``BODY[HEADER.FIELDS ("FROM")]``,
        ``BODY[]<0>`` (a partial echoes only its origin)."""
        if self.section is None:
            return self.name.encode("ascii")
        out = b"BODY[" + self.section.wire() + b"]"
        if self.partial is not None:
            out += b"<%d>" % self.partial[0]
        return out

    def __str__(self) -> str:
        if self.section is None:
            return self.name
        out = (
            ("BODY.PEEK[" if self.peek else "BODY[")
            + self.section.wire(label=False).decode()
            + "]"
        )
        if self.partial is not None:
            o, n = self.partial
            out += f"<{o}>" if n is None else f"<{o}.{n}>"
        return out


def _atts(*names: str) -> tuple[FetchAtt, ...]:
    return tuple(FetchAtt(n) for n in names)


MACROS: dict[str, tuple[FetchAtt, ...]] = {
    "ALL": _atts("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": _atts("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": _atts("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}


def parse_fetch_atts(cur: Cursor) -> tuple[FetchAtt, ...]:
    """``("ALL" / "FULL" / "FAST" / fetch-att / "(" fetch-att *(SP fetch-att) ")")``."""
    if cur.peek_kind() == Tok.LP:
        # Courier also expands a macro inside the list: "(FAST UID)"
        groups = cur.list_of(_fetch_att_or_macro, allow_empty=False)
        return tuple(att for group in groups for att in group)
    kind, value = cur.peek() or (None, None)
    if kind == Tok.ATOM:
        macro = MACROS.get(value.upper().decode("ascii", "replace"))  # type: ignore[union-attr]
        if macro is not None:
            cur.pos += 1
            return macro
    return (_fetch_att(cur),)


def _fetch_att_or_macro(cur: Cursor) -> tuple[FetchAtt, ...]:
    kind, value = cur.peek() or (None, None)
    if kind == Tok.ATOM:
        macro = MACROS.get(value.upper().decode("ascii", "replace"))  # type: ignore[union-attr]
        if macro is not None:
            cur.pos += 1
            return macro
    return (_fetch_att(cur),)


def _fetch_att(cur: Cursor) -> FetchAtt:
    raw = cur.raw_atom("fetch attribute")
    up = raw.upper()
    br = up.find(b"[")
    if br < 0:
        name = up.decode("ascii", "replace")
        if name not in _SIMPLE:
            raise BadSyntax("Invalid fetch attribute.")
        return FetchAtt(name)
    head = up[:br]
    if head == b"BODY":
        peek = False
    elif head == b"BODY.PEEK":
        peek = True
    else:
        raise BadSyntax("Invalid fetch attribute.")
    rest = up[br + 1 :]
    close = rest.find(b"]")
    if close >= 0:
        spec, tail = rest[:close], rest[close + 1 :]
        section = _section(spec, None)
    else:
        # "BODY[HEADER.FIELDS" SP header-list "]..." — the list is separate tokens
        spec = rest
        if not (spec.endswith(b"HEADER.FIELDS") or spec.endswith(b"HEADER.FIELDS.NOT")):
            raise BadSyntax("Invalid fetch attribute.")
        cur.sp()
        fields = tuple(cur.list_of(_header_name))  # Courier accepts "()"
        tail_raw = cur.raw_atom("]")
        if tail_raw[:1] != b"]":
            raise BadSyntax("Invalid fetch attribute.")
        tail = tail_raw[1:]
        section = _section(spec, fields)
    partial = _partial(tail)
    return FetchAtt("BODY", section, peek, partial)


def _header_name(cur: Cursor) -> str:
    # header-fld-name = astring.  Kept as sent: Courier echoes the names in
    # the label as the client wrote them (``("subject")``); matching is
    # case-insensitive.  Names no header can have (``X:Y``) are accepted and
    # simply match nothing, as in Courier.
    data = cur.astring("header field name")
    if not data or any(b < 0x20 or b > 0x7E for b in data):
        raise BadSyntax("Invalid header field name.")
    return data.decode("ascii")


_MSGTEXT = (b"HEADER", b"TEXT")


def _section(spec: bytes, fields: tuple[str, ...] | None) -> Section:
    """``section-spec`` without the brackets; *fields* given for HEADER.FIELDS[.NOT]."""
    if not spec:
        if fields is not None:
            raise BadSyntax("Invalid section.")
        return Section()
    parts: list[int] = []
    words = spec.split(b".")
    i = 0
    while i < len(words) and words[i].isdigit():
        w = words[i]
        if w[:1] == b"0" or len(w) > 10 or int(w) > MAX_NUMBER:
            raise BadSyntax("Invalid section part.")
        parts.append(int(w))
        i += 1
    text_words = words[i:]
    if not text_words:
        if fields is not None:
            raise BadSyntax("Invalid section.")
        return Section(tuple(parts))
    text = b".".join(text_words)
    if text in _MSGTEXT or (text == b"MIME" and parts):
        if fields is not None:
            raise BadSyntax("Invalid section.")
        return Section(tuple(parts), text.decode("ascii"))
    if text in (b"HEADER.FIELDS", b"HEADER.FIELDS.NOT"):
        if fields is None:
            raise BadSyntax("Missing header list.")
        return Section(tuple(parts), text.decode("ascii"), fields)
    raise BadSyntax("Invalid section.")


def _partial(tail: bytes) -> tuple[int, int | None] | None:
    """``<origin.length>``; Courier also takes ``<origin>`` (to the end, length
    ``None``) and a zero length, so we do too."""
    if not tail:
        return None
    if tail[:1] != b"<" or tail[-1:] != b">":
        raise BadSyntax("Invalid partial fetch.")
    origin, dot, length = tail[1:-1].partition(b".")
    if not origin.isdigit() or len(origin) > 10 or not origin.isascii():
        raise BadSyntax("Invalid partial fetch.")
    if dot and (not length.isdigit() or len(length) > 10 or not length.isascii()):
        raise BadSyntax("Invalid partial fetch.")
    o = int(origin)
    n = int(length) if dot else None
    if o > MAX_NUMBER or (n is not None and n > MAX_NUMBER):
        raise BadSyntax("Invalid partial fetch.")
    return (o, n)
