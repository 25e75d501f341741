"""A MIME part tree with byte offsets, built from a message's bytes.

Every :class:`Part` records where its header and body lie in the stored
message (raw offsets: Courier stores LF line endings, but CRLF files work
too), its Content-* fields, and its body's size and line count *in CRLF form*,
the form IMAP counts and sends. Multipart parts have ``children``; a
message/rfc822 part has ``message``, the encapsulated message's own tree.

Rules (RFC 2045/2046, as the real Courier applies them; the oracle test
checks them on a corpus and on generated messages):

- Content-Type and Content-Disposition count only in a message that has a
  ``MIME-Version`` field (the top level and each encapsulated message); parts
  of a multipart are always MIME. Content-Transfer-Encoding, -ID, -Description
  and -MD5 count regardless. A repeated field: the last one wins, and the
  parameters of repeated Content-Type/-Disposition fields are merged.
- The default type is text/plain, or message/rfc822 inside multipart/digest.
  The default transfer encoding is the enclosing multipart's, ``8bit`` at the
  top of a message.
- A boundary delimiter is a line starting with ``--`` and the boundary (prefix
  match). A part's body ends before the line break that precedes the next
  delimiter; preamble and epilogue belong to no part. A multipart whose
  delimiter never appears is a leaf; one whose close delimiter is missing ends
  its last part where its own body ends (at the end of the message: less one
  final line break).
- A header block ends at the first empty line, also one formed by the line
  break that belongs to the next delimiter.

Parsing never raises on message content: junk header lines, missing or bogus
boundaries, 8-bit bytes and endless nesting (capped at :data:`MAX_DEPTH`) all
give some tree. :meth:`Part.to_json` / :meth:`Part.from_json` give a compact
JSON-able form for a metadata cache: the offsets come back without reading the
message again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from courierpy.mime.envelope import Envelope
from courierpy.mime.headers import HeaderBlock, count_crlf_size

__all__ = ["MAX_DEPTH", "MAX_PARTS", "Part", "decode_params", "parse", "parse_params"]

#: Nesting deeper than this (multipart or message/rfc822) is treated as a leaf.
MAX_DEPTH = 100
#: More parts than this in one message: the rest of the body is not split further.
MAX_PARTS = 10000

_QUOTED_PAIR = re.compile(r"\\(.)", re.S)

Params = tuple[tuple[str, str], ...]


@dataclass(slots=True, eq=True)
class Part:
    """One MIME entity: its offsets, Content-* fields and sub-parts."""

    header_start: int
    header_end: int  #: end of the header lines (the blank line excluded)
    body_start: int
    end: int  #: end of the body (before the delimiter's line break)
    terminated: bool  #: the header block ended with an empty line
    type: str = "text"
    subtype: str = "plain"
    params: Params = ()
    id: str | None = None
    description: str | None = None
    encoding: str = "8bit"
    md5: str | None = None
    disposition: str | None = None
    disposition_params: Params = ()
    language: str | None = None
    location: str | None = None
    header_size: int = 0  #: header block (blank line included) size in CRLF form
    size: int = 0  #: body size in CRLF form
    lines: int = 0  #: line breaks in the body
    children: list[Part] = field(default_factory=list)
    message: Part | None = None  #: the encapsulated message of a message/rfc822 part
    is_message: bool = False  #: the top level or an encapsulated message (has an envelope)
    envelope: Envelope | None = None  #: set on messages (unless left out of a cache)

    @property
    def total_size(self) -> int:
        """Header plus body in CRLF form: RFC822.SIZE for the top level."""
        return self.header_size + self.size

    @property
    def is_multipart(self) -> bool:
        return bool(self.children)

    def param(self, name: str) -> str | None:
        for k, v in self.params:
            if k == name:
                return v
        return None

    def walk(self):
        """This part and every part below it, depth first."""
        yield self
        for c in self.children:
            yield from c.walk()
        if self.message is not None:
            yield from self.message.walk()

    # --- compact form for caches ---------------------------------------------

    def to_json(self, envelopes: bool = True) -> list:
        """A JSON-able list; :meth:`from_json` rebuilds an equal tree.

        With ``envelopes=False`` the messages' envelopes are left out (a cache
        that keeps ENVELOPE/BODYSTRUCTURE in wire form does not need them to
        serve sections); the rebuilt tree then has ``envelope=None``.
        """
        return [
            self.header_start,
            self.header_end,
            self.body_start,
            self.end,
            int(self.terminated),
            self.type,
            self.subtype,
            [list(p) for p in self.params],
            self.id,
            self.description,
            self.encoding,
            self.md5,
            self.disposition,
            [list(p) for p in self.disposition_params],
            self.language,
            self.location,
            self.header_size,
            self.size,
            self.lines,
            [c.to_json(envelopes) for c in self.children],
            self.message.to_json(envelopes) if self.message is not None else None,
            int(self.is_message),
            self.envelope.to_json() if envelopes and self.envelope is not None else None,
        ]

    @classmethod
    def from_json(cls, obj: list) -> Part:
        return cls(
            header_start=obj[0],
            header_end=obj[1],
            body_start=obj[2],
            end=obj[3],
            terminated=bool(obj[4]),
            type=obj[5],
            subtype=obj[6],
            params=tuple((k, v) for k, v in obj[7]),
            id=obj[8],
            description=obj[9],
            encoding=obj[10],
            md5=obj[11],
            disposition=obj[12],
            disposition_params=tuple((k, v) for k, v in obj[13]),
            language=obj[14],
            location=obj[15],
            header_size=obj[16],
            size=obj[17],
            lines=obj[18],
            children=[cls.from_json(c) for c in obj[19]],
            message=cls.from_json(obj[20]) if obj[20] is not None else None,
            is_message=bool(obj[21]),
            envelope=Envelope.from_json(obj[22]) if obj[22] is not None else None,
        )


def parse_params(text: str) -> tuple[str, Params]:
    """Split ``value; name=val; name="quoted"`` into the value and its parameters.

    Names are lower-cased; values keep their bytes (quoted strings lose only
    their quotes, as Courier reports them). RFC 2231 ``name*0``/``name*``
    parameters are reported as they stand, as Courier does.
    """
    n = len(text)
    i = text.find(";")
    if i < 0:
        return text.strip(), ()
    head = text[:i].strip()
    params: list[tuple[str, str]] = []
    i += 1
    while i < n:
        while i < n and text[i] in " \t;":
            i += 1
        j = i
        while j < n and text[j] not in "=;":
            j += 1
        name = text[i:j].strip().lower()
        if j >= n or text[j] == ";":
            i = j + 1
            continue
        j += 1
        while j < n and text[j] in " \t":
            j += 1
        if j < n and text[j] == '"':
            k = j + 1
            while k < n and text[k] != '"':
                k += 2 if text[k] == "\\" else 1
            value = _QUOTED_PAIR.sub(r"\1", text[j + 1 : min(k, n)])
            k += 1
            while k < n and text[k] != ";":
                k += 1
        else:
            k = j
            while k < n and text[k] != ";":
                k += 1
            value = text[j:k].strip()
        if name:
            if name == "charset":
                value = value.lower()
            params.append((name, value))
        i = k + 1
    return head, tuple(params)


def decode_params(params: Params) -> dict[str, str]:
    """Parameters with RFC 2231 continuations joined and charsets decoded.

    ``name*0="long" name*1="name.txt"`` gives ``{"name": "longname.txt"}``;
    ``x*=utf-8''%C3%A9`` gives ``{"x": "é"}``. For display and SEARCH; the wire
    form (Courier's) reports parameters undecoded. Plain 8-bit values are read
    as UTF-8. Never raises.
    """
    plain: dict[str, str] = {}
    pieces: dict[str, list[tuple[int, bool, str]]] = {}
    for name, value in params:
        base, star, rest = name.partition("*")
        if not star:
            plain.setdefault(name, value)
            continue
        extended = rest.endswith("*") or rest == ""
        index = rest.rstrip("*")
        if not index:
            num = 0
        elif index.isdigit():
            num = int(index)
        else:
            continue
        pieces.setdefault(base, []).append((num, extended, value))
    result = {k: _text(v.encode("latin-1", "replace"), "utf-8") for k, v in plain.items()}
    for base, segs in pieces.items():
        segs.sort(key=lambda t: t[0])
        charset = "utf-8"
        raw = b""
        for i, (_num, extended, value) in enumerate(segs):
            if extended:
                if i == 0 and value.count("'") >= 2:
                    cs, _lang, value = value.split("'", 2)
                    charset = cs or charset
                raw += _percent_decode(value)
            else:
                raw += value.encode("latin-1", "replace")
        result[base] = _text(raw, charset)
    return result


def _percent_decode(value: str) -> bytes:
    out = bytearray()
    data = value.encode("latin-1", "replace")
    i = 0
    while i < len(data):
        if data[i] == 0x25 and _ishex(data[i + 1 : i + 3]):
            out.append(int(data[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(data[i])
            i += 1
    return bytes(out)


def _ishex(b: bytes) -> bool:
    return len(b) == 2 and all(c in b"0123456789abcdefABCDEF" for c in b)


def _text(raw: bytes, charset: str) -> str:
    try:
        return raw.decode(charset)
    except (LookupError, UnicodeDecodeError):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")


class _Budget:
    """Per-parse state: parts left to create (keeps hostile input bounded) and
    where the message ends."""

    __slots__ = ("left", "eof")

    def __init__(self, eof: int) -> None:
        self.left = MAX_PARTS
        self.eof = eof


def parse(data, start: int = 0, end: int | None = None) -> Part:
    """Parse the message in ``data[start:end]`` (bytes, bytearray or mmap)."""
    if end is None:
        end = len(data)
    return _entity(data, start, end, ("text", "plain"), "8bit", True, 0, True, _Budget(end))


def _merge(params: dict[str, str], more: Params) -> None:
    for k, v in more:
        params[k] = v


def _entity(
    data,
    start: int,
    end: int,
    default: tuple[str, str],
    default_encoding: str,
    need_version: bool,
    depth: int,
    is_message: bool,
    budget: _Budget,
) -> Part:
    budget.left -= 1
    hb = HeaderBlock(data, start, end)
    part = Part(start, hb.header_end, hb.body_start, end, hb.terminated)
    part.type, part.subtype = default
    part.encoding = default_encoding
    if is_message:
        part.is_message = True
        part.envelope = Envelope.from_header(hb)
    part.header_size = count_crlf_size(data, start, hb.body_start)[0]
    part.size, part.lines = count_crlf_size(data, hb.body_start, end)
    # Where a field appears more than once, the last one counts (as in Courier).
    cte = hb.last("content-transfer-encoding")
    if cte:
        part.encoding = cte.lower()
    part.id = hb.last("content-id") or None
    part.description = hb.last("content-description") or None
    part.md5 = hb.last("content-md5") or None
    part.language = hb.last("content-language") or None
    part.location = hb.last("content-location") or None
    # Without MIME-Version Courier still reads the fields above, but not the
    # type and disposition: the part is text/plain.
    if need_version and "mime-version" not in hb:
        return part
    # Repeated Content-Type / Content-Disposition fields: the last value wins
    # and the parameters of all of them are merged (later ones override).
    params: dict[str, str] = {}
    for ctype in hb.get_all("content-type"):
        value, more = parse_params(ctype)
        if value:
            main, slash, sub = value.partition("/")
            part.type = main.strip().lower()
            part.subtype = sub.strip().lower() if slash else ""
            _merge(params, more)
    part.params = tuple(params.items())
    dparams: dict[str, str] = {}
    for disp in hb.get_all("content-disposition"):
        value, more = parse_params(disp)
        if value:
            part.disposition = value.lower()
            _merge(dparams, more)
    part.disposition_params = tuple(dparams.items())
    if depth >= MAX_DEPTH or budget.left <= 0:
        return part
    if part.type == "multipart":
        boundary = part.param("boundary")
        if boundary:
            child_default = ("message", "rfc822") if part.subtype == "digest" else ("text", "plain")
            part.children = _split(
                data, hb.body_start, end, boundary, child_default, part.encoding, depth, budget
            )
    elif part.type == "message" and part.subtype == "rfc822":
        part.message = _entity(
            data, hb.body_start, end, ("text", "plain"), "8bit", True, depth + 1, True, budget
        )
    return part


def _split(
    data,
    start: int,
    end: int,
    boundary: str,
    child_default: tuple[str, str],
    encoding: str,
    depth: int,
    budget: _Budget,
) -> list[Part]:
    delim = b"--" + boundary.encode("latin-1", "replace")
    dlen = len(delim)
    children: list[Part] = []
    part_start = -1
    pos = start
    closed = False
    while pos < end:
        p = data.find(delim, pos, end)
        if p < 0:
            break
        if p != start and data[p - 1 : p] != b"\n":
            pos = p + 1
            continue
        nl = data.find(b"\n", p + dlen, end)
        line_end = end if nl < 0 else nl + 1
        is_close = data[p + dlen : p + dlen + 2] == b"--"
        if part_start >= 0:
            part_end = p - 1 if p > start else p
            if part_end > start and data[part_end - 1 : part_end] == b"\r":
                part_end -= 1
            children.append(
                _child(
                    data,
                    part_start,
                    max(part_start, part_end),
                    child_default,
                    encoding,
                    depth,
                    budget,
                )
            )
            if budget.left <= 0:
                closed = True
                break
        if is_close:
            closed = True
            part_start = -1
            break
        part_start = line_end
        pos = line_end
    if not closed and part_start >= 0:
        part_end = end
        # At the end of the message the last line break counts as the missing
        # delimiter's; inside an enclosing part it was already left out.
        if end == budget.eof and part_end > part_start and data[part_end - 1 : part_end] == b"\n":
            part_end -= 1
            if part_end > part_start and data[part_end - 1 : part_end] == b"\r":
                part_end -= 1
        children.append(_child(data, part_start, part_end, child_default, encoding, depth, budget))
    return children


def _child(data, start, end, default, encoding, depth, budget) -> Part:
    return _entity(data, start, end, default, encoding, False, depth + 1, False, budget)
