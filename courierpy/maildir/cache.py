"""The per-folder metadata cache: what FETCH and SEARCH need, without the messages.

A Maildir message never changes once delivered (flags change its *name*, not
its bytes), so what IMAP derives from its bytes can be kept: the wire forms
of ENVELOPE, BODYSTRUCTURE and BODY, RFC822.SIZE, the part tree with offsets
(to serve ``BODY[section]`` by seeking), and the decoded header fields that
SEARCH looks at.  With the cache warm, ``FETCH 1:* (ENVELOPE BODYSTRUCTURE)``
or ``SEARCH FROM x`` opens no message file.

The cache is never the only copy of anything: entries are keyed by the
message's basename (the part before ``:2,``, unchanged by flag renames) and
trusted only while the file's size and mtime match what was recorded; delete
the file and it is rebuilt from the messages.

File ``<folder>/courierpy.cache``, text, one line per message::

    courierpy-cache 1\\n                                    (first line)
    <crc32 hex>\\t<basename>\\t<size>\\t<mtime_ns>\\t<meta JSON>\\t<tree JSON>\\n

The CRC covers everything after the first tab.  Entries are split out of
the file when it is loaded but their JSON is decoded only when a message is
asked for, so loading a 10,000-message cache costs one read and a split.
A wrong first line, a bad CRC, a short line or JSON that does not have the
expected shape discards the whole file (logged); it is then rebuilt.
:meth:`MetadataCache.save` writes a temporary file and renames it over the
old one, so readers never see half a file; two sessions saving at once
simply race, the last rename wins (it is only a cache).  Entries of
messages no longer in the folder are dropped on save.  A full disk or a
read-only folder is logged and otherwise ignored.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from courierpy.errors import CourierError
from courierpy.maildir import names
from courierpy.mime.envelope import parse_address_list
from courierpy.mime.headers import HeaderBlock, decode_date, decode_words
from courierpy.mime.imapwire import message_wire, open_message
from courierpy.mime.tree import Part

__all__ = [
    "CACHE_NAME",
    "ADDRESS_FIELDS",
    "SEARCH_FIELDS",
    "CacheCorrupt",
    "MessageMeta",
    "MetadataCache",
    "locate",
]

log = logging.getLogger(__name__)

CACHE_NAME = "courierpy.cache"
_MAGIC = b"courierpy-cache 1\n"

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
#: Of those, the address fields (matched in re-rendered form).
ADDRESS_FIELDS = frozenset({"from", "to", "cc", "bcc", "reply-to", "sender"})


class CacheCorrupt(CourierError):
    """The cache file is not what we write; it is discarded."""


@dataclass(slots=True)
class MessageMeta:
    """What a message's bytes give FETCH and SEARCH (immutable in practice).

    *headers* maps each of :data:`SEARCH_FIELDS` the message (or one of its
    parts or attached messages) has to its values, unfolded and RFC 2047-decoded; *dates*
    are its readable Date: fields (same scope) as POSIX times.  :meth:`tree` rebuilds the
    part tree from its JSON on first use.
    """

    size: int  #: size of the stored file
    mtime_ns: int
    rfc822_size: int
    envelope: bytes
    bodystructure: bytes
    body: bytes
    headers: dict[str, tuple[str, ...]]
    dates: tuple[float, ...]
    tree_json: str = ""
    _tree: Part | None = field(default=None, repr=False, compare=False)

    def tree(self) -> Part:
        if self._tree is None:
            self._tree = Part.from_json(json.loads(self.tree_json))
        return self._tree

    # -- (de)serialization ------------------------------------------------------

    def meta_json(self) -> str:
        return json.dumps(
            [
                self.rfc822_size,
                self.envelope.decode("latin-1"),
                self.bodystructure.decode("latin-1"),
                self.body.decode("latin-1"),
                self.headers,
                list(self.dates),
            ],
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, size: int, mtime_ns: int, meta: str, tree: str) -> MessageMeta:
        obj = json.loads(meta)
        if not (isinstance(obj, list) and len(obj) == 6):
            raise CacheCorrupt("entry is not a 6-list")
        rfc822_size, env, bs, bd, headers, dates = obj
        if not (
            isinstance(rfc822_size, int)
            and isinstance(env, str)
            and isinstance(bs, str)
            and isinstance(bd, str)
            and isinstance(headers, dict)
            and isinstance(dates, list)
            and all(isinstance(d, int | float) for d in dates)
        ):
            raise CacheCorrupt("entry has wrong member types")
        hdrs: dict[str, tuple[str, ...]] = {}
        for k, v in headers.items():
            if not (isinstance(v, list) and all(isinstance(s, str) for s in v)):
                raise CacheCorrupt("entry has bad header values")
            hdrs[k] = tuple(v)
        return cls(
            size,
            mtime_ns,
            rfc822_size,
            env.encode("latin-1"),
            bs.encode("latin-1"),
            bd.encode("latin-1"),
            hdrs,
            tuple(dates),
            tree,
        )

    @classmethod
    def parse(cls, data, size: int, mtime_ns: int) -> MessageMeta:
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
        )
        meta._tree = wire.tree
        return meta


def message_headers(tree: Part):
    """The header blocks SEARCH looks at: every entity's, the message's first,
    then each part's and each attached message's (Courier's header keys match
    in any of them)."""
    return list(tree.walk())


def address_text(value: str) -> str:
    """An address field as Courier's SEARCH sees it: the addresses re-rendered
    (``Name <box@host>``, groups as ``name: ...;``), comments dropped, names
    RFC 2047-decoded and without quotes."""
    out = ""
    sep = ""
    for name, _route, box, host in parse_address_list(value):
        if box is None:  # group end
            out += ";"
            sep = ", "
            continue
        if host is None:  # group start
            out += sep + box + ":"
            sep = " "
            continue
        addr = f"{box}@{host}" if host else box
        out += sep + (decode_words(name).replace('"', "") + f" <{addr}>" if name else addr)
        sep = ", "
    return out


def search_headers(data, tree: Part) -> tuple[dict[str, tuple[str, ...]], tuple[float, ...]]:
    """(:data:`SEARCH_FIELDS` → decoded values, the Date: fields as POSIX times)
    over the message and the messages attached to it."""
    found: dict[str, list[str]] = {}
    dates: list[float] = []
    for part in message_headers(tree):
        hb = HeaderBlock(data, part.header_start, part.end)
        for name in SEARCH_FIELDS:
            for v in hb.get_all(name):
                text = address_text(v) if name in ADDRESS_FIELDS else decode_words(v)
                found.setdefault(name, []).append(text)
        for v in hb.get_all("date"):
            dt = decode_date(v)
            if dt is None:
                continue
            try:
                dates.append(dt.timestamp())
            except (OverflowError, OSError, ValueError):
                continue
    return {k: tuple(v) for k, v in found.items()}, tuple(dates)


def locate(path: Path, basename: str) -> Path | None:
    """*path* if it exists, else the message *basename* under its new name
    (another session renamed it to change flags, or moved it from new/ to
    cur/), else None (expunged)."""
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
    """The metadata cache of one folder (file ``<folder>/courierpy.cache``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / CACHE_NAME
        self._raw: dict[str, bytes] | None = None  # basename → line, not decoded yet
        self._meta: dict[str, MessageMeta] = {}
        self._dirty = False
        #: Counters for tests and benchmarks: entries parsed from messages, loaded from file.
        self.parsed = 0
        self.loaded = 0

    # -- loading --------------------------------------------------------------------

    def _load(self) -> dict[str, bytes]:
        if self._raw is not None:
            return self._raw
        self._raw = {}
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return self._raw
        except OSError as e:
            log.warning("metadata cache %s unreadable: %s", self.path, e)
            self._dirty = True
            return self._raw
        try:
            self._raw = _split(data)
        except CacheCorrupt as e:
            log.warning("metadata cache %s discarded: %s", self.path, e)
            self._raw = {}
            self._meta.clear()
            self._dirty = True
        return self._raw

    def _discard(self, why: str) -> None:
        log.warning("metadata cache %s discarded: %s", self.path, why)
        self._raw = {}
        self._meta.clear()
        self._dirty = True

    def _cached(self, basename: str) -> MessageMeta | None:
        meta = self._meta.get(basename)
        if meta is not None:
            return meta
        raw = self._load().pop(basename, None)
        if raw is None:
            return None
        try:
            size, mtime, meta_json, tree_json = raw.split(b"\t")
            meta = MessageMeta.from_json(
                int(size), int(mtime), meta_json.decode("ascii"), tree_json.decode("ascii")
            )
            json.loads(tree_json)  # shape checked here, not at the first section fetch
        except (ValueError, UnicodeError, CacheCorrupt) as e:
            self._discard(f"bad entry for {basename!r}: {e}")
            return None
        self._meta[basename] = meta
        self.loaded += 1
        return meta

    # -- the interface --------------------------------------------------------------

    def get(self, path: Path, basename: str) -> MessageMeta:
        """The metadata of message *basename* stored at *path*.

        A cached entry is used while the file's size and mtime match; otherwise
        (or when there is none) the message is parsed and the entry replaced.
        If *path* is gone, the message is looked up by its basename (a flag
        rename elsewhere); if it is gone for good, a still-cached entry is
        returned (the bytes cannot have changed), else
        :class:`courierpy.maildir.store.MessageGone` is raised.
        """
        path = Path(path)
        meta = self._cached(basename)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            found = locate(path, basename)
            if found is None:
                if meta is not None:
                    return meta
                from courierpy.maildir.store import MessageGone

                raise MessageGone(f"message {basename} was expunged") from None
            path = found
            st = os.stat(path)
        if meta is not None and meta.size == st.st_size and meta.mtime_ns == st.st_mtime_ns:
            return meta
        with open_message(path) as buf:
            meta = MessageMeta.parse(buf, st.st_size, st.st_mtime_ns)
        self.parsed += 1
        if "\t" not in basename and "\n" not in basename:
            self._meta[basename] = meta
            self._dirty = True
        return meta

    def save(self) -> None:
        """Write the cache if anything changed (tmp file + rename); entries of
        messages no longer in the folder are dropped.  Never raises OSError."""
        if not self._dirty:
            return
        present = set()
        for sub in ("cur", "new"):
            try:
                with os.scandir(self.folder / sub) as it:
                    present.update(names.basename(e.name) for e in it)
            except FileNotFoundError:
                continue
            except OSError as e:
                log.warning("metadata cache %s not saved: %s", self.path, e)
                return
        lines = [_MAGIC]
        for base, raw in (self._raw or {}).items():
            if base in present and base not in self._meta:
                lines.append(_line(base, raw))
        for base, meta in self._meta.items():
            if base in present:
                body = b"%d\t%d\t%s\t%s" % (
                    meta.size,
                    meta.mtime_ns,
                    meta.meta_json().encode("ascii"),
                    meta.tree_json.encode("ascii"),
                )
                lines.append(_line(base, body))
        tmp = self.folder / f"{CACHE_NAME}.tmp.{os.getpid()}.{id(self):x}"
        try:
            with open(tmp, "wb") as f:
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


def _line(base: str, body: bytes) -> bytes:
    rest = base.encode("utf-8", "surrogateescape") + b"\t" + body
    return b"%08x\t%s\n" % (zlib.crc32(rest), rest)


def _split(data: bytes) -> dict[str, bytes]:
    """basename → ``size\\tmtime\\tmeta\\ttree`` for every line of a cache file."""
    if not data.startswith(_MAGIC):
        raise CacheCorrupt("not a courierpy cache (or another version)")
    if not data.endswith(b"\n"):
        raise CacheCorrupt("truncated")
    out: dict[str, bytes] = {}
    for line in data[len(_MAGIC) : -1].split(b"\n") if len(data) > len(_MAGIC) else ():
        crc, tab, rest = line.partition(b"\t")
        if not tab or len(crc) != 8:
            raise CacheCorrupt("malformed line")
        try:
            ok = int(crc, 16) == zlib.crc32(rest)
        except ValueError:
            ok = False
        if not ok:
            raise CacheCorrupt("checksum mismatch")
        base, tab, body = rest.partition(b"\t")
        if not tab or body.count(b"\t") != 3:
            raise CacheCorrupt("malformed line")
        out[base.decode("utf-8", "surrogateescape")] = body
    return out
