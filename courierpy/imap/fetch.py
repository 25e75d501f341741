"""FETCH data items, rendered as Courier's imapd sends them (RFC 3501 §6.4.5, §7.4.2).

:func:`render_fetch` turns one message and the parsed attributes
(:mod:`courierpy.imap.fetchatts`) into the pieces inside ``* n FETCH (...)``.
Each attribute needs only what it declares (``FetchAtt.needs``): FLAGS, UID
and INTERNALDATE come from the :class:`MessageView` the session holds;
RFC822.SIZE, ENVELOPE, BODY and BODYSTRUCTURE from the folder's
:class:`~courierpy.maildir.cache.MetadataCache` (no message file is opened
when the cache is warm); ``BODY[section]`` from the message file, located
through the cached part tree and streamed in CRLF form
(:func:`courierpy.mime.imapwire.fetch_section_from_file`): sections larger
than :data:`STREAM_THRESHOLD` come back as a
:class:`~courierpy.imap.responses.LiteralStream`, so a big message is never
held in memory.

The result is a flat list, label then value for each attribute, in request
order; the session joins the pieces with single spaces inside the
parentheses (:func:`fetch_response` does exactly that)::

    [b"UID", b"7", b"BODY[HEADER]", b"{42}\\r\\n...", b"BODY[]", LiteralStream(...)]
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path

from courierpy.imap.fetchatts import FetchAtt
from courierpy.imap.responses import Atom, LiteralStream, Raw, Untagged
from courierpy.maildir.cache import MetadataCache, locate
from courierpy.mime.imapwire import Section, fetch_section_from_file, to_crlf

__all__ = [
    "STREAM_THRESHOLD",
    "MessageView",
    "fetch_response",
    "internaldate",
    "render_fetch",
]

#: Sections bigger than this are streamed from the file as a LiteralStream.
STREAM_THRESHOLD = 64 * 1024

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True, slots=True)
class MessageView:
    """What the session knows of one message.

    *path* is its file (``cur/<name>``, a Path or a plain string) as of the
    last scan, *basename* the
    name without ``:2,<flags>``, *flags* its flags in Courier's FETCH order
    (:func:`courierpy.imap.flags.imap_flags`), *internaldate* the file's
    mtime, *size* the ``,S=`` size from the name (stored, LF form) or None.
    """

    seq: int
    uid: int
    path: Path | str
    basename: str
    flags: tuple[str, ...]
    internaldate: float
    size: int | None


def internaldate(t: float) -> bytes:
    """``"01-Jan-2024 10:00:00 +0000"`` in the server's local time zone, as Courier
    (zero-padded day, English month names whatever the locale)."""
    sec = int(t // 1)
    hour, r = divmod(sec, 3600)
    zone = _zone_of_hour(hour, time.timezone, time.altzone, time.tzname)
    if zone is None:  # the offset changes within this hour
        return _internaldate(t)
    if zone[2]:  # a whole-hour offset: the hour's text up to the minutes is fixed
        return b"%s%02d:%02d%s" % (zone[2], r // 60, r % 60, zone[1])
    d, r = divmod(sec + zone[0], 86400)
    return b'%s%02d:%02d:%02d%s' % (_local_day(d), r // 3600, r // 60 % 60, r % 60, zone[1])


def _internaldate(t: float) -> bytes:
    tm = time.localtime(t)
    off = (tm.tm_gmtoff or 0) // 60
    sign = "-" if off < 0 else "+"
    off = abs(off)
    return (
        f'"{tm.tm_mday:02d}-{_MONTHS[tm.tm_mon - 1]}-{tm.tm_year:04d} '
        f'{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} {sign}{off // 60:02d}{off % 60:02d}"'
    ).encode("ascii")


# Memos of the zone's rules (the server's zone does not change while it runs):
# rendering 10,000 dates for a FETCH 1:* then takes two divisions each.
@functools.lru_cache(maxsize=4096)
def _zone_of_hour(hour: int, *zone: object) -> tuple[int, bytes, bytes] | None:
    """(UTC offset in seconds, `` +hhmm"``, the local text up to ``HH:`` when the
    offset is whole hours, else b"") valid for the whole UTC *hour*, or None;
    *zone* (``time.timezone``, ``altzone``, ``tzname``) only keys the memo."""
    a, b = time.localtime(hour * 3600), time.localtime(hour * 3600 + 3599)
    if a.tm_gmtoff != b.tm_gmtoff:
        return None
    off = a.tm_gmtoff or 0
    minutes = off // 60
    sign = b"-" if minutes < 0 else b"+"
    minutes = abs(minutes)
    tail = b' %s%02d%02d"' % (sign, minutes // 60, minutes % 60)
    head = b""
    if off % 3600 == 0:
        head = b"%s%02d:" % (_local_day((hour * 3600 + off) // 86400), a.tm_hour)
    return off, tail, head


@functools.lru_cache(maxsize=4096)
def _local_day(day: int) -> bytes:
    """``"DD-Mon-YYYY `` of day number *day* (days since the epoch, local)."""
    tm = time.gmtime(day * 86400)
    return f'"{tm.tm_mday:02d}-{_MONTHS[tm.tm_mon - 1]}-{tm.tm_year:04d} '.encode("ascii")


_RFC822_SECTIONS = {
    "RFC822": Section(),
    "RFC822.HEADER": Section((), "HEADER"),
    "RFC822.TEXT": Section((), "TEXT"),
}


def _located(msg: MessageView) -> Path:
    path = locate(msg.path, msg.basename)
    if path is None:
        from courierpy.maildir.store import MessageGone

        raise MessageGone(f"message {msg.basename} was expunged")
    return path


def _whole_message(msg: MessageView) -> bytes | None:
    """The whole message as a literal, read at once, when it is small (no part tree
    needed: its size is that of the bytes read); None for one to be streamed."""
    try:
        f = open(msg.path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:  # renamed by a flag change elsewhere, or expunged
        f = open(_located(msg), "rb")  # noqa: SIM115
    with f:
        if os.fstat(f.fileno()).st_size > STREAM_THRESHOLD:
            return None
        payload = to_crlf(f.read())
    return b"{%d}\r\n" % len(payload) + payload


def _section_value(
    msg: MessageView,
    cache: MetadataCache,
    section: Section,
    partial: tuple[int, int | None] | None,
) -> bytes | LiteralStream:
    if not section.path and not section.kind and partial is None:
        whole = _whole_message(msg)  # BODY[], RFC822: the file as it is, in CRLF form
        if whole is not None:
            return whole
    # checked against the file (stat) before reading it by the tree's offsets
    tree = cache.tree(msg.path, msg.basename, verify=True)
    data = fetch_section_from_file(_located(msg), tree, section, partial)
    if data.size > STREAM_THRESHOLD:
        return LiteralStream(data.size, data.chunks)
    payload = data.read()
    return b"{%d}\r\n" % len(payload) + payload


def render_fetch(
    msg: MessageView, atts: tuple[FetchAtt, ...], cache: MetadataCache
) -> list[bytes | LiteralStream]:
    """The pieces inside ``* n FETCH (...)`` for *atts*, in request order:
    label, value, label, value, ...  (see the module docstring)."""
    out: list[bytes | LiteralStream] = []
    meta = None
    for att in atts:
        name = att.name
        if att.section is not None:
            out.append(att.label)
            out.append(_section_value(msg, cache, att.section, att.partial))
        elif name == "FLAGS":
            out.append(b"FLAGS")
            out.append(b"(" + " ".join(msg.flags).encode("utf-8") + b")")
        elif name == "UID":
            out.append(b"UID")
            out.append(b"%d" % msg.uid)
        elif name == "INTERNALDATE":
            out.append(b"INTERNALDATE")
            out.append(internaldate(msg.internaldate))
        elif name == "RFC822.SIZE":
            out.append(b"RFC822.SIZE")
            meta = meta or cache.get(msg.path, msg.basename)
            out.append(b"%d" % meta.rfc822_size)
        elif name == "ENVELOPE":
            out.append(b"ENVELOPE")
            meta = meta or cache.get(msg.path, msg.basename)
            out.append(meta.envelope)
        elif name == "BODYSTRUCTURE":
            out.append(b"BODYSTRUCTURE")
            meta = meta or cache.get(msg.path, msg.basename)
            out.append(meta.bodystructure)
        elif name == "BODY":
            out.append(b"BODY")
            meta = meta or cache.get(msg.path, msg.basename)
            out.append(meta.body)
        elif name in _RFC822_SECTIONS:
            out.append(name.encode("ascii"))
            out.append(_section_value(msg, cache, _RFC822_SECTIONS[name], None))
        else:  # pragma: no cover - fetchatts accepts nothing else
            raise ValueError(f"unknown FETCH attribute {name!r}")
    return out


def fetch_response(seq: int, items: list[bytes | LiteralStream]) -> Untagged:
    """``* seq FETCH (items...)`` as an :class:`Untagged` (streams kept as streams)."""
    return Untagged((seq, Atom("FETCH"), [i if isinstance(i, LiteralStream) else Raw(i)
                                          for i in items]))
