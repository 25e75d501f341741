"""SEARCH evaluation (RFC 3501 §6.4.4) over the messages of the selected folder.

:func:`search` walks the key tree of :mod:`courierpy.imap.searchkeys` for each
message, loading only what the keys need (``key.needs``): flags, UID,
sequence number and internal date come from the :class:`MessageView`;
RFC822.SIZE, header fields and the Date: of SENT* from the folder's metadata
cache (no message file opened when it is warm); only BODY and TEXT open the
message.  Keys are tested cheapest first inside AND/OR, so a flag test can
spare a body scan.

Matching follows what the real Courier imapd does (checked by
tests/oracle/test_fetch_search_oracle.py):

- Strings match as case-insensitive substrings after both sides have every
  run of white space (line breaks included) collapsed to one space.
- Header keys look at every header block of the message: its own, each MIME
  part's and each attached message's.  Values are unfolded and RFC
  2047-decoded (raw 8-bit bytes read as UTF-8); address fields are matched
  in re-rendered form (``Name <box@host>``, comments dropped).
  ``HEADER name ""`` matches any message having the field.
- BODY looks at the text parts (``text/*``, also inside attached messages),
  decoded from their transfer encoding (base64, quoted-printable) and from
  their charset to Unicode; other parts, part headers, preambles and
  epilogues are not searched; neither is a part in a charset that cannot be
  converted, and an empty part never matches.  TEXT also looks at the header
  fields (names and values, separately) of every header block.
- SENTBEFORE/SENTON/SENTSINCE compare the day of a Date: field (any header
  block's: one that fits is enough) in the server's local time zone; a message
  without a readable Date: matches none of them.  BEFORE/ON/SINCE use the
  internal date, also in local time.  LARGER/SMALLER compare the stored size
  (LF line ends), not RFC822.SIZE.
- ``*`` in a sequence set is the largest sequence number or UID and ``n:*``
  includes it even when n is larger (RFC 3501 §6.4.8); Courier takes ``*``
  as infinity instead (see docs/differences.md).
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import os
import quopri
import re
import time
from collections.abc import Sequence

from courierpy.imap.fetch import MessageView
from courierpy.imap.fetchatts import FetchNeeds
from courierpy.imap.searchkeys import (
    And,
    DateKey,
    HasFlag,
    Header,
    Not,
    Or,
    SearchKey,
    SeqKey,
    SizeKey,
    Text,
    UidKey,
)
from courierpy.maildir.cache import (
    ADDRESS_FIELDS,
    SEARCH_FIELDS,
    MetadataCache,
    address_text,
    decode_text,
    locate,
    message_headers,
)
from courierpy.mime.headers import HeaderBlock, find_header_end
from courierpy.mime.imapwire import open_message
from courierpy.mime.tree import Part

__all__ = ["normalize", "search"]

#: Cost rank of what a key needs (cheapest first).
_COST = (
    (FetchNeeds.BODY, 4),
    (FetchNeeds.HEADER, 3),
    (FetchNeeds.STRUCTURE, 2),
    (FetchNeeds.SIZE, 2),
)


#: The non-ASCII characters whose lower case contains ASCII (İ → i̇, KELVIN SIGN
#: → k): a header holding one can match an ASCII needle that its JSON (which
#: escapes non-ASCII as ``\\uXXXX``) does not show.  Checked against the
#: running Python's Unicode tables by tests/unit/test_search_prefilter.py.
ASCII_LOWERING = ("\u0130", "\u212a")
_ASCII_LOWERING_JSON = tuple(b"\\u%04x" % ord(c) for c in ASCII_LOWERING)


def normalize(text: str) -> str:
    """Text as SEARCH compares it: white space runs → one space (none at the
    ends), lower case."""
    return " ".join(text.split()).lower()


def _cost(key: SearchKey) -> int:
    needs = key.needs
    for flag, rank in _COST:
        if needs & flag:
            return rank
    return 0


def _local_day(t: float) -> _dt.date:
    tm = time.localtime(t)
    return _dt.date(tm.tm_year, tm.tm_mon, tm.tm_mday)


def _date_match(op: str, day: _dt.date, want: _dt.date) -> bool:
    if op == "BEFORE":
        return day < want
    if op == "ON":
        return day == want
    return day >= want  # SINCE


class _Search:
    """One SEARCH run: the compiled keys and the per-message lazy data."""

    def __init__(self, cache: MetadataCache, max_seq: int, max_uid: int) -> None:
        self.cache = cache
        self.max_seq = max_seq
        self.max_uid = max_uid
        self._ranges: dict[int, list[tuple[int, int]]] = {}
        self._needles: dict[int, str] = {}
        self._quick: dict[int, bytes | None | bool] = {}
        self._order: dict[int, tuple[SearchKey, ...]] = {}
        self.msg: MessageView | None = None
        self._text: tuple[str, list[str]] | None = None  # (headers, bodies)
        self._raw: bytes | None = None  # the message file, once a TEXT/BODY key needs it

    def needle(self, key: Header | Text) -> str:
        got = self._needles.get(id(key))
        if got is None:
            got = self._needles[id(key)] = normalize(key.value)
        return got

    def ranges(self, key: SeqKey | UidKey, largest: int) -> list[tuple[int, int]]:
        got = self._ranges.get(id(key))
        if got is None:
            got = self._ranges[id(key)] = key.seqset.merged(largest)
        return got

    def ordered(self, node: And | Or, keys: tuple[SearchKey, ...]) -> tuple[SearchKey, ...]:
        """*keys* cheapest first (computed once per node)."""
        got = self._order.get(id(node))
        if got is None:
            got = self._order[id(node)] = tuple(sorted(keys, key=_cost))
        return got

    def meta(self):
        assert self.msg is not None
        meta = self.cache.known(self.msg.basename)
        if meta is not None and meta._headers is not None:  # checked and decoded already
            return meta
        return self.cache.search_data(self.msg.path, self.msg.basename)

    # -- evaluation -------------------------------------------------------------

    def match(self, key: SearchKey) -> bool:
        msg = self.msg
        assert msg is not None
        if isinstance(key, HasFlag):
            want = key.flag.lower()
            return any(f.lower() == want for f in msg.flags)
        if isinstance(key, And):
            return all(self.match(k) for k in self.ordered(key, key.keys))
        if isinstance(key, Or):
            a, b = self.ordered(key, (key.left, key.right))
            return self.match(a) or self.match(b)
        if isinstance(key, Not):
            return not self.match(key.key)
        if isinstance(key, SeqKey):
            return _in(self.ranges(key, self.max_seq), msg.seq)
        if isinstance(key, UidKey):
            return _in(self.ranges(key, self.max_uid), msg.uid)
        if isinstance(key, SizeKey):
            # Courier compares the stored size (LF line ends), not RFC822.SIZE
            size = msg.size if msg.size is not None else self.meta().size
            return size > key.size if key.op == "LARGER" else size < key.size
        if isinstance(key, DateKey):
            if key.sent:
                return any(
                    _date_match(key.op, _local_day(t), key.date) for t in self.meta().dates
                )
            return _date_match(key.op, _local_day(msg.internaldate), key.date)
        if isinstance(key, Header):
            return self.header(key)
        if isinstance(key, Text):
            return self.text(key)
        raise TypeError(f"unknown search key {key!r}")  # pragma: no cover

    def header(self, key: Header) -> bool:
        name = key.field.lower()
        needle = self.needle(key)
        if name in SEARCH_FIELDS:
            quick = self.quick(key)
            if quick is not None and self._surely_absent(quick):
                return False
            meta = self.meta()
            norm = meta.norm
            if norm is None:
                norm = meta.norm = {}
            values = norm.get(name)
            if values is None:
                values = norm[name] = tuple(normalize(v) for v in meta.headers.get(name, ()))
            return any(needle in v for v in values)
        values = self._other_header(name)
        if not values:
            return False
        return any(needle in normalize(v) for v in values)

    def quick(self, key: Header) -> bytes | None:
        """The needle as bytes when a plain byte search of an entry's undecoded
        search JSON can rule a message out: printable ASCII without white space,
        quotes or backslashes (JSON writes those characters as themselves)."""
        got = self._quick.get(id(key), False)
        if got is False:
            n = self.needle(key)
            ok = n.isascii() and n.isprintable() and not any(c in n for c in ' "\\')
            got = self._quick[id(key)] = n.encode("ascii") if ok and n else None
        return got  # type: ignore[return-value]

    def _surely_absent(self, needle: bytes) -> bool:
        """True when the message's cached header values cannot contain *needle*,
        decided without decoding its JSON: the entry has no *needle* in it,
        lower-cased, anywhere, and none of the escaped characters whose lower
        case holds ASCII (:data:`ASCII_LOWERING`)."""
        assert self.msg is not None
        meta = self.cache.known(self.msg.basename)
        if meta is None:
            meta = self.cache.get(self.msg.path, self.msg.basename)
        if meta._headers is not None:
            return False
        raw = meta.search_json
        return (bool(raw) and needle not in raw.lower()
                and not any(esc in raw for esc in _ASCII_LOWERING_JSON))

    def _other_header(self, name: str) -> tuple[str, ...]:
        assert self.msg is not None
        tree = self.cache.tree(self.msg.path, self.msg.basename, verify=True)
        path = locate(self.msg.path, self.msg.basename)
        if path is None:
            return ()
        parts = message_headers(tree)
        if len(parts) == 1:  # the usual case: read just the header block
            with open(path, "rb") as f:
                head = f.read(tree.header_end)
            return tuple(decode_text(v) for v in HeaderBlock(head, 0, len(head)).get_all(name))
        out: list[str] = []
        with open_message(path) as buf:
            for part in parts:
                hb = HeaderBlock(buf, part.header_start, part.end)
                out.extend(decode_text(v) for v in hb.get_all(name))
        return tuple(out)

    def text(self, key: Text) -> bool:
        needle = self.needle(key)
        if self._text is None:
            if self._raw is None:
                self._raw = self._read()
            raw = self._raw
            if raw is None:
                return False
            if needle and needle.isascii() and " " not in needle:
                # Below its own header nothing of the message is encoded: the
                # needle must be in those bytes (lower-cased) or in the decoded
                # header to be anywhere in its text.
                head_end, body_start, _ = find_header_end(raw)
                low = _plain(raw, body_start)
                if low is not None and needle.encode("ascii") not in low:
                    if key.where == "BODY":
                        return False
                    head: list[str] = []
                    _header_pieces(raw, 0, head_end, head)
                    if needle not in normalize("\x00".join(head)):
                        return False
            self._text = self._load_text(raw)
        headers, bodies = self._text
        if any(needle in b for b in bodies if b):
            return True
        return key.where == "TEXT" and bool(headers) and needle in headers

    def _read(self) -> bytes | None:
        assert self.msg is not None
        try:
            return _slurp(self.msg.path)
        except FileNotFoundError:
            pass
        path = locate(self.msg.path, self.msg.basename)
        if path is None:
            return None
        with open(path, "rb") as f:
            return f.read()

    def _load_text(self, raw: bytes) -> tuple[str, list[str]]:
        assert self.msg is not None
        # the file as read must be the one the entry describes (same size)
        self.cache.check_size(self.msg.basename, len(raw))
        tree = self.cache.tree(self.msg.path, self.msg.basename)
        headers: list[str] = []
        bodies: list[str] = []
        _collect(raw, tree, headers, bodies)
        # one string for all header names and values: NUL never occurs in a
        # search string, so a match cannot span two of them
        return normalize("\x00".join(headers)), bodies


def _slurp(path) -> bytes:
    """The whole file (plain descriptor reads: TEXT searches read every message)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, os.fstat(fd).st_size + 1)
        while more := os.read(fd, 65536):
            data += more
        return data
    finally:
        os.close(fd)


def _plain(raw: bytes, body_start: int) -> bytes | None:
    """The message's bytes after its header, lower-cased, when none of them is
    encoded for SEARCH: no base64 or quoted-printable anywhere (a header names
    it), pure ASCII (so lower-casing bytes is lower-casing text) and no RFC
    2047 words below the header; else None."""
    low = raw.lower()
    if b"base64" in low or b"quoted-printable" in low:
        return None
    body = low[body_start:]
    if not body.isascii() or b"=?" in body:
        return None
    return body


def _in(ranges: list[tuple[int, int]], n: int) -> bool:
    for lo, hi in ranges:
        if n < lo:
            return False
        if n <= hi:
            return True
    return False


_UNFOLD = re.compile(r"\r?\n(?=[ \t])")


def _header_pieces(data, start: int, end: int, out: list[str]) -> None:
    """Names and decoded values of the header fields in ``data[start:end]``."""
    text = bytes(data[start:end]).decode("latin-1")
    for line in _UNFOLD.sub("", text).split("\n"):
        name, colon, value = line.partition(":")
        if colon:
            out.append(name)
            value = value.strip(" \t\r")
            if name.strip().lower() in ADDRESS_FIELDS:
                out.append(address_text(value))  # comments are not searched
            else:
                out.append(decode_text(value))


def _collect(data, part: Part, headers: list[str], bodies: list[str]) -> None:
    """The searchable text of *part*: header names and decoded values of every
    header block into *headers*, decoded text bodies (normalized) into *bodies*."""
    if part.header_end > part.header_start:
        _header_pieces(data, part.header_start, part.header_end, headers)
    if part.children:
        for c in part.children:
            _collect(data, c, headers, bodies)
        return
    if part.message is not None:
        _collect(data, part.message, headers, bodies)
        return
    if part.type != "text":
        return
    raw = bytes(data[part.body_start : part.end])
    bodies.append(normalize(_decode_body(raw, part.encoding, part.param("charset"))))


def _decode_body(raw: bytes, encoding: str, charset: str | None) -> str:
    enc = (encoding or "").lower()
    if enc == "base64":
        try:
            raw = base64.b64decode(re.sub(rb"[^A-Za-z0-9+/=]", b"", raw) + b"==")
        except (binascii.Error, ValueError):
            pass
    elif enc == "quoted-printable":
        raw = quopri.decodestring(raw)
    name = (charset or "").strip().lower()
    if name and name not in ("us-ascii", "utf-8", "utf8"):
        try:
            return raw.decode(name, "replace")
        except LookupError:
            return ""  # Courier cannot convert it: the part is not searched
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def search(
    msgs: Sequence[MessageView],
    key: SearchKey,
    cache: MetadataCache,
    *,
    charset: str = "UTF-8",
    max_uid: int,
    max_seq: int,
) -> list[MessageView]:
    """The messages of *msgs* matching *key*, in the order given.

    The key's strings are already text (the parser decoded them from
    *charset*), so *charset* only documents the request.  *max_seq* and
    *max_uid* give ``*`` its value.
    """
    del charset  # strings arrive decoded (courierpy.imap.searchkeys)
    run = _Search(cache, max_seq, max_uid)
    out = []
    for msg in msgs:
        run.msg = msg
        run._text = None
        run._raw = None
        if run.match(key):
            out.append(msg)
    return out

