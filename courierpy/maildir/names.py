"""Maildir++ message file names, as Courier writes and reads them.

A delivered message is named::

    <sec>.M<usec>P<pid>V<dev:16 HEX>I<ino:16 HEX>[_<n>].<host>,S=<size>[:2,<flags>]

``,S=`` is the size of the file on disk, so quota and index code never needs a
``stat`` per message. ``:2,`` starts the info part; its letters are the flags
``D`` (draft), ``F`` (flagged), ``R`` (replied), ``S`` (seen) and ``T``
(trashed, i.e. \\Deleted), kept in ASCII order. The *basename* (everything
before the last ``:``) is the message's identity: it never changes when flags
change, and it is what ``courierimapuiddb`` and ``courierimapkeywords`` store.

Files being written live in ``tmp/`` under ``<sec>.M<usec>P<pid>[_<tag>].<host>``.
"""

from __future__ import annotations

import os
import re
import socket
import time
from dataclasses import dataclass

__all__ = [
    "ParsedName",
    "basename",
    "flags_of",
    "format_flags",
    "hostname",
    "message_name",
    "parse",
    "size_of",
    "tmp_name",
    "with_flags",
]

#: Separator between the basename and the info part.
INFO_SEP = ":"
#: The info part of a Maildir message with flags ("version 2").
INFO_PREFIX = ":2,"

_SIZE_RE = re.compile(r",S=(\d+)(?=[,:]|$)")


@dataclass(frozen=True, slots=True)
class ParsedName:
    """A message file name split into its parts."""

    #: The name without its ``:...`` info part (the message's stable identity).
    basename: str
    #: ``,S=`` size from the name, or None when the writer did not record it.
    size: int | None
    #: Flag letters from a ``:2,`` info part, sorted; "" when none.
    flags: str
    #: The raw info part after ``:`` (e.g. ``"2,FS"``), or None when absent.
    info: str | None


def hostname() -> str:
    """This host's name as Courier puts it in file names (``/`` and ``:`` escaped)."""
    host = socket.gethostname() or "localhost"
    return host.replace("/", "\\057").replace(":", "\\072")


def format_flags(flags: str) -> str:
    """Flag letters without duplicates, in ASCII order (``"SFR"`` → ``"FRS"``)."""
    return "".join(sorted(set(flags)))


def parse(filename: str) -> ParsedName:
    """Split a message file name (no directory) into basename, size and flags."""
    cut = filename.rfind(INFO_SEP)
    if cut < 0:
        base, info = filename, None
    else:
        base, info = filename[:cut], filename[cut + 1 :]
    flags = format_flags(info[2:]) if info is not None and info.startswith("2,") else ""
    match = _SIZE_RE.search(base)
    size = int(match.group(1)) if match else None
    return ParsedName(base, size, flags, info)


def basename(filename: str) -> str:
    """The stable identity of a message file name (up to the last ``:``)."""
    cut = filename.rfind(INFO_SEP)
    return filename if cut < 0 else filename[:cut]


def size_of(filename: str) -> int | None:
    """The ``,S=`` size of a message file name, or None."""
    return parse(filename).size


def flags_of(filename: str) -> str:
    """The sorted flag letters of a message file name."""
    return parse(filename).flags


def with_flags(filename: str, flags: str) -> str:
    """The cur/ name of a message with exactly *flags* (``base:2,<sorted flags>``)."""
    return basename(filename) + INFO_PREFIX + format_flags(flags)


def _clock(now: float | None) -> tuple[int, int]:
    if now is None:
        ns = time.time_ns()
        return ns // 1_000_000_000, (ns // 1000) % 1_000_000
    sec = int(now)
    return sec, int(round((now - sec) * 1_000_000)) % 1_000_000


def tmp_name(tag: str | None = None, *, now: float | None = None, pid: int | None = None,
             host: str | None = None) -> str:
    """A name for a file in ``tmp/``: ``<sec>.M<usec>P<pid>[_<tag>].<host>``."""
    sec, usec = _clock(now)
    pid = os.getpid() if pid is None else pid
    suffix = f"_{tag}" if tag else ""
    return f"{sec}.M{usec}P{pid}{suffix}.{host or hostname()}"


def message_name(dev: int, ino: int, size: int | None, *, uniq: str | int | None = None,
                 now: float | None = None, pid: int | None = None,
                 host: str | None = None) -> str:
    """The new/ or cur/ basename of a message whose tmp file has *dev* and *ino*.

    The device and inode make the name unique across processes and hosts
    sharing the Maildir; *uniq* (``_<n>``) is a per-process counter that imapd
    adds for APPEND/COPY, deliverquota none.
    """
    sec, usec = _clock(now)
    pid = os.getpid() if pid is None else pid
    uniq_part = "" if uniq is None else f"_{uniq}"
    size_part = "" if size is None else f",S={size}"
    return (f"{sec}.M{usec}P{pid}V{dev & 0xFFFFFFFFFFFFFFFF:016X}"
            f"I{ino & 0xFFFFFFFFFFFFFFFF:016X}{uniq_part}.{host or hostname()}{size_part}")
