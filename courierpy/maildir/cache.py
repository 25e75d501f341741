"""The per-folder metadata cache: what FETCH and SEARCH need, without the messages.

A Maildir message never changes once delivered (flags change its *name*, not
its bytes), so what IMAP derives from its bytes can be kept: the wire forms
of ENVELOPE, BODYSTRUCTURE and BODY, RFC822.SIZE, the part tree with offsets
(to serve ``BODY[section]`` by seeking), and the decoded header fields that
SEARCH looks at.  With the cache warm, ``FETCH 1:* (ENVELOPE BODYSTRUCTURE)``
or ``SEARCH FROM x`` opens no message file.

The cache is never the only copy of anything: entries are keyed by the
message's basename (the part before ``:2,``, unchanged by flag renames);
delete the file and it is rebuilt from the messages.

When an entry is trusted (the validation rule).  A delivered Maildir file is
never rewritten: only its name's flags change, and a message that changes is
a new file.  So an entry is trusted, without a ``stat``, when

* its basename (the unique part of the name, with ``,S=``) is the message's,
* the folder scan's directory listing (``DirEntry.inode()``, no system call)
  gives the file the inode number the entry recorded, and
* the name's ``,S=`` was the file's size when the entry was recorded (else
  the entry records inode 0, never matched).

Otherwise the file is ``stat``-ed and the entry trusted while its size and
mtime match (the entry then records the inode, e.g. after the folder was
copied); else the message is parsed again.  A file replaced under the same
name (written elsewhere and renamed over it, or deleted and stored again) is
in practice a new inode, so it is parsed again.  What this rule gives up: a
file
rewritten *in place* (or stored again under the same name and ``,S=`` and
given the freed inode number back) keeps its cached ENVELOPE, BODYSTRUCTURE
and header SEARCH data, and a ``touch`` does not change the
INTERNALDATE of a message already cached (IMAP's INTERNALDATE never changes
anyway); whatever reads the file itself (``BODY[...]``, TEXT SEARCH) checks
the entry against the file's actual size first and reparses on a mismatch.
Once trusted, an entry is not checked again in the session.

File ``<folder>/courierpy.cache``, one line per message after the first::

    courierpy-cache 4 <crc32>\\n
    <basename>\\t<inode>\\t<size>\\t<mtime_ns>\\t<RFC822.SIZE>\\t
        <ENVELOPE>\\t<BODYSTRUCTURE>\\t<BODY>\\t<search JSON>\\t<tree JSON>\\t
        <sort JSON>\\n

The CRC (hex) covers everything after the first line.  The three wire
strings are stored as sent (base64 after a ``\\x01`` in the rare case one
holds a tab or line break); the search JSON is ``[{field: [values]},
[dates]]``; the tree JSON is :meth:`courierpy.mime.tree.Part.to_json` and is
decoded only when a section is fetched; the sort JSON holds the raw header
values SORT and THREAD read (:func:`sort_fields`).  Loading the file is one read, one
CRC and one split into lines; an entry's record is decoded only when its
message is asked for.  A wrong first line (another version included), a bad
CRC, a malformed line or JSON that does not have the expected shape discards
the file's entries (logged); they are then rebuilt.
:meth:`MetadataCache.save` writes a temporary file and renames it over the
old one, so readers never see half a file; two sessions saving at once
simply race, the last rename wins (it is only a cache).  Entries of
messages no longer in the folder are dropped on save.  A full disk or a
read-only folder is logged and otherwise ignored.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import zlib
from pathlib import Path
from typing import BinaryIO

from courierpy.errors import CourierError
from courierpy.maildir import names
from courierpy.mime.envelope import parse_address_list
from courierpy.mime.headers import decode_date, split_fields
from courierpy.mime.imapwire import message_wire, open_message
from courierpy.mime.tree import Part

__all__ = [
    "CACHE_NAME",
    "ADDRESS_FIELDS",
    "SEARCH_FIELDS",
    "decode_text",
    "CacheCorrupt",
    "MessageMeta",
    "MetadataCache",
    "locate",
]

log = logging.getLogger(__name__)

CACHE_NAME = "courierpy.cache"
_MAGIC = b"courierpy-cache 4 "

#: Header fields kept decoded for SEARCH (lower case).  ``HEADER <other> x``
#: reads the message's header block instead.
SEARCH_FIELDS = (
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "reply-to",
    "sender",
)
_WANTED = frozenset(SEARCH_FIELDS)
#: Of those, the address fields (matched in re-rendered form).
ADDRESS_FIELDS = frozenset({"from", "to", "cc", "bcc", "reply-to", "sender"})


class CacheCorrupt(CourierError):
    """The cache file is not what we write; it is discarded."""


class MessageMeta:
    """What a message's bytes give FETCH and SEARCH (immutable in practice).

    *headers* maps each of :data:`SEARCH_FIELDS` the message (or one of its
    parts or attached messages) has to its values, unfolded and RFC 2047-decoded; *dates*
    are its readable Date: fields (same scope) as POSIX times.  :meth:`tree` rebuilds the
    part tree from its JSON on first use.  An entry read from the cache file
    splits out what FETCH needs (sizes, mtime, inode, ENVELOPE, BODYSTRUCTURE,
    BODY); its JSON fields are split when first asked for.
    """

    __slots__ = ("size", "mtime_ns", "rfc822_size", "envelope", "ino", "norm", "_bs", "_bd",
                 "_headers", "_dates", "_tree_json", "_tree", "_search_json", "_sort_json",
                 "_json")

    def __init__(self, size: int, mtime_ns: int, rfc822_size: int, envelope: bytes,
                 bodystructure: bytes, body: bytes,
                 headers: dict[str, tuple[str, ...]] | None = None,
                 dates: tuple[float, ...] | None = None, tree_json: str | bytes = "", *,
                 search_json: bytes = b"", sort_json: bytes = b"{}", ino: int = 0) -> None:
        self.size = size  #: size of the stored file
        self.mtime_ns = mtime_ns
        self.rfc822_size = rfc822_size
        self.envelope = envelope
        #: inode number of the parsed file (0: unknown)
        self.ino = ino
        #: SEARCH's normalized header values (field → values), filled as searched
        self.norm: dict[str, tuple[str, ...]] | None = None
        self._bs = bodystructure
        self._bd = body
        self._headers = headers
        self._dates = dates
        self._tree_json = tree_json
        self._tree: Part | None = None
        self._search_json = search_json
        self._sort_json = sort_json
        #: the three JSON fields of a plain cache line, not yet split
        self._json: bytes | None = None

    def _split_json(self) -> None:
        assert self._json is not None
        # three plain fields (counted by from_line)
        self._search_json, self._tree_json, self._sort_json = self._json.split(b"\t")
        self._json = None

    @property
    def bodystructure(self) -> bytes:
        return self._bs

    @property
    def body(self) -> bytes:
        return self._bd

    @property
    def search_json(self) -> bytes:
        """The search data as stored (b"" for an entry parsed in this session)."""
        if self._json is not None:
            self._split_json()
        return self._search_json

    @property
    def tree_json(self) -> str | bytes:
        if self._json is not None:
            self._split_json()
        return self._tree_json

    @property
    def sort_json(self) -> bytes:
        """JSON of :func:`sort_fields` (decoded by :meth:`sort_headers`)."""
        if self._json is not None:
            self._split_json()
        return self._sort_json

    @property
    def headers(self) -> dict[str, tuple[str, ...]]:
        if self._headers is None:
            self._decode_search()
        return self._headers  # type: ignore[return-value]

    @property
    def dates(self) -> tuple[float, ...]:
        if self._dates is None:
            self._decode_search()
        return self._dates  # type: ignore[return-value]

    def _decode_search(self) -> None:
        """Decode the search JSON of a loaded entry; :class:`CacheCorrupt` if bad."""
        try:
            obj = json.loads(self.search_json.decode("ascii"))
        except (ValueError, UnicodeError) as e:
            raise CacheCorrupt(f"bad search data: {e}") from None
        if type(obj) is not list or len(obj) != 2:
            raise CacheCorrupt("entry search data is not a 2-list")
        headers, dates = obj
        if type(headers) is not dict or type(dates) is not list:
            raise CacheCorrupt("entry search data has wrong member types")
        for d in dates:
            if type(d) is not float and type(d) is not int:
                raise CacheCorrupt("entry search data has a bad date")
        out: dict[str, tuple[str, ...]] = {}
        for k, v in headers.items():  # plain loops: twice as fast as all(...)
            if type(v) is not list:
                raise CacheCorrupt("entry search data has bad header values")
            for x in v:
                if type(x) is not str:
                    raise CacheCorrupt("entry search data has bad header values")
            out[k] = tuple(v)
        self._headers = out
        self._dates = tuple(dates)

    def sort_headers(self) -> dict[str, str]:
        """:func:`sort_fields` as recorded; :class:`CacheCorrupt` if malformed."""
        try:
            obj = json.loads(self.sort_json)
        except (ValueError, UnicodeError) as e:
            raise CacheCorrupt(f"bad sort data: {e}") from None
        if type(obj) is not dict or not all(
                type(k) is str and type(v) is str for k, v in obj.items()):
            raise CacheCorrupt("entry sort data is not a {str: str} object")
        return obj

    def tree(self) -> Part:
        if self._tree is None:
            self._tree = Part.from_json(json.loads(self.tree_json))
        return self._tree

    # -- (de)serialization ------------------------------------------------------

    def record(self) -> bytes:
        """The cache line's fields after the basename (tab-separated)."""
        if self._headers is None and self.search_json:
            search_json = self.search_json.decode("ascii")  # as loaded, never decoded
        else:
            search_json = json.dumps([self.headers, list(self.dates)], separators=(",", ":"))
        return b"\t".join((
            b"%d\t%d\t%d\t%d" % (self.ino, self.size, self.mtime_ns, self.rfc822_size),
            _field(self.envelope),
            _field(self.bodystructure),
            _field(self.body),
            search_json.encode("ascii"),
            tj if type(tj := self.tree_json) is bytes else tj.encode("ascii"),
            self.sort_json,
        ))

    @classmethod
    def from_record(cls, record: bytes) -> MessageMeta:
        """Inverse of :meth:`record`; raises :class:`CacheCorrupt` on anything else
        (the search and sort data are checked when first used, the tree when
        decoded)."""
        return cls.from_line(b"\t" + record)

    @classmethod
    def from_line(cls, line: bytes, *, plain: bool = False) -> MessageMeta:
        """:meth:`from_record` of a cache file line (its basename ignored).

        *plain*: the file was checked as a whole (no CR and no base64 field
        anywhere): the fields up to BODY are split out, the three JSON fields
        when first asked for."""
        try:
            if plain:
                _, ino, size, mtime, rfc822, env, bs, bd, rest = line.split(b"\t", 8)
                if rest.count(b"\t") != 2:
                    raise CacheCorrupt("wrong number of fields")
                meta = cls(int(size), int(mtime), int(rfc822), env, bs, bd, ino=int(ino))
                meta._json = rest
                return meta
            _, ino, size, mtime, rfc822, env, bs, bd, search_json, tree, sort_json = (
                line.split(b"\t"))
            return cls(int(size), int(mtime), int(rfc822), _unfield(env), _unfield(bs),
                       _unfield(bd), None, None, tree, search_json=search_json,
                       sort_json=sort_json, ino=int(ino))
        except (ValueError, UnicodeError, binascii.Error) as e:
            raise CacheCorrupt(f"bad entry: {e}") from None

    @classmethod
    def parse(cls, data, size: int, mtime_ns: int, ino: int = 0) -> MessageMeta:
        """Parse the stored message *data* (bytes or mmap)."""
        wire = message_wire(data)
        headers, dates = search_headers(data, wire.tree)
        tree_json = json.dumps(wire.tree.to_json(envelopes=False), separators=(",", ":"))
        meta = cls(
            size,
            mtime_ns,
            wire.rfc822_size,
            wire.envelope,
            wire.bodystructure,
            wire.body,
            headers,
            dates,
            tree_json,
            ino=ino,
            sort_json=json.dumps(sort_fields(data, wire.tree), separators=(",", ":")).encode(
                "ascii"),
        )
        meta._tree = wire.tree
        return meta


_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"(\?=)[ \t]+(?==\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)")


def _decode_word(m: re.Match) -> str:
    charset, enc, text = m.group(1).split("*", 1)[0], m.group(2), m.group(3)
    try:
        if enc in "bB":
            raw = base64.b64decode(text + "=" * (-len(text) % 4))
        else:
            raw = re.sub(
                rb"=([0-9A-Fa-f]{2})",
                lambda h: bytes([int(h.group(1), 16)]),
                text.replace("_", " ").encode("latin-1"),
            )
        return raw.decode(charset, "replace")
    except (LookupError, ValueError, binascii.Error):
        return m.group(0)


def decode_text(value: str) -> str:
    """Header text (latin-1 code points) as SEARCH reads it, like Courier: RFC
    2047 words decoded wherever they stand (also inside a word: ``plain=?..?=``),
    white space between adjacent words dropped, other 8-bit bytes read as
    UTF-8."""
    if not value.isascii():
        value = value.encode("latin-1", "replace").decode("utf-8", "replace")
    if "=?" not in value:
        return value
    return _ENCODED_WORD.sub(_decode_word, _BETWEEN_WORDS.sub(r"\1", value))


def message_headers(tree: Part):
    """The header blocks SEARCH looks at: every entity's, the message's first,
    then each part's and each attached message's (Courier's header keys match
    in any of them)."""
    return list(tree.walk())


def address_text(value: str | list) -> str:
    """An address field as Courier's SEARCH sees it: the addresses re-rendered
    (``Name <box@host>``, groups as ``name: ...;``), comments dropped, names
    RFC 2047-decoded and without quotes, source routes kept.  *value* is the field's text or its
    already parsed address list."""
    out = ""
    sep = ""
    addrs = parse_address_list(value) if isinstance(value, str) else value
    for name, route, box, host in addrs:
        if box is None:  # group end
            out += ";"
            sep = ", "
            continue
        if host is None:  # group start
            out += sep + box + ":"
            sep = " "
            continue
        addr = f"{box}@{host}" if host else box
        if route:  # a source route stays, as in Courier's mailbox member
            addr = f"{route}:{addr}"
        out += sep + (decode_text(name).replace('"', "") + f" <{addr}>" if name else addr)
        sep = ", "
    return out


def search_headers(data, tree: Part) -> tuple[dict[str, tuple[str, ...]], tuple[float, ...]]:
    """(:data:`SEARCH_FIELDS` → decoded values, the Date: fields as POSIX times)
    over the message and the messages attached to it."""
    found: dict[str, list[str]] = {}
    dates: list[float] = []
    for part in message_headers(tree):
        fields = [f for f in split_fields(data, part.header_start, part.header_end)
                  if f.colon >= 0 and f.name in _WANTED]
        env = part.envelope
        if env is not None:
            names = [f.name for f in fields]
            # the envelope has parsed these already (one field: same text)
            parsed = {n: v for n, v in (("from", env.from_), ("to", env.to), ("cc", env.cc),
                                        ("bcc", env.bcc)) if names.count(n) == 1}
        else:
            parsed = {}
        for f in fields:
            name = f.name
            if name in parsed:
                found.setdefault(name, []).append(address_text(list(parsed[name])))
                continue
            v = f.value(data)
            if name == "date":
                dt = decode_date(v)
                if dt is not None:
                    try:
                        dates.append(dt.timestamp())
                    except (OverflowError, OSError, ValueError):
                        pass
            text = address_text(v) if name in ADDRESS_FIELDS else decode_text(v)
            found.setdefault(name, []).append(text)
    return {k: tuple(v) for k, v in found.items()}, tuple(dates)


#: The header fields SORT and THREAD read (lower case).
SORT_FIELDS = frozenset({"subject", "from", "to", "cc", "date", "message-id", "in-reply-to",
                         "references"})
#: a header line as Python's email parser takes it (``email.feedparser.headerRE``)
_HEADER_NAME = re.compile(rb"[\041-\071\073-\176]*\Z")


def sort_fields(data, tree: Part) -> dict[str, str]:
    """The first value of each of :data:`SORT_FIELDS` in the message's own header,
    as ``email`` (policy compat32) reads it from the header block: ASCII with
    surrogate escapes, folding kept, leading blanks and the last line break
    stripped; reading stops at the first line that is not a header field
    (a leading ``From `` line is skipped), as that parser's does."""
    out: dict[str, str] = {}
    for i, f in enumerate(split_fields(data, tree.header_start, tree.header_end)):
        if f.colon < 0:
            if i == 0 and data[f.start : f.start + 5] == b"From ":
                continue  # a Unix From line
            if data[f.start : f.start + 1] in (b" ", b"\t"):
                continue  # a continuation line before any field: ignored
            break
        if not _HEADER_NAME.match(bytes(data[f.start : f.colon])):
            if i == 0 and data[f.start : f.start + 5] == b"From ":
                continue
            break
        if f.name in SORT_FIELDS and f.name not in out:
            raw = bytes(data[f.colon + 1 : f.end]).decode("ascii", "surrogateescape")
            out[f.name] = raw.lstrip(" \t").rstrip("\r\n")
    return out


def locate(path: Path, basename: str) -> Path | None:
    """*path* if it exists, else the message *basename* under its new name
    (another session renamed it to change flags, or moved it from new/ to
    cur/), else None (expunged)."""
    path = Path(path)
    if path.exists():
        return path
    folder = path.parent.parent
    for sub in ("cur", "new"):
        try:
            with os.scandir(folder / sub) as it:
                for e in it:
                    if names.basename(e.name) == basename:
                        return Path(e.path)
        except FileNotFoundError:
            continue
    return None


class MetadataCache:
    """The metadata cache of one folder (file ``<folder>/courierpy.cache``).

    The file is read once, when first needed, checked (CRC) and split into
    lines (basename → line); an entry is decoded when its message is first
    asked for.  At most :attr:`MAX_DECODED` decoded entries are kept (the
    first decoded dropped first).  Entries parsed in this session are kept as
    records until :meth:`save`.

    *inodes* (basename → inode number, from the folder scan's directory
    listing, see :class:`courierpy.maildir.store.Listing`) lets :meth:`get`
    trust an entry without a ``stat`` (the rule is in the module docstring);
    the owner may replace the attribute after each scan.
    """

    #: Decoded entries kept in memory (a repeated FETCH 1:* of up to this many
    #: messages decodes nothing again).
    MAX_DECODED = 20000

    def __init__(self, folder: Path, *, inodes: dict[str, int] | None = None) -> None:
        self.folder = Path(folder)
        self.path = self.folder / CACHE_NAME
        #: basename → inode number as the last scan listed it
        self.inodes: dict[str, int] = inodes if inodes is not None else {}
        #: basename → its line in the loaded file (CRC not yet checked)
        self._index: dict[str, bytes] | None = None
        #: the loaded file has only plain lines (see MessageMeta.from_line)
        self._plain = False
        self._new: dict[str, bytes] = {}  # records parsed in this session, not saved yet
        self._decoded: dict[str, MessageMeta] = {}
        self._dirty = False
        #: basenames checked against their file in this session: a Maildir
        #: message's bytes never change, so once is enough
        self._valid: set[str] = set()
        #: Counters for tests and benchmarks: entries parsed from messages, loaded
        #: from file, and checked with a stat (not trusted from the listing).
        self.parsed = 0
        self.loaded = 0
        self.statted = 0

    # -- loading --------------------------------------------------------------------

    def _load(self) -> dict[str, bytes]:
        if self._index is not None:
            return self._index
        self._index = {}
        try:
            with open(self.path, "rb") as f:
                self._index, self._plain = _index(f)
        except FileNotFoundError:
            return self._index
        except OSError as e:
            log.warning("metadata cache %s unreadable: %s", self.path, e)
            self._dirty = True
            return self._index
        except CacheCorrupt as e:
            self._discard(str(e))
        return self._index

    def _discard(self, why: str) -> None:
        """Drop the file's entries; those already decoded stay (they came from a
        file whose CRC was right) and are written back by :meth:`save`."""
        log.warning("metadata cache %s discarded: %s", self.path, why)
        for base, meta in self._decoded.items():
            if base not in self._new:
                self._new[base] = meta.record()
        self._index = {}
        self._dirty = True

    def loaded_or_exists(self) -> bool:
        """Whether there are entries to trust: the file was read or exists now."""
        return bool(self._index) or bool(self._new) or os.path.exists(self.path)

    def close(self) -> None:
        """Drop what was read of the cache file (the object stays usable)."""
        self._index = None

    def _lookup(self, basename: str) -> MessageMeta | None:
        meta = self._decoded.get(basename)
        if meta is not None:
            return meta
        return self._decode(basename)

    def _decode(self, basename: str) -> MessageMeta | None:
        """The entry of *basename* (not decoded yet): parsed this session, or
        from the file (None if neither has it)."""
        rec = self._new.get(basename)  # parsed this session
        try:
            if rec is not None:
                meta = MessageMeta.from_record(rec)
            else:
                index = self._index if self._index is not None else self._load()
                line = index.get(basename)
                if line is None:
                    return None
                meta = MessageMeta.from_line(line, plain=self._plain)
                self.loaded += 1
        except CacheCorrupt as e:
            self._discard(f"entry for {basename!r}: {e}")
            return None
        decoded = self._decoded
        decoded[basename] = meta
        if len(decoded) > self.MAX_DECODED:
            del decoded[next(iter(decoded))]  # the one decoded first
        return meta

    def _remember(self, basename: str, meta: MessageMeta) -> None:
        decoded = self._decoded
        decoded[basename] = meta
        if len(decoded) > self.MAX_DECODED:
            del decoded[next(iter(decoded))]  # the one decoded first

    def _forget(self, basename: str) -> None:
        self._decoded.pop(basename, None)
        self._new.pop(basename, None)
        if self._index is not None:
            self._index.pop(basename, None)
        self._valid.discard(basename)
        self._dirty = True

    # -- the interface --------------------------------------------------------------

    def known(self, basename: str) -> MessageMeta | None:
        """The metadata of *basename* if it was already checked against its file in
        this session (no I/O at all), else None: then use :meth:`get`."""
        if basename in self._valid:
            return self._decoded.get(basename)
        return None

    def get(self, path: Path | str, basename: str) -> MessageMeta:
        """The metadata of message *basename* stored at *path*.

        A cached entry is used without a ``stat`` when the folder listing gave
        the file the inode the entry records and the name's ``,S=`` is the
        size the entry records; else while the file's size and mtime match
        (the entry then takes the file's inode); otherwise (or when there is
        none) the message is parsed and the entry replaced.  If *path* is
        gone, the message is looked up by its basename (a flag rename
        elsewhere); if it is gone for good, a still-cached entry is returned
        (the bytes cannot have changed), else
        :class:`courierpy.maildir.store.MessageGone` is raised.
        """
        meta = self._decoded.get(basename)
        if meta is None:
            meta = self._decode(basename)
        elif basename in self._valid:
            return meta
        if meta is not None and meta.ino and self.inodes.get(basename) == meta.ino:
            self._valid.add(basename)  # see _trusted_ino: ,S= was checked then
            return meta
        return self._check(path, basename, meta)

    def verify(self, path: Path | str, basename: str) -> MessageMeta:
        """:meth:`get`, the entry checked with a ``stat`` against the file at *path*
        whatever this session knows (before reading the file by the entry's offsets)."""
        meta = self._lookup(basename)
        return self._check(path, basename, meta)

    def _check(self, path: Path | str, basename: str, meta: MessageMeta | None) -> MessageMeta:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            found = locate(Path(path), basename)
            if found is None:
                if meta is not None:
                    return meta
                from courierpy.maildir.store import MessageGone

                raise MessageGone(f"message {basename} was expunged") from None
            path = found
            st = os.stat(path)
        self.statted += 1
        if meta is not None and meta.size == st.st_size and meta.mtime_ns == st.st_mtime_ns:
            ino = _trusted_ino(basename, st)
            if meta.ino != ino and "\t" not in basename and "\n" not in basename:
                meta.ino = ino  # a copied folder, say: recorded for the next session
                self._new[basename] = meta.record()
                self._dirty = True
            self._valid.add(basename)
            return meta
        with open_message(path) as buf:
            meta = MessageMeta.parse(buf, st.st_size, st.st_mtime_ns, _trusted_ino(basename, st))
        self.parsed += 1
        self._decoded.pop(basename, None)
        if "\t" not in basename and "\n" not in basename:
            self._new[basename] = meta.record()
            meta._tree = None  # kept as JSON: trees are big, sections are rare
            self._remember(basename, meta)
            self._valid.add(basename)
            self._dirty = True
        return meta

    def check_size(self, basename: str, size: int) -> bool:
        """Whether the entry of *basename* (if any) records *size*, the size of the
        file as just read; if not, the entry is dropped (reparsed when next asked)."""
        meta = self._lookup(basename)
        if meta is None or meta.size == size:
            return True
        log.warning("metadata cache %s: %r changed size under the same name; reparsing",
                    self.path, basename)
        self._forget(basename)
        return False

    def tree(self, path: Path | str, basename: str, *, verify: bool = False) -> Part:
        """The part tree of the message (see :meth:`get`, or :meth:`verify` if
        *verify*); an entry whose tree does not decode is discarded and the
        message parsed again."""
        meta = self.verify(path, basename) if verify else self.get(path, basename)
        try:
            return meta.tree()
        except (ValueError, TypeError, IndexError, KeyError, AttributeError) as e:
            log.warning("metadata cache %s: bad tree for %r (%s); reparsing",
                        self.path, basename, e)
            self._forget(basename)
            return self.get(path, basename).tree()

    def sort_data(self, path: Path | str, basename: str) -> dict[str, str]:
        """The message's :func:`sort_fields` (see :meth:`get`); an entry whose sort
        data does not decode is discarded and the message parsed again."""
        meta = self.get(path, basename)
        try:
            return meta.sort_headers()
        except CacheCorrupt as e:
            log.warning("metadata cache %s: %r: %s; reparsing", self.path, basename, e)
            self._forget(basename)
            return self.get(path, basename).sort_headers()

    def search_data(self, path: Path | str, basename: str) -> MessageMeta:
        """:meth:`get`, with the header fields and dates for SEARCH decoded; an
        entry whose search data does not decode is discarded and reparsed."""
        meta = self.get(path, basename)
        try:
            meta.headers  # noqa: B018 - decodes and checks
            return meta
        except CacheCorrupt as e:
            log.warning("metadata cache %s: %r: %s; reparsing", self.path, basename, e)
            self._forget(basename)
            return self.get(path, basename)

    def save(self) -> None:
        """Write the cache if anything changed (tmp file + rename); entries of
        messages no longer in the folder are dropped.  Never raises OSError."""
        if not self._dirty:
            return
        present: set[str] = set()
        for sub in ("cur", "new"):
            try:
                with os.scandir(self.folder / sub) as it:
                    for e in it:
                        n = e.name
                        cut = n.rfind(":")
                        present.add(n if cut < 0 else n[:cut])
            except FileNotFoundError:
                continue
            except OSError as e:
                log.warning("metadata cache %s not saved: %s", self.path, e)
                return
        lines = [line for base, line in (self._index or {}).items()
                 if base in present and base not in self._new]
        lines.extend(base.encode("utf-8", "surrogateescape") + b"\t" + rec
                     for base, rec in self._new.items() if base in present)
        lines.append(b"")
        body = b"\n".join(lines)
        lines = [_MAGIC, b"%08x\n" % zlib.crc32(body), body]
        tmp = self.folder / f"{CACHE_NAME}.tmp.{os.getpid()}.{os.urandom(6).hex()}"
        try:
            # O_EXCL|O_NOFOLLOW: never write through a name someone planted
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
        except OSError as e:
            log.warning("metadata cache %s not saved: %s", self.path, e)
            return
        try:
            with open(fd, "wb") as f:
                f.write(b"".join(lines))
            os.replace(tmp, self.path)
        except OSError as e:
            log.warning("metadata cache %s not saved: %s", self.path, e)
            try:
                tmp.unlink()
            except OSError:
                pass
            return
        self._dirty = False
        self._new.clear()
        self.close()  # the next miss reads the file just written


def _trusted_ino(basename: str, st: os.stat_result) -> int:
    """The inode number to record for the file *st* of message *basename*: 0
    (never trusted without a stat) unless the name's ``,S=`` is its size."""
    return st.st_ino if names.size_of(basename) == st.st_size else 0


_SPECIAL = re.compile(rb"[\t\n\r\x01]")


def _field(data: bytes) -> bytes:
    """A wire string as a record field: as is, or base64 after \\x01 when it holds
    a tab, line break or \\x01 (a literal inside BODYSTRUCTURE, say)."""
    if _SPECIAL.search(data):
        return b"\x01" + base64.b64encode(data)
    return data


def _unfield(data: bytes) -> bytes:
    if data[:1] == b"\x01":
        return _check_wire(base64.b64decode(data[1:], validate=True))
    if b"\r" in data:
        raise CacheCorrupt("CR in a plain wire field")
    return data


_LITERAL = re.compile(rb"\{(\d{1,10})\}\r\n")


def _check_wire(data: bytes) -> bytes:
    """*data* if every CR and LF in it belongs to a literal (``{n}\\r\\n`` and its n
    bytes): a cache file written by someone else must not be able to put
    protocol lines into our responses."""
    pos = 0
    while True:
        cr = data.find(b"\r", pos)
        lf = data.find(b"\n", pos)
        nxt = min(x for x in (cr, lf, len(data)) if x >= 0)
        if nxt == len(data):
            return data
        m = _LITERAL.search(data, pos)
        if m is None or m.end() - 2 != nxt:
            raise CacheCorrupt("line break outside a literal in a wire field")
        pos = m.end() + int(m.group(1))
        if pos > len(data):
            raise CacheCorrupt("literal longer than its wire field")


#: the cache file is read in pieces of this size: the lines are the only
#: full copy of it in memory (a first FETCH 1:* touches that much less memory)
_READ_SIZE = 1 << 20


def _index(f: BinaryIO) -> tuple[dict[str, bytes], bool]:
    """basename → line, for every line of the cache file *f*, its CRC checked;
    and whether the lines are plain: no CR or ``\\x01`` (no base64 field)
    anywhere in the file."""
    head = f.readline()
    if not head.startswith(_MAGIC) or not head.endswith(b"\n"):
        raise CacheCorrupt("not a courierpy cache (or another version)")
    crc = 0
    lines: list[bytes] = []
    tail = b""
    plain = True
    while chunk := f.read(_READ_SIZE):
        crc = zlib.crc32(chunk, crc)
        if plain and (b"\r" in chunk or b"\x01" in chunk):
            plain = False
        part = chunk.split(b"\n")
        part[0] = tail + part[0]
        tail = part.pop()
        lines += part
    if tail:
        raise CacheCorrupt("truncated")
    if head[len(_MAGIC) : -1] != b"%08x" % crc:
        raise CacheCorrupt("checksum mismatch (damaged or truncated)")
    try:
        bases = [line[: line.index(b"\t")] for line in lines]
    except ValueError:
        raise CacheCorrupt("malformed line") from None
    keys = b"\n".join(bases).decode("utf-8", "surrogateescape").split("\n")
    return dict(zip(keys, lines, strict=True)), plain
