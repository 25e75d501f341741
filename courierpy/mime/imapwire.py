"""ENVELOPE, BODY and BODYSTRUCTURE in IMAP wire form, and BODY[section] bytes.

See RFC 3501 §7.4.2 (the grammar of ENVELOPE, BODY and BODYSTRUCTURE) and
§6.4.5 (section specifiers and partial fetches). Output follows what the real
Courier imapd sends where the RFC leaves a choice:

- Strings are quoted (``\\`` and ``"`` escaped); 8-bit header text is first
  turned into RFC 2047 words (UTF-8, the shorter of B and Q), so ENVELOPE and
  BODYSTRUCTURE never need a literal.
- Single-part extension data is md5, disposition and language, and language
  is always NIL; multipart extension data is parameters, disposition, NIL.
- ``BODY[n.MIME]`` holds only the part's ``Content-*`` and ``MIME-Version``
  fields; ``HEADER.FIELDS`` keeps the fields' order and spelling.

Sections are produced in CRLF form from the stored bytes (LF or CRLF) and may be
streamed: :func:`fetch_section` returns a :class:`SectionData` whose size is
known before its chunks are produced.
"""

from __future__ import annotations

import base64
import mmap
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

from courierpy.errors import CourierError
from courierpy.mime.envelope import Address, Envelope
from courierpy.mime.headers import split_fields
from courierpy.mime.tree import Part, parse

__all__ = [
    "BadSection",
    "MessageWire",
    "message_wire",
    "Section",
    "SectionData",
    "body",
    "bodystructure",
    "envelope",
    "fetch_section",
    "fetch_section_from_file",
    "open_message",
    "parse_section",
    "quote",
    "encode_8bit",
]

_CHUNK = 1 << 18


class BadSection(CourierError):
    """A section specifier that RFC 3501 §6.4.5 does not allow."""


# --- strings -------------------------------------------------------------------


def quote(value: str | bytes | None) -> bytes:
    """An IMAP string: NIL, a quoted string, or a literal when it must be one."""
    if value is None:
        return b"NIL"
    raw = value.encode("latin-1", "replace") if isinstance(value, str) else bytes(value)
    if _NEEDS_LITERAL.search(raw):
        return b"{%d}\r\n" % len(raw) + raw
    if b"\\" in raw or b'"' in raw:
        raw = raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    return b'"' + raw + b'"'


_NEEDS_LITERAL = re.compile(rb"[\x00\r\n\x80-\xff]")
_WORDS = re.compile(r"([ \t]+|[<>])")
_Q_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!*+-/.")


def _encoded_word(text: str) -> str:
    raw = text.encode("utf-8")
    b = "=?utf-8?B?" + base64.b64encode(raw).decode("ascii") + "?="
    q = []
    for byte in raw:
        if byte in _Q_SAFE:
            q.append(chr(byte))
        elif byte == 0x20:
            q.append("_")
        else:
            q.append(f"={byte:02X}")
    qs = "=?utf-8?Q?" + "".join(q) + "?="
    return qs if len(qs) < len(b) else b


def _needs_word(piece: str) -> bool:
    # Non-ASCII text, and (once a header needs encoding at all) words holding
    # a character that has a meaning inside encoded words or quoted strings.
    return bool(piece) and (not piece.isascii() or any(c in piece for c in '"=?_'))


def encode_8bit(text: str | None) -> str | None:
    """Header text (latin-1 code points = bytes) with 8-bit runs as RFC 2047 words.

    The bytes are read as UTF-8 (invalid sequences dropped); each run of words
    holding non-ASCII characters, with the white space between them, becomes
    one encoded word, as Courier writes them. Pure ASCII text is left alone.
    """
    if text is None or text.isascii():
        return text
    utext = text.encode("latin-1", "replace").decode("utf-8", "ignore")
    pieces = _WORDS.split(utext)
    out: list[str] = []
    i = 0
    n = len(pieces)
    while i < n:
        piece = pieces[i]
        if i % 2 == 0 and _needs_word(piece):
            j = i
            # Extend over "white space, word to encode" pairs.
            while (
                j + 2 < n
                and pieces[j + 1] != ""
                and pieces[j + 1].strip(" \t") == ""
                and _needs_word(pieces[j + 2])
            ):
                j += 2
            out.append(_encoded_word("".join(pieces[i : j + 1])))
            i = j + 1
            continue
        out.append(piece)
        i += 1
    return "".join(out)


def _q(value: str | None) -> bytes:
    """A header-derived string for ENVELOPE/BODYSTRUCTURE (hot path)."""
    if value is None:
        return b"NIL"
    if not value.isascii():
        return quote(encode_8bit(value))
    if "\r" in value or "\n" in value or "\x00" in value:
        return quote(value)
    if "\\" in value or '"' in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"')
    return b'"' + value.encode("ascii") + b'"'


# --- ENVELOPE ------------------------------------------------------------------


def _addresses(addrs: tuple[Address, ...]) -> bytes:
    if not addrs:
        return b"NIL"
    return b"(" + b"".join(b"(" + b" ".join(_q(m) for m in a) + b")" for a in addrs) + b")"


def envelope(env: Envelope) -> bytes:
    """The ENVELOPE structure (RFC 3501 §7.4.2), parenthesised."""
    return b"".join(
        (
            b"(",
            _q(env.date),
            b" ",
            _q(env.subject),
            b" ",
            b" ".join(
                _addresses(a)
                for a in (env.from_, env.sender, env.reply_to, env.to, env.cc, env.bcc)
            ),
            b" ",
            _q(env.in_reply_to),
            b" ",
            _q(env.message_id),
            b")",
        )
    )


# --- BODY / BODYSTRUCTURE --------------------------------------------------------


def _params(params) -> bytes:
    if not params:
        return b"NIL"
    return b"(" + b" ".join(_q(k) + b" " + _q(v) for k, v in params) + b")"


def _disposition(part: Part) -> bytes:
    if part.disposition is None:
        return b"NIL"
    return b"(" + _q(part.disposition) + b" " + _params(part.disposition_params) + b")"


def _structure(part: Part, extended: bool) -> bytes:
    if part.children:
        inner = b"".join(_structure(c, extended) for c in part.children)
        out = b"(" + inner + b" " + _q(part.subtype)
        if extended:
            out += b" " + _params(part.params) + b" " + _disposition(part) + b" NIL"
        return out + b")"
    fields = [
        _q(part.type),
        _q(part.subtype),
        _params(part.params),
        _q(part.id),
        _q(part.description),
        _q(part.encoding),
        b"%d" % part.size,
    ]
    if part.message is not None:
        fields.append(envelope(part.message.envelope))  # type: ignore[arg-type]
        fields.append(_structure(part.message, extended))
        fields.append(b"%d" % part.lines)
    elif part.type == "text":
        fields.append(b"%d" % part.lines)
    if extended:
        fields += [_q(part.md5), _disposition(part), b"NIL"]
    return b"(" + b" ".join(fields) + b")"


def bodystructure(tree: Part) -> bytes:
    """BODYSTRUCTURE of a message tree (with extension data)."""
    return _structure(tree, True)


def body(tree: Part) -> bytes:
    """BODY (no extension data) of a message tree."""
    return _structure(tree, False)


# --- sections ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Section:
    """A section specifier, ``[1.2.HEADER.FIELDS (FROM TO)]``: the part numbers
    *path*, then *kind*: ``""`` (the whole part), ``HEADER``, ``HEADER.FIELDS``,
    ``HEADER.FIELDS.NOT``, ``TEXT`` or ``MIME``; *fields* holds the header
    names, as the client wrote them, for the HEADER.FIELDS forms.  One class
    for the IMAP grammar (:mod:`courierpy.imap.fetchatts`) and for this module."""

    path: tuple[int, ...] = ()
    kind: str = ""
    fields: tuple[str, ...] = ()

    def wire(self, *, label: bool = True) -> bytes:
        """The specifier as echoed in a FETCH response (field names quoted, and an
        empty field list dropped: ``BODY[HEADER.FIELDS]``, as Courier); with
        *label* false, a form that always parses back."""
        out = ".".join([str(n) for n in self.path]).encode("ascii")
        if self.kind:
            out += (b"." if out else b"") + self.kind.encode("ascii")
        if self.kind in ("HEADER.FIELDS", "HEADER.FIELDS.NOT") and (self.fields or not label):
            out += b" (" + b" ".join([quote(f) for f in self.fields]) + b")"
        return out


_KINDS = ("HEADER.FIELDS.NOT", "HEADER.FIELDS", "HEADER", "TEXT", "MIME")


def parse_section(spec: str) -> Section:
    """Parse the text between ``[`` and ``]`` of a BODY[...] fetch item."""
    text = spec.strip()
    head, paren, rest = text.partition("(")
    head = head.strip()
    path: list[int] = []
    kind = ""
    items = head.split(".") if head else []
    i = 0
    while i < len(items) and items[i].isdigit():
        n = int(items[i])
        if n == 0:
            raise BadSection(f"invalid part number in {spec!r}")
        path.append(n)
        i += 1
    kind = ".".join(items[i:]).upper()
    if kind and kind not in _KINDS:
        raise BadSection(f"unknown section {spec!r}")
    if kind == "MIME" and not path:
        raise BadSection("MIME needs a part number")
    fields: tuple[str, ...] = ()
    if kind.startswith("HEADER.FIELDS"):
        if not paren or not rest.rstrip().endswith(")"):
            raise BadSection(f"{kind} needs a field list")
        names = rest.rstrip()[:-1].split()
        fields = tuple(n.strip('"') for n in names)
        if not fields:
            raise BadSection(f"{kind} needs a field list")
    elif paren:
        raise BadSection(f"unexpected list in {spec!r}")
    return Section(tuple(path), kind, fields)


def _parts(node: Part, top: bool) -> list[Part]:
    """Parts 1, 2, ... below *node*, as Courier numbers them.

    A multipart's parts are its children. A message/rfc822 part stands for its
    encapsulated message's parts, except at the top level, where the
    encapsulated message itself is part 1. A message (top level or
    encapsulated) that is not multipart is its own part 1; a multipart whose
    boundary never appears has no parts.
    """
    if node.children:
        return node.children
    if node.message is not None:
        return [node.message] if top else _parts(node.message, False)
    if node.is_message and not (node.type == "multipart" and node.param("boundary")):
        return [node]
    return []


def _resolve(tree: Part, path: tuple[int, ...], *, mime: bool = False) -> Part | None:
    """The entity that part number *path* names (None if there is none).

    With *mime* (a ``n.MIME`` section), Courier's quirk: a message that is
    its own only part (not multipart) answers for *any* part number, so
    ``BODY[2.MIME]`` or ``BODY[1.9.MIME]`` of a single-part message is the
    message's own MIME header (checked against the real imapd).
    """
    node = tree
    for depth, n in enumerate(path):
        kids = _parts(node, depth == 0)
        if mime and len(kids) == 1 and kids[0] is node:
            continue
        if n > len(kids):
            return None
        node = kids[n - 1]
    return node


class SectionData:
    """The bytes of one section in CRLF form: ``size`` first, then ``chunks()``."""

    __slots__ = ("size", "_chunks")

    def __init__(self, size: int, chunks: Iterator[bytes] | list[bytes]) -> None:
        self.size = size
        self._chunks = chunks

    def chunks(self) -> Iterator[bytes]:
        yield from self._chunks

    def read(self) -> bytes:
        return b"".join(self.chunks())


def to_crlf(raw: bytes) -> bytes:
    """*raw* with every line ending CRLF (bare LF made CRLF, CRLF kept)."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _crlf_chunks(
    data, start: int, end: int, skip: int, limit: int | None, chunk_size: int = _CHUNK
) -> Iterator[bytes]:
    """``data[start:end]`` in CRLF form, from CRLF offset *skip*, at most *limit* bytes."""
    pos = start
    offset = 0  # CRLF-form offset of the current chunk
    while pos < end and (limit is None or limit > 0):
        stop = min(end, pos + chunk_size)
        if stop < end and data[stop - 1 : stop] == b"\r":
            stop += 1  # never split a CRLF pair
        chunk = to_crlf(bytes(data[pos:stop]))
        pos = stop
        clen = len(chunk)
        if offset + clen <= skip:
            offset += clen
            continue
        if skip > offset:
            chunk = chunk[skip - offset :]
        offset += clen
        if limit is not None:
            chunk = chunk[:limit]
            limit -= len(chunk)
        if chunk:
            yield chunk


def _header_text(data, ent: Part, keep) -> bytes:
    fields = [f for f in split_fields(data, ent.header_start, ent.header_end) if keep(f.name)]
    out = []
    for f in fields:
        raw = to_crlf(f.raw(data))
        if not raw.endswith(b"\r\n"):
            raw += b"\r\n"
        out.append(raw)
    if ent.terminated or not fields:
        out.append(b"\r\n")
    return b"".join(out)


def _raw_header(raw: bytes, ent: Part) -> bytes:
    """BODY[HEADER] of *ent*: its header block as stored, in CRLF form. A block
    ended by the line break that belongs to the next boundary (so it holds no
    empty line itself) gets its empty line here."""
    out = to_crlf(raw)
    if ent.terminated and ent.body_start == ent.header_end:
        out += b"\r\n"
    return out


def _slice(whole: bytes, partial: tuple[int, int | None] | None) -> bytes:
    if partial is None:
        return whole
    start, count = partial
    return whole[start:] if count is None else whole[start : start + count]


def _plan(tree: Part, section: Section):
    """What a section needs: ("none",), ("header", entity, keep) or
    ("range", start, end, size) in stored-byte offsets and CRLF size."""
    ent = _resolve(tree, section.path, mime=section.kind == "MIME") if section.path else tree
    if ent is None:
        return ("none",)
    kind = section.kind
    if kind in ("HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT"):
        if section.path and ent.message is not None:
            ent = ent.message
    if kind == "MIME":
        return ("header", ent, _is_mime_field)
    if kind == "HEADER.FIELDS" or kind == "HEADER.FIELDS.NOT":
        wanted = frozenset(f.lower() for f in section.fields)
        negate = kind == "HEADER.FIELDS.NOT"
        return ("header", ent, lambda n: (n in wanted) != negate)
    if kind == "HEADER":
        return ("raw_header", ent)
    if kind == "TEXT" or section.path:
        return ("range", ent.body_start, ent.end, ent.size)
    return ("range", ent.header_start, ent.end, ent.header_size + ent.size)


def _is_mime_field(name: str) -> bool:
    return name.startswith("content-") or name == "mime-version"


def _window(size: int, partial: tuple[int, int | None] | None) -> tuple[int, int, int | None]:
    """(bytes to send, CRLF offset to start at, byte limit) for a partial fetch."""
    if partial is None:
        return size, 0, None
    skip, limit = partial
    size = max(0, size - skip)
    if limit is not None:
        size = min(size, limit)
    return size, skip, limit


def fetch_section(
    data,
    tree: Part,
    section: Section,
    partial: tuple[int, int | None] | None = None,
) -> SectionData:
    """The bytes of ``BODY[section]<partial>`` (*partial* is ``(start, count)``,
    count None for "to the end").

    *data* is the stored message (bytes or an mmap from :func:`open_message`);
    *tree* is its :func:`~courierpy.mime.tree.parse` result. A part that does not
    exist gives empty data, as Courier sends. Body ranges are produced lazily
    in chunks: *data* must stay readable until they have been consumed.
    """
    plan = _plan(tree, section)
    if plan[0] == "none":
        return SectionData(0, [])
    if plan[0] == "header":
        return _small(_header_text(data, plan[1], plan[2]), partial)
    if plan[0] == "raw_header":
        ent = plan[1]
        return _small(_raw_header(bytes(data[ent.header_start : ent.body_start]), ent), partial)
    _, start, end, size = plan
    size, skip, limit = _window(size, partial)
    if size == 0:
        return SectionData(0, [])
    return SectionData(size, _crlf_chunks(data, start, end, skip, limit))


def fetch_section_from_file(
    path: str | os.PathLike,
    tree: Part,
    section: Section,
    partial: tuple[int, int | None] | None = None,
) -> SectionData:
    """:func:`fetch_section` for a stored message file, *tree* coming from a cache.

    The size of a body range is known from *tree* without touching the file; its
    chunks open the file when they are consumed and close it when done, so a
    FETCH can write the literal's size, then stream. Header sections (MIME,
    HEADER.FIELDS) read just the header block, at once.
    """
    plan = _plan(tree, section)
    if plan[0] == "none":
        return SectionData(0, [])
    if plan[0] in ("header", "raw_header"):
        ent = plan[1]
        with open(path, "rb") as f:
            f.seek(ent.header_start)
            head = f.read(ent.body_start - ent.header_start)
        if plan[0] == "raw_header":
            return _small(_raw_header(head, ent), partial)
        # Re-base the entity on the bytes just read (offsets relative to them).
        fields_end = ent.header_end - ent.header_start
        local = Part(0, fields_end, fields_end, fields_end, ent.terminated)
        return _small(_header_text(head, local, plan[2]), partial)
    _, start, end, size = plan
    size, skip, limit = _window(size, partial)
    if size == 0:
        return SectionData(0, [])

    def chunks() -> Iterator[bytes]:
        with open_message(path) as buf:
            yield from _crlf_chunks(buf, start, end, skip, limit)

    return SectionData(size, chunks())


def _small(whole: bytes, partial) -> SectionData:
    out = _slice(whole, partial)
    return SectionData(len(out), [out])


@contextmanager
def open_message(path: str | os.PathLike):
    """The stored message at *path* as a read-only buffer (an mmap, or b"" if empty)."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            yield b""
            return
        m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            yield m
        finally:
            m.close()


class MessageWire(NamedTuple):
    """What a metadata cache keeps per message: the tree (for sections) and the
    FETCH items that depend only on the message's bytes."""

    tree: Part
    envelope: bytes
    bodystructure: bytes
    body: bytes
    rfc822_size: int


def message_wire(data) -> MessageWire:
    """Parse *data* once and render ENVELOPE, BODYSTRUCTURE, BODY and RFC822.SIZE."""
    tree = parse(data)
    assert tree.envelope is not None
    return MessageWire(
        tree, envelope(tree.envelope), bodystructure(tree), body(tree), tree.total_size
    )
