"""SEARCH keys as a tree of frozen values (RFC 3501 6.4.4 and section 9).

::

    search          = "SEARCH" [SP "CHARSET" SP astring] 1*(SP search-key)
    search-key      = "ALL" / "ANSWERED" / "BCC" SP astring /
                      "BEFORE" SP date / "BODY" SP astring /
                      "CC" SP astring / "DELETED" / "FLAGGED" /
                      "FROM" SP astring / "KEYWORD" SP flag-keyword /
                      "NEW" / "OLD" / "ON" SP date / "RECENT" / "SEEN" /
                      "SINCE" SP date / "SUBJECT" SP astring /
                      "TEXT" SP astring / "TO" SP astring /
                      "UNANSWERED" / "UNDELETED" / "UNFLAGGED" /
                      "UNKEYWORD" SP flag-keyword / "UNSEEN" /
                      "DRAFT" / "HEADER" SP header-fld-name SP astring /
                      "LARGER" SP number / "NOT" SP search-key /
                      "OR" SP search-key SP search-key /
                      "SENTBEFORE" SP date / "SENTON" SP date /
                      "SENTSINCE" SP date / "SMALLER" SP number /
                      "UID" SP sequence-set / "UNDRAFT" / sequence-set /
                      "(" search-key *(SP search-key) ")"

The keys reduce to a few node types: flag tests (``UNSEEN`` is
``Not(HasFlag("\\Seen"))``, ``NEW`` is ``RECENT UNSEEN``), header and body
substring tests, date and size comparisons, sequence/UID sets and the
boolean nodes :class:`And`, :class:`Or`, :class:`Not`.  Every node has a
``needs`` attribute (a :class:`~courierpy.imap.fetchatts.FetchNeeds`) so the
search can load only what the keys look at: flag searches never open a
message file.

Strings are decoded with the CHARSET the client named.  Courier hands the
charset to iconv, so it accepts any charset iconv knows (KOI8-R, ISO-8859-x,
...); we accept any charset Python's codecs know, and answer
``NO [BADCHARSET (UTF-8 US-ASCII)]`` for the rest.
"""

from __future__ import annotations

import codecs
import datetime as _dt
from dataclasses import dataclass, field

from courierpy.imap.errors import BadCharset, BadSyntax
from courierpy.imap.fetchatts import FetchNeeds
from courierpy.imap.seqset import SeqSet
from courierpy.imap.tokens import Cursor, Tok, canonical_flag, is_atom

__all__ = [
    "And",
    "DateKey",
    "HasFlag",
    "Header",
    "Not",
    "Or",
    "SearchKey",
    "SearchProgram",
    "SeqKey",
    "SizeKey",
    "Text",
    "UidKey",
    "parse_search",
    "to_wire",
]

MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class HasFlag:
    """The message has *flag* (``\\Seen``, ``\\Recent``, or a keyword)."""

    flag: str

    @property
    def needs(self) -> FetchNeeds:
        return FetchNeeds.FLAGS


@dataclass(frozen=True, slots=True)
class Header:
    """Header *field* (uppercased) contains *value* (case-insensitive);
    an empty *value* matches any message that has the field."""

    field: str
    value: str

    @property
    def needs(self) -> FetchNeeds:
        return FetchNeeds.STRUCTURE


@dataclass(frozen=True, slots=True)
class Text:
    """BODY (*where* = ``"BODY"``) or TEXT (headers and body) contains *value*."""

    where: str
    value: str

    @property
    def needs(self) -> FetchNeeds:
        return FetchNeeds.BODY


@dataclass(frozen=True, slots=True)
class DateKey:
    """*op* (``BEFORE``/``ON``/``SINCE``) *date*, against the internal date
    (*sent* false) or the Date: header (*sent* true)."""

    op: str
    date: _dt.date
    sent: bool = False

    @property
    def needs(self) -> FetchNeeds:
        return FetchNeeds.STRUCTURE if self.sent else FetchNeeds.INTERNALDATE


@dataclass(frozen=True, slots=True)
class SizeKey:
    """RFC822.SIZE ``LARGER``/``SMALLER`` than *size*."""

    op: str
    size: int

    @property
    def needs(self) -> FetchNeeds:
        return FetchNeeds.SIZE


@dataclass(frozen=True, slots=True)
class SeqKey:
    """The message sequence number is in *seqset*."""

    seqset: SeqSet

    @property
    def needs(self) -> FetchNeeds:
        return FetchNeeds.NONE


@dataclass(frozen=True, slots=True)
class UidKey:
    """The UID is in *seqset*."""

    seqset: SeqSet

    @property
    def needs(self) -> FetchNeeds:
        return FetchNeeds.UID


@dataclass(frozen=True, slots=True)
class Not:
    key: SearchKey

    @property
    def needs(self) -> FetchNeeds:
        return self.key.needs


@dataclass(frozen=True, slots=True)
class Or:
    left: SearchKey
    right: SearchKey

    @property
    def needs(self) -> FetchNeeds:
        return self.left.needs | self.right.needs


@dataclass(frozen=True, slots=True)
class And:
    """All of *keys* (``ALL`` is ``And(())``)."""

    keys: tuple[SearchKey, ...] = ()

    @property
    def needs(self) -> FetchNeeds:
        out = FetchNeeds.NONE
        for k in self.keys:
            out |= k.needs
        return out


SearchKey = HasFlag | Header | Text | DateKey | SizeKey | SeqKey | UidKey | Not | Or | And

ALL = And(())


@dataclass(frozen=True, slots=True)
class SearchProgram:
    """A parsed SEARCH: the *charset* named (``None`` if none) and the key tree."""

    key: SearchKey
    charset: str | None = None
    #: RFC 4731/5182 return options are not parsed (Courier has no ESEARCH).
    options: tuple[str, ...] = field(default=())

    @property
    def needs(self) -> FetchNeeds:
        return self.key.needs


_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", True),
    "DELETED": ("\\Deleted", True),
    "DRAFT": ("\\Draft", True),
    "FLAGGED": ("\\Flagged", True),
    "RECENT": ("\\Recent", True),
    "SEEN": ("\\Seen", True),
    "UNANSWERED": ("\\Answered", False),
    "UNDELETED": ("\\Deleted", False),
    "UNDRAFT": ("\\Draft", False),
    "UNFLAGGED": ("\\Flagged", False),
    "UNSEEN": ("\\Seen", False),
}
_HEADER_KEYS = {"BCC", "CC", "FROM", "SUBJECT", "TO"}
_DATE_KEYS = {
    "BEFORE": ("BEFORE", False),
    "ON": ("ON", False),
    "SINCE": ("SINCE", False),
    "SENTBEFORE": ("BEFORE", True),
    "SENTON": ("ON", True),
    "SENTSINCE": ("SINCE", True),
}


_FLAG_WORDS = {
    "\\Answered": "ANSWERED",
    "\\Deleted": "DELETED",
    "\\Draft": "DRAFT",
    "\\Flagged": "FLAGGED",
    "\\Recent": "RECENT",
    "\\Seen": "SEEN",
}
_MONTH_NAMES = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def to_wire(key: SearchKey, charset: str = "utf-8") -> bytes:
    """Serialize a key tree back to SEARCH syntax (strings as astrings).

    ``parse(to_wire(k)) == k`` for every tree the parser can produce, which
    the tests check; useful for logs and for passing a search on (proxying).
    """
    from courierpy.imap.responses import astring

    if isinstance(key, HasFlag):
        word = _FLAG_WORDS.get(key.flag)
        return word.encode() if word else b"KEYWORD " + key.flag.encode("ascii")
    if isinstance(key, Header):
        value = astring(key.value.encode(charset))
        if key.field in _HEADER_KEYS:
            return key.field.encode("ascii") + b" " + value
        return b"HEADER " + astring(key.field.encode("latin-1")) + b" " + value
    if isinstance(key, Text):
        return key.where.encode("ascii") + b" " + astring(key.value.encode(charset))
    if isinstance(key, DateKey):
        d = key.date
        word = ("SENT" if key.sent else "") + key.op
        return f"{word} {d.day}-{_MONTH_NAMES[d.month - 1]}-{d.year:04d}".encode("ascii")
    if isinstance(key, SizeKey):
        return f"{key.op} {key.size}".encode("ascii")
    if isinstance(key, SeqKey):
        return key.seqset.to_wire()
    if isinstance(key, UidKey):
        return b"UID " + key.seqset.to_wire()
    if isinstance(key, Not):
        return b"NOT " + to_wire(key.key, charset)
    if isinstance(key, Or):
        return b"OR " + to_wire(key.left, charset) + b" " + to_wire(key.right, charset)
    if not key.keys:
        return b"ALL"
    return b"(" + b" ".join(to_wire(k, charset) for k in key.keys) + b")"


def check_charset(name: str) -> str:
    """Return the canonical charset name or raise :class:`BadCharset`."""
    up = name.upper()
    if up in ("UTF-8", "US-ASCII"):
        return up
    try:
        codecs.lookup(name)
    except LookupError:
        raise BadCharset("The requested character set is not supported.") from None
    return up


class _Parser:
    __slots__ = ("cur", "charset")

    def __init__(self, cur: Cursor, charset: str | None) -> None:
        self.cur = cur
        self.charset = charset

    def text(self) -> str:
        data = self.cur.astring("search string")
        if self.charset is None or self.charset in ("US-ASCII", "UTF-8"):
            # Clients send UTF-8 even without CHARSET; accept it, fall back to Latin-1.
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                if self.charset == "UTF-8":
                    raise BadSyntax("Search string is not valid UTF-8.") from None
                return data.decode("latin-1")
        try:
            return data.decode(self.charset)
        except (UnicodeDecodeError, LookupError):
            raise BadSyntax("Search string is not valid in its charset.") from None

    def keys_until_end(self) -> SearchKey:
        keys = [self.key(0)]
        while not self.cur.at_end():
            self.cur.sp()
            keys.append(self.key(0))
        return keys[0] if len(keys) == 1 else And(tuple(keys))

    def key(self, depth: int) -> SearchKey:
        if depth > MAX_DEPTH:
            raise BadSyntax("Search keys nested too deeply.")
        cur = self.cur
        if cur.maybe_lparen():
            keys = [self.key(depth + 1)]
            while not cur.maybe_rparen():
                cur.sp()
                keys.append(self.key(depth + 1))
            return keys[0] if len(keys) == 1 else And(tuple(keys))
        raw = cur.raw_atom("search key")
        if raw[:1].isdigit() or raw[:1] in (b"*", b"$"):
            return SeqKey(SeqSet.parse(raw, allow_saved=cur.searchres))
        word = raw.upper().decode("ascii", "replace")
        if word == "ALL":
            return ALL
        if word in _FLAG_KEYS:
            flag, present = _FLAG_KEYS[word]
            return HasFlag(flag) if present else Not(HasFlag(flag))
        if word == "NEW":
            return And((HasFlag("\\Recent"), Not(HasFlag("\\Seen"))))
        if word == "OLD":
            return Not(HasFlag("\\Recent"))
        cur.sp()
        if word in _HEADER_KEYS:
            return Header(word, self.text())
        if word in ("BODY", "TEXT"):
            return Text(word, self.text())
        if word in _DATE_KEYS:
            op, sent = _DATE_KEYS[word]
            return DateKey(op, cur.date(), sent)
        if word in ("LARGER", "SMALLER"):
            return SizeKey(word, cur.number("size"))
        if word in ("KEYWORD", "UNKEYWORD"):
            kw = cur.raw_atom("keyword")
            if not is_atom(kw):
                raise BadSyntax("Invalid keyword.")
            flag = canonical_flag(kw) if kw[:1] == b"\\" else kw.decode("ascii")
            return HasFlag(flag) if word == "KEYWORD" else Not(HasFlag(flag))
        if word == "HEADER":
            # any astring, as Courier: a name no header has just matches nothing
            name = cur.astring("header field name")
            cur.sp()
            return Header(name.decode("latin-1").upper(), self.text())
        if word == "UID":
            return UidKey(cur.seqset("UID set"))
        if word == "NOT":
            return Not(self.key(depth + 1))
        if word == "OR":
            left = self.key(depth + 1)
            cur.sp()
            return Or(left, self.key(depth + 1))
        raise BadSyntax("Unknown search key.")


def parse_charset_prefix(cur: Cursor) -> str | None:
    """``[CHARSET SP astring SP]`` at the start of SEARCH arguments."""
    t = cur.peek()
    if t is not None and t[0] == Tok.ATOM and t[1].upper() == b"CHARSET":  # type: ignore[union-attr]
        cur.pos += 1
        cur.sp()
        name = cur.astring("charset").decode("ascii", "replace")
        cur.sp()
        return check_charset(name)
    return None


def parse_search(cur: Cursor) -> SearchProgram:
    """Parse ``[CHARSET SP astring SP] search-key *(SP search-key)`` to the end."""
    charset = parse_charset_prefix(cur)
    return SearchProgram(_Parser(cur, charset).keys_until_end(), charset)


def parse_search_keys(cur: Cursor, charset: str) -> SearchKey:
    """The keys after SORT's or THREAD's mandatory charset."""
    return _Parser(cur, check_charset(charset)).keys_until_end()
