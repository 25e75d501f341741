"""The IMAP tokenizer and the grammar primitives (RFC 3501 section 9).

A command arrives as one or more *segments*: the bytes of a line up to CRLF,
where every segment but the last ends with a literal marker ``{n}`` /
``{n+}`` and is followed by *n* bytes of literal data.  :func:`lex_segment`
turns one segment into tokens, once, and appends them to the command's token
list; the literal data is appended as one more token.  When the last segment
has arrived, the per-command grammar (``state.py``) walks the tokens with a
:class:`Cursor`.  Nothing is ever lexed twice (style.md section 1: pymap
re-parses the whole line after each literal, Dovecot resumes — we resume).

The lexer is deliberately context-free and a little wider than the RFC:

* ``atom`` here is any run of bytes other than SP, ``(``, ``)``, ``"`` and
  CTL; the grammar then checks it against what the context allows
  (ATOM-CHAR, ASTRING-CHAR, list-char, sequence-set, ``BODY[...]<...>``).
  This is how ``BODY[HEADER.FIELDS (FROM)]`` lexes as atom ``BODY[HEADER.FIELDS``,
  SP, a list, then atom ``]``; the FETCH grammar stitches it back.
* 8-bit bytes are allowed in atoms and quoted strings (UTF8=ACCEPT, and
  SEARCH CHARSET UTF-8 with quoted UTF-8, which clients send).

Formal syntax being implemented (RFC 3501 section 9, abridged)::

    astring         = 1*ASTRING-CHAR / string
    string          = quoted / literal
    quoted          = DQUOTE *QUOTED-CHAR DQUOTE
    QUOTED-CHAR     = <any TEXT-CHAR except quoted-specials> / "\\" quoted-specials
    literal         = "{" number "}" CRLF *CHAR8            ; RFC 7888: "{" number ["+"] "}"
    nstring         = string / nil
    number          = 1*DIGIT                               ; unsigned 32-bit
    nz-number       = digit-nz *DIGIT
    mailbox         = "INBOX" / astring                     ; INBOX case-insensitive
    flag-list       = "(" [flag *(SP flag)] ")"
    flag            = "\\Answered" / "\\Flagged" / "\\Deleted" / "\\Seen" / "\\Draft" /
                      flag-keyword / flag-extension
    date            = date-text / DQUOTE date-text DQUOTE
    date-text       = date-day "-" date-month "-" date-year
    date-time       = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from courierpy.imap.errors import BadSyntax
from courierpy.imap.seqset import SeqSet
from courierpy.wire import utf7

__all__ = [
    "Cursor",
    "LiteralMarker",
    "StreamedLiteral",
    "Tok",
    "Token",
    "lex_segment",
]

MAX_NUMBER = 4294967295  # RFC 3501: number is an unsigned 32-bit integer


class Tok:
    """Token kinds (small ints; tokens are ``(kind, value)`` tuples)."""

    SP = 0
    LP = 1
    RP = 2
    ATOM = 3
    QUOTED = 4
    LITERAL = 5
    STREAMED = 6


Token = tuple[int, object]

SP_TOKEN: Token = (Tok.SP, None)
LP_TOKEN: Token = (Tok.LP, None)
RP_TOKEN: Token = (Tok.RP, None)

_DELIMS = frozenset(b' ()"')


@dataclass(frozen=True, slots=True)
class LiteralMarker:
    """The ``{n}`` / ``{n+}`` that ended a segment."""

    size: int
    synchronizing: bool


@dataclass(frozen=True, slots=True)
class StreamedLiteral:
    """Stands in the token list for a literal handed out as LiteralChunk events."""

    size: int


def _ctl(b: int) -> bool:
    return b < 0x20 or b == 0x7F


def lex_segment(line: bytes, tokens: list[Token]) -> LiteralMarker | None:
    """Append the tokens of one segment (CRLF removed) to *tokens*.

    Returns the literal marker that ends the segment, or ``None`` when the
    command ends here.  Raises :class:`BadSyntax` on a lexical error.
    """
    i = 0
    n = len(line)
    append = tokens.append
    while i < n:
        b = line[i]
        if b == 0x20:
            append(SP_TOKEN)
            i += 1
        elif b == 0x28:
            append(LP_TOKEN)
            i += 1
        elif b == 0x29:
            append(RP_TOKEN)
            i += 1
        elif b == 0x22:
            i = _lex_quoted(line, i, tokens)
        elif b == 0x7B:  # "{" starts a literal marker, which must end the line
            return _lex_marker(line, i)
        elif _ctl(b):
            raise BadSyntax("Invalid character in command.")
        else:
            j = i + 1
            while j < n:
                c = line[j]
                if c in _DELIMS or _ctl(c):
                    break
                j += 1
            append((Tok.ATOM, line[i:j]))
            i = j
    return None


def _lex_quoted(line: bytes, i: int, tokens: list[Token]) -> int:
    out = bytearray()
    j = i + 1
    n = len(line)
    while j < n:
        start = j
        # fast path: copy runs without backslash or quote
        while j < n and line[j] != 0x22 and line[j] != 0x5C:
            j += 1
        out += line[start:j]
        if j >= n:
            break
        c = line[j]
        if c == 0x22:
            if b"\0" in out:
                raise BadSyntax("NUL in quoted string.")
            tokens.append((Tok.QUOTED, bytes(out)))
            return j + 1
        # backslash: only \\ and \" are allowed
        if j + 1 >= n or line[j + 1] not in (0x22, 0x5C):
            raise BadSyntax("Invalid escape in quoted string.")
        out.append(line[j + 1])
        j += 2
    raise BadSyntax("Unterminated quoted string.")


def _lex_marker(line: bytes, i: int) -> LiteralMarker:
    if not line.endswith(b"}"):
        raise BadSyntax("Invalid literal.")
    inner = line[i + 1 : -1]
    sync = True
    if inner.endswith(b"+"):
        sync = False
        inner = inner[:-1]
    if not inner or not inner.isdigit() or not inner.isascii() or len(inner) > 20:
        raise BadSyntax("Invalid literal size.")
    # sizes over MAX_NUMBER are not numbers in RFC 3501; the reader refuses
    # them as too big, with the tag, before anything is read
    return LiteralMarker(int(inner), sync)


# --- the grammar primitives --------------------------------------------------

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        [
            b"JAN",
            b"FEB",
            b"MAR",
            b"APR",
            b"MAY",
            b"JUN",
            b"JUL",
            b"AUG",
            b"SEP",
            b"OCT",
            b"NOV",
            b"DEC",
        ]
    )
}
_ATOM_SPECIALS = frozenset(b'(){ %*"\\]')
_LIST_WILDCARDS = frozenset(b"%*")
_TAG_BAD = frozenset(b'(){ %*"\\+')


def is_atom(data: bytes) -> bool:
    """RFC 3501 ``atom``: 1*ATOM-CHAR (7-bit, no specials)."""
    return bool(data) and all(0x20 < b < 0x7F and b not in _ATOM_SPECIALS for b in data)


def is_astring_chars(data: bytes, utf8: bool = False) -> bool:
    """1*ASTRING-CHAR (ATOM-CHAR or ``]``); with *utf8*, also 8-bit bytes."""
    if not data:
        return False
    for b in data:
        if b > 0x7F:
            if not utf8:
                return False
        elif not (0x20 < b < 0x7F) or (b in _ATOM_SPECIALS and b != 0x5D):
            return False
    return True


def is_tag(data: bytes) -> bool:
    """``tag = 1*<any ASTRING-CHAR except "+">``."""
    return bool(data) and all(0x20 < b < 0x7F and b not in _TAG_BAD for b in data)


class Cursor:
    """Walks a command's token list; every method consumes or raises BadSyntax.

    *utf8* is the session's UTF8=ACCEPT state: mailbox names are then UTF-8,
    not modified UTF-7.  *searchres* allows ``$`` (RFC 5182) as a sequence
    set; Courier does not implement SEARCHRES, so it is off by default.
    """

    __slots__ = ("tokens", "pos", "utf8", "searchres")

    def __init__(
        self, tokens: list[Token], pos: int = 0, utf8: bool = False, searchres: bool = False
    ) -> None:
        self.tokens = tokens
        self.pos = pos
        self.utf8 = utf8
        self.searchres = searchres

    # --- structure
    def at_end(self) -> bool:
        return self.pos >= len(self.tokens)

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def peek_kind(self) -> int | None:
        t = self.peek()
        return None if t is None else t[0]

    def _next(self, what: str) -> Token:
        if self.pos >= len(self.tokens):
            raise BadSyntax(f"Missing {what}.")
        t = self.tokens[self.pos]
        self.pos += 1
        return t

    def end(self) -> None:
        if not self.at_end():
            raise BadSyntax("Unexpected extra arguments.")

    def sp(self) -> None:
        if self._next("argument")[0] != Tok.SP:
            raise BadSyntax("Expected a space.")

    def maybe_sp(self) -> bool:
        if self.peek_kind() == Tok.SP:
            self.pos += 1
            return True
        return False

    def lparen(self) -> None:
        if self._next("(")[0] != Tok.LP:
            raise BadSyntax("Expected (.")

    def rparen(self) -> None:
        if self._next(")")[0] != Tok.RP:
            raise BadSyntax("Expected ).")

    def maybe_lparen(self) -> bool:
        if self.peek_kind() == Tok.LP:
            self.pos += 1
            return True
        return False

    def maybe_rparen(self) -> bool:
        if self.peek_kind() == Tok.RP:
            self.pos += 1
            return True
        return False

    def list_of(self, item, *, allow_empty: bool = True) -> list:  # type: ignore[no-untyped-def]
        """``"(" [item *(SP item)] ")"``; *item* is called with this cursor."""
        self.lparen()
        out = []
        if self.maybe_rparen():
            if not allow_empty:
                raise BadSyntax("Empty list.")
            return out
        while True:
            out.append(item(self))
            if self.maybe_rparen():
                return out
            self.sp()

    # --- strings
    def raw_atom(self, what: str = "atom") -> bytes:
        """The bytes of an atom token, unchecked (callers validate)."""
        kind, value = self._next(what)
        if kind != Tok.ATOM:
            raise BadSyntax(f"Expected {what}.")
        return value  # type: ignore[return-value]

    def atom(self, what: str = "atom") -> str:
        data = self.raw_atom(what)
        if not is_atom(data):
            raise BadSyntax(f"Invalid {what}.")
        return data.decode("ascii")

    def keyword(self, *words: str) -> str:
        """An atom that must be one of *words* (case-insensitive); returns it uppercased."""
        data = self.raw_atom(words[0] if len(words) == 1 else "keyword").upper()
        word = data.decode("ascii", "replace")
        if word not in words:
            raise BadSyntax(f"Expected {' or '.join(words)}.")
        return word

    def string(self, what: str = "string") -> bytes:
        kind, value = self._next(what)
        if kind in (Tok.QUOTED, Tok.LITERAL):
            return value  # type: ignore[return-value]
        raise BadSyntax(f"Expected {what}.")

    def astring(self, what: str = "string") -> bytes:
        kind, value = self._next(what)
        if kind in (Tok.QUOTED, Tok.LITERAL):
            return value  # type: ignore[return-value]
        if kind == Tok.ATOM and is_astring_chars(value, self.utf8):  # type: ignore[arg-type]
            return value  # type: ignore[return-value]
        raise BadSyntax(f"Invalid {what}.")

    def nstring(self, what: str = "string") -> bytes | None:
        t = self.peek()
        if t is not None and t[0] == Tok.ATOM and t[1].upper() == b"NIL":  # type: ignore[union-attr]
            self.pos += 1
            return None
        return self.string(what)

    def text_astring(self, what: str = "string") -> str:
        """An astring as text (user names, passwords, identifiers).

        Bytes that are not UTF-8 survive as surrogate escapes, so
        ``.encode("utf-8", "surrogateescape")`` gives back exactly what the
        client sent (Courier passes such bytes to authlib unchanged).
        """
        return self.astring(what).decode("utf-8", "surrogateescape")

    # --- numbers
    def number(self, what: str = "number") -> int:
        data = self.raw_atom(what)
        if not data.isdigit() or not data.isascii() or len(data) > 10:
            raise BadSyntax(f"Invalid {what}.")
        n = int(data)
        if n > MAX_NUMBER:
            raise BadSyntax(f"Invalid {what}.")
        return n

    def nz_number(self, what: str = "number") -> int:
        n = self.number(what)
        if n == 0:
            raise BadSyntax(f"Invalid {what}: zero.")
        return n

    def seqset(self, what: str = "message set") -> SeqSet:
        """``sequence-set`` (``$`` only with *searchres*)."""
        return SeqSet.parse(self.raw_atom(what), allow_saved=self.searchres)

    # --- mailboxes
    def mailbox(self) -> str:
        """``mailbox``: INBOX is case-insensitive; others are modified UTF-7
        (or UTF-8 once the client enabled UTF8=ACCEPT)."""
        return decode_mailbox(self.astring("mailbox name"), self.utf8)

    def mailbox_reference(self) -> str:
        """LIST's reference name (a mailbox, possibly empty, kept as a prefix)."""
        return decode_mailbox(self.astring("reference"), self.utf8, pattern=True)

    def list_mailbox(self) -> str:
        """``list-mailbox = 1*list-char / string`` (wildcards allowed)."""
        kind, value = self._next("mailbox pattern")
        if kind == Tok.ATOM:
            data: bytes = value  # type: ignore[assignment]
            if not all(
                b in _LIST_WILDCARDS or (b > 0x7F and self.utf8) or is_astring_chars(bytes([b]))
                for b in data
            ):
                raise BadSyntax("Invalid mailbox pattern.")
        elif kind in (Tok.QUOTED, Tok.LITERAL):
            data = value  # type: ignore[assignment]
        else:
            raise BadSyntax("Expected a mailbox pattern.")
        return decode_mailbox(data, self.utf8, pattern=True)

    # --- flags
    def flag(self, *, allow_recent: bool = False, allow_wild: bool = False) -> str:
        """``flag`` (``\\Seen`` ... or a keyword atom).  System flags come back
        in their canonical capitalisation, keywords as sent."""
        data = self.raw_atom("flag")
        return canonical_flag(data, allow_recent=allow_recent, allow_wild=allow_wild)

    def flag_list(self) -> tuple[str, ...]:
        """``flag-list = "(" [flag *(SP flag)] ")"``."""
        return tuple(self.list_of(lambda c: c.flag()))

    # --- dates
    def date(self) -> _dt.date:
        """``date = date-text / DQUOTE date-text DQUOTE``."""
        kind, value = self._next("date")
        if kind not in (Tok.ATOM, Tok.QUOTED):
            raise BadSyntax("Expected a date.")
        return parse_date_text(value)  # type: ignore[arg-type]

    def date_time(self) -> _dt.datetime:
        """``date-time`` (always quoted)."""
        kind, value = self._next("date-time")
        if kind != Tok.QUOTED:
            raise BadSyntax("Expected a quoted date-time.")
        return parse_date_time(value)  # type: ignore[arg-type]


_SYSTEM_FLAGS = {
    b"\\ANSWERED": "\\Answered",
    b"\\FLAGGED": "\\Flagged",
    b"\\DELETED": "\\Deleted",
    b"\\SEEN": "\\Seen",
    b"\\DRAFT": "\\Draft",
}


def canonical_flag(data: bytes, *, allow_recent: bool = False, allow_wild: bool = False) -> str:
    """Validate a flag; system flags are case-insensitive (RFC 3501 2.3.2)."""
    if data[:1] == b"\\":
        up = data.upper()
        if up in _SYSTEM_FLAGS:
            return _SYSTEM_FLAGS[up]
        if up == b"\\RECENT" and allow_recent:
            return "\\Recent"
        if data == b"\\*" and allow_wild:
            return "\\*"
        # flag-extension = "\\" atom: syntactically valid, but not ours to store
        if is_atom(data[1:]):
            raise BadSyntax("Unknown system flag.")
        raise BadSyntax("Invalid flag.")
    if not is_atom(data):
        raise BadSyntax("Invalid flag.")
    return data.decode("ascii")


def decode_mailbox(data: bytes, utf8: bool, pattern: bool = False) -> str:
    """Wire mailbox name → Unicode; ``INBOX`` in any case → ``INBOX``."""
    if data.upper() == b"INBOX":
        return "INBOX"
    if utf8:
        try:
            name = data.decode("utf-8")
        except UnicodeDecodeError:
            raise BadSyntax("Invalid mailbox name: not UTF-8.") from None
    else:
        try:
            name = utf7.decode(data.decode("ascii"))
        except (UnicodeDecodeError, utf7.UTF7Error):
            raise BadSyntax("Invalid mailbox name.") from None
    if "\0" in name:
        raise BadSyntax("Invalid mailbox name.")
    # "INBOX.foo" keeps INBOX's case-insensitivity for the prefix (Courier's hierarchy).
    if not pattern and name[:6].upper() == "INBOX." and name[:6] != "INBOX.":
        name = "INBOX." + name[6:]
    return name


def parse_date_text(data: bytes) -> _dt.date:
    parts = data.split(b"-")
    if len(parts) != 3:
        raise BadSyntax("Invalid date.")
    day, mon, year = parts
    if not (1 <= len(day) <= 2 and day.isdigit() and len(year) == 4 and year.isdigit()):
        raise BadSyntax("Invalid date.")
    month = _MONTHS.get(mon.upper())
    if month is None:
        raise BadSyntax("Invalid date.")
    try:
        return _dt.date(int(year), month, int(day))
    except ValueError:
        raise BadSyntax("Invalid date.") from None


def parse_date_time(data: bytes) -> _dt.datetime:
    """``dd-Mon-yyyy hh:mm:ss +zzzz`` (day may be space-padded)."""
    if len(data) != 26 or data[11:12] != b" " or data[20:21] != b" ":
        raise BadSyntax("Invalid date-time.")
    day = data[0:2]
    if day[:1] == b" ":
        day = day[1:]
    date = parse_date_text(day + data[2:11])
    t = data[12:20]
    zone = data[21:26]
    if t[2:3] != b":" or t[5:6] != b":" or not (t[:2] + t[3:5] + t[6:]).isdigit():
        raise BadSyntax("Invalid date-time.")
    if zone[:1] not in (b"+", b"-") or not zone[1:].isdigit():
        raise BadSyntax("Invalid date-time.")
    hh, mm, ss = int(t[:2]), int(t[3:5]), int(t[6:])
    zh, zm = int(zone[1:3]), int(zone[3:5])
    if hh > 23 or mm > 59 or ss > 60 or zm > 59:
        raise BadSyntax("Invalid date-time.")
    offset = _dt.timedelta(hours=zh, minutes=zm)
    if zone[:1] == b"-":
        offset = -offset
    return _dt.datetime(
        date.year, date.month, date.day, hh, mm, min(ss, 59), tzinfo=_dt.timezone(offset)
    )
