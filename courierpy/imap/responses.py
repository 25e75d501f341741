"""IMAP server responses as immutable values that serialize themselves.

Every response is a frozen dataclass with ``to_bytes()`` giving the exact wire
form, CRLF included (RFC 3501 section 7).  Data items inside untagged
responses and response codes are rendered by :func:`render`:

=============================  =============================================
Python value                   wire form
=============================  =============================================
``None``                       ``NIL``
``int``                        number
``str`` / ``bytes``            string: quoted when possible, else a literal
``Atom(...)``                  the text as is (``FETCH``, ``\\Seen``, ``1:3``)
``Literal(...)``               always a literal ``{n}\\r\\n...``
``Raw(...)``                   bytes already in wire form, as they are
``LiteralStream(n, source)``   a literal read from ``source()`` in chunks
``list`` / ``tuple``           parenthesized list
=============================  =============================================

The choice between quoted string and literal follows RFC 3501 section 4.3:
a quoted string may not hold CR, LF or NUL; 8-bit bytes are sent quoted only
when the client enabled ``UTF8=ACCEPT`` (``render(..., utf8=True)``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

__all__ = [
    "Atom",
    "Bye",
    "Continuation",
    "Literal",
    "LiteralStream",
    "Raw",
    "RespCode",
    "ResponseCode",
    "Tagged",
    "Untagged",
    "UntaggedStatus",
    "astring",
    "iter_render",
    "quoted",
    "render",
    "string",
]

CRLF = b"\r\n"

# ATOM-CHAR: any CHAR except atom-specials ( ) { SP CTL % * " \ ]
_ATOM_SPECIALS = frozenset(b'(){ %*"\\]')
# ASTRING-CHAR = ATOM-CHAR / resp-specials ("]")


def _is_atom_char(b: int) -> bool:
    return 0x20 < b < 0x7F and b not in _ATOM_SPECIALS


def is_astring_atom(data: bytes) -> bool:
    """True when *data* can be sent as an astring atom (RFC 3501 ASTRING-CHAR)."""
    return bool(data) and all(_is_atom_char(b) or b == 0x5D for b in data)


class RespCode(enum.Enum):
    """Response codes (RFC 3501 7.1, 4315, 5530, 2087, 4314, 5161, 4469, 5182)."""

    ALERT = "ALERT"
    BADCHARSET = "BADCHARSET"
    CAPABILITY = "CAPABILITY"
    PARSE = "PARSE"
    PERMANENTFLAGS = "PERMANENTFLAGS"
    READ_ONLY = "READ-ONLY"
    READ_WRITE = "READ-WRITE"
    TRYCREATE = "TRYCREATE"
    UIDNEXT = "UIDNEXT"
    UIDVALIDITY = "UIDVALIDITY"
    UNSEEN = "UNSEEN"
    # RFC 4315 UIDPLUS
    APPENDUID = "APPENDUID"
    COPYUID = "COPYUID"
    UIDNOTSTICKY = "UIDNOTSTICKY"
    # RFC 5530
    UNAVAILABLE = "UNAVAILABLE"
    AUTHENTICATIONFAILED = "AUTHENTICATIONFAILED"
    AUTHORIZATIONFAILED = "AUTHORIZATIONFAILED"
    EXPIRED = "EXPIRED"
    PRIVACYREQUIRED = "PRIVACYREQUIRED"
    CONTACTADMIN = "CONTACTADMIN"
    NOPERM = "NOPERM"
    INUSE = "INUSE"
    EXPUNGEISSUED = "EXPUNGEISSUED"
    CORRUPTION = "CORRUPTION"
    SERVERBUG = "SERVERBUG"
    CLIENTBUG = "CLIENTBUG"
    CANNOT = "CANNOT"
    LIMIT = "LIMIT"
    OVERQUOTA = "OVERQUOTA"
    ALREADYEXISTS = "ALREADYEXISTS"
    NONEXISTENT = "NONEXISTENT"
    # RFC 4469 / RFC 7889
    TOOBIG = "TOOBIG"
    # RFC 4314 (Courier sends it untagged after SELECT)
    MYRIGHTS = "MYRIGHTS"
    # RFC 5182 SEARCHRES
    NOTSAVED = "NOTSAVED"


@dataclass(frozen=True, slots=True)
class Atom:
    """Text sent exactly as given (keywords, flags, sequence sets)."""

    text: str

    def __post_init__(self) -> None:
        if not self.text or any(c in self.text for c in "\r\n\0 "):
            raise ValueError(f"not an atom: {self.text!r}")


@dataclass(frozen=True, slots=True)
class Raw:
    """Bytes already in wire form, inserted unchanged (a FETCH label such as
    ``BODY[HEADER.FIELDS ("FROM")]``, a cached ENVELOPE or BODYSTRUCTURE)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class LiteralStream:
    """A literal whose *size* bytes come from *source()* in chunks (a message
    file), so ``Untagged.iter_bytes()`` can stream it without holding it."""

    size: int
    source: Callable[[], Iterable[bytes]] = field(compare=False)


@dataclass(frozen=True, slots=True)
class Literal:
    """A string always sent as a literal (message bodies, BODY[...] data)."""

    data: bytes


def quoted(data: bytes) -> bytes:
    """Quote *data* (which must not hold CR, LF or NUL)."""
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def _literal(data: bytes) -> bytes:
    return b"{%d}\r\n" % len(data) + data


def string(value: str | bytes, *, utf8: bool = False) -> bytes:
    """A string: quoted when RFC 3501 allows, otherwise a literal."""
    data = value.encode("utf-8") if isinstance(value, str) else value
    if b"\r" in data or b"\n" in data or b"\0" in data:
        return _literal(data)
    if not utf8 and any(b > 0x7F for b in data):
        return _literal(data)
    return quoted(data)


def astring(value: str | bytes, *, utf8: bool = False) -> bytes:
    """An astring: a bare atom when possible (never ``NIL``), else a string."""
    data = value.encode("utf-8") if isinstance(value, str) else value
    if is_astring_atom(data) and data.upper() != b"NIL":
        return data
    return string(data, utf8=utf8)


def render(value: object, *, utf8: bool = False) -> bytes:
    """Serialize one data item (see the module docstring for the mapping)."""
    if value is None:
        return b"NIL"
    if isinstance(value, bool):
        raise TypeError("booleans have no IMAP form")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("IMAP numbers are unsigned")
        return b"%d" % value
    if isinstance(value, Atom):
        return value.text.encode("utf-8")
    if isinstance(value, Literal):
        return _literal(value.data)
    if isinstance(value, Raw):
        return value.data
    if isinstance(value, str | bytes):
        return string(value, utf8=utf8)
    if isinstance(value, list | tuple):
        return b"(" + b" ".join(render(v, utf8=utf8) for v in value) + b")"
    if isinstance(value, LiteralStream):
        return b"".join(iter_render(value))
    if hasattr(value, "to_wire"):
        return value.to_wire()  # type: ignore[no-any-return]
    raise TypeError(f"cannot render {type(value).__name__} as IMAP data")


def iter_render(value: object, *, utf8: bool = False) -> Iterator[bytes]:
    """Like :func:`render`, in pieces: a :class:`LiteralStream` is read from its
    source chunk by chunk, everything else comes out whole."""
    if isinstance(value, LiteralStream):
        yield b"{%d}\r\n" % value.size
        sent = 0
        for chunk in value.source():
            sent += len(chunk)
            if sent > value.size:
                raise ValueError("literal source gave more bytes than announced")
            yield chunk
        if sent != value.size:
            raise ValueError("literal source gave fewer bytes than announced")
    elif isinstance(value, list | tuple) and any(_has_stream(v) for v in value):
        yield b"("
        for i, v in enumerate(value):
            if i:
                yield b" "
            yield from iter_render(v, utf8=utf8)
        yield b")"
    else:
        yield render(value, utf8=utf8)


def _has_stream(value: object) -> bool:
    if isinstance(value, LiteralStream):
        return True
    if isinstance(value, list | tuple):
        return any(_has_stream(v) for v in value)
    return False


def _check_text(text: str) -> None:
    if "\r" in text or "\n" in text:
        raise ValueError("response text must not contain CR or LF")


@dataclass(frozen=True, slots=True)
class ResponseCode:
    """``[CODE data...]``; *data* items are rendered with :func:`render`."""

    code: RespCode
    data: tuple[object, ...] = ()

    def to_bytes(self) -> bytes:
        parts = [self.code.value.encode("ascii")]
        parts.extend(render(d) for d in self.data)
        return b"[" + b" ".join(parts) + b"]"


def _status_line(prefix: bytes, status: str, code: ResponseCode | None, text: str) -> bytes:
    out = prefix + b" " + status.encode("ascii")
    if code is not None:
        out += b" " + code.to_bytes()
    if text:
        out += b" " + text.encode("utf-8")
    return out + CRLF


_STATUSES = frozenset({"OK", "NO", "BAD"})
_UNTAGGED_STATUSES = frozenset({"OK", "NO", "BAD", "PREAUTH", "BYE"})


def _valid_tag(tag: str) -> bool:
    data = tag.encode("utf-8", "replace")
    return bool(data) and all((_is_atom_char(b) or b == 0x5D) and b != 0x2B for b in data)


@dataclass(frozen=True, slots=True)
class Tagged:
    """The tagged completion of a command: ``a1 OK [READ-WRITE] Ok``."""

    tag: str
    status: str
    text: str
    code: ResponseCode | None = None

    def __post_init__(self) -> None:
        if self.status not in _STATUSES:
            raise ValueError(f"tagged status must be OK, NO or BAD, not {self.status!r}")
        if not _valid_tag(self.tag):
            raise ValueError(f"invalid tag {self.tag!r}")
        _check_text(self.text)

    def to_bytes(self) -> bytes:
        return _status_line(self.tag.encode("utf-8"), self.status, self.code, self.text)


@dataclass(frozen=True, slots=True)
class UntaggedStatus:
    """``* OK [UIDVALIDITY 5] Ok``, ``* NO ...``, ``* PREAUTH ...``."""

    status: str
    text: str
    code: ResponseCode | None = None

    def __post_init__(self) -> None:
        if self.status not in _UNTAGGED_STATUSES:
            raise ValueError(f"invalid untagged status {self.status!r}")
        _check_text(self.text)

    def to_bytes(self) -> bytes:
        return _status_line(b"*", self.status, self.code, self.text)


def Bye(text: str, code: ResponseCode | None = None) -> UntaggedStatus:  # noqa: N802
    """``* BYE text`` — the server is closing the connection."""
    return UntaggedStatus("BYE", text, code)


@dataclass(frozen=True, slots=True)
class Untagged:
    """Untagged data: ``* 3 EXISTS``, ``* SEARCH 1 2``, ``* 1 FETCH (...)``.

    ``Untagged((3, Atom("EXISTS")))`` renders each item with :func:`render`
    and joins them with single spaces.
    """

    items: tuple[object, ...]
    utf8: bool = field(default=False, compare=False)

    def to_bytes(self) -> bytes:
        return b"* " + b" ".join(render(i, utf8=self.utf8) for i in self.items) + CRLF

    def iter_bytes(self) -> Iterator[bytes]:
        """The response in pieces; :class:`LiteralStream` items are streamed."""
        yield b"* "
        for i, item in enumerate(self.items):
            if i:
                yield b" "
            yield from iter_render(item, utf8=self.utf8)
        yield CRLF


@dataclass(frozen=True, slots=True)
class Continuation:
    """A continuation request: ``+ OK`` or ``+ <base64>``."""

    text: str = "OK"

    def __post_init__(self) -> None:
        _check_text(self.text)

    def to_bytes(self) -> bytes:
        return b"+ " + self.text.encode("utf-8") + CRLF


def atoms(words: Iterable[str]) -> tuple[Atom, ...]:
    """``atoms(["\\\\Seen", "$Label1"])`` — a tuple of :class:`Atom` for flag lists."""
    return tuple(Atom(w) for w in words)


def flags_list(flags: Sequence[str]) -> tuple[Atom, ...]:
    """A flag list data item (renders as ``(\\Seen \\Draft)``)."""
    return atoms(flags)
