"""``courierimapuiddb``: IMAP UIDs of a folder, and Courier's folder lock.

Format (one file per folder, mode 0644)::

    1 <uidvalidity> <nextuid>       version 1 always
    <uid> <basename>                 one per message, sorted by UID

*basename* is the message file name without its ``:2,...`` part. A new file
gets ``UIDVALIDITY = mtime - 1000000000``; messages not yet listed get the
next UIDs in file-name order. The file is rewritten in ``tmp/`` and renamed
into place, under Courier's lock (``IMAP_USELOCKS``): a dot-lock
``tmp/courier.lock`` made by ``link()``ing a temporary file that holds
``<pid>:<host>``, so it also works over NFS.

Damage is handled as the real imapd handles it (checked by corrupting files
and running it): a missing or malformed first line throws the whole file away
(new UIDVALIDITY, every message renumbered from 1 in file-name order); an
entry line that does not parse, or a last line without its newline, is
ignored and its message gets a new UID. Two deliberate differences, to keep
UIDs unique: a listed UID at or above *nextuid* raises *nextuid* past it
(Courier keeps the stale *nextuid*), and a UID listed twice stays with the
first message only (Courier shows both messages under one UID).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterable, Iterator, KeysView
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path

from courierpy.errors import EX_TEMPFAIL, CourierError
from courierpy.maildir import names

__all__ = ["LockError", "UidDb", "folder_lock", "new_db", "read", "update", "write"]

UIDDB = "courierimapuiddb"
LOCKFILE = "courier.lock"
#: UIDVALIDITY is the creation time minus this.
EPOCH_OFFSET = 1_000_000_000
#: A lock older than this is taken to be left over from a crash.
STALE_LOCK_AGE = 300.0


class LockError(CourierError):
    """The folder lock could not be taken in time (a temporary failure)."""

    exit_code = EX_TEMPFAIL


@dataclass
class UidDb:
    """The contents of one courierimapuiddb."""

    uidvalidity: int
    nextuid: int
    #: basename → UID, in UID order (as :func:`parse` and :func:`update` leave it)
    uids: dict[str, int] = field(default_factory=dict)

    def render(self) -> bytes:
        items = self.uids.items()
        if not _in_order(list(self.uids.values())):
            items = sorted(items, key=itemgetter(1))
        body = "".join([f"{uid} {base}\n" for base, uid in items])
        return f"1 {self.uidvalidity} {self.nextuid}\n{body}".encode("utf-8", "surrogateescape")


def _in_order(values: list[int]) -> bool:
    return values == sorted(values)


#: an entry line: ``<uid> <basename>`` (no ``/`` in the name)
_ENTRY = re.compile(r"^([0-9]+) ([^\n/]+)$", re.MULTILINE)


def parse(data: bytes) -> UidDb | None:
    """Parse a courierimapuiddb; None when its first line is unusable."""
    text = data.decode("utf-8", "surrogateescape")
    first = text.find("\n")
    if first < 0:
        return None
    head = text[:first].split(" ")
    if len(head) != 3 or head[0] != "1":
        return None
    try:
        uidvalidity, nextuid = int(head[1]), int(head[2])
    except ValueError:
        return None
    if uidvalidity <= 0 or nextuid <= 0:
        return None
    db = UidDb(uidvalidity, nextuid)
    # the text after the last newline is "" or an unterminated (partial) line
    pairs = _ENTRY.findall(text, first + 1, text.rfind("\n"))
    if not pairs:
        return db
    uid_strs, bases = zip(*pairs, strict=True)
    uids = list(map(int, uid_strs))
    n = len(uids)
    if min(uids) > 0 and len(set(uids)) == n and len(set(bases)) == n:
        db.uids = dict(zip(bases, uids, strict=True))  # the usual file: lines as they are
    else:
        seen_uids: set[int] = set()
        for base, uid in zip(bases, uids, strict=True):
            if uid <= 0 or uid in seen_uids or base in db.uids:
                continue  # a UID or a name listed twice: the first one stays
            seen_uids.add(uid)
            db.uids[base] = uid
    top = max(db.uids.values(), default=0)
    if top >= db.nextuid:
        db.nextuid = top + 1
    if not _in_order(list(db.uids.values())):
        db.uids = dict(sorted(db.uids.items(), key=itemgetter(1)))
    return db


def read(folder: str | os.PathLike[str]) -> UidDb | None:
    """The folder's uiddb, or None if it is missing or its first line is bad."""
    try:
        with open(f"{os.fspath(folder)}/{UIDDB}", "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    return parse(data)


def new_db(now: float | None = None) -> UidDb:
    """An empty uiddb created now (UIDVALIDITY = now - 1000000000)."""
    now = time.time() if now is None else now
    return UidDb(int(now) - EPOCH_OFFSET, 1)


def write(folder: str | os.PathLike[str], db: UidDb, *, counter: int = 0) -> None:
    """Write *db* through ``tmp/`` and rename it into place.

    The file's mtime is set to ``uidvalidity + 1000000000``, so that code
    which, like Courier, derives UIDVALIDITY from a new file's mtime agrees.
    """
    folder = Path(folder)
    tmp = folder / "tmp" / names.tmp_name(f"imapuid_{counter}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(db.render())
            f.flush()
            os.fsync(f.fileno())
        stamp = db.uidvalidity + EPOCH_OFFSET
        if abs(stamp - time.time()) < 2 and not (folder / UIDDB).exists():
            os.utime(tmp, (stamp, stamp))
        os.rename(tmp, folder / UIDDB)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def update(db: UidDb | None, present: Iterable[str], *,
           now: float | None = None) -> tuple[UidDb, bool]:
    """Bring *db* in line with the basenames *present* in the folder.

    Entries of vanished messages are dropped; new messages get the next
    UIDs in file-name order. Returns the db and whether it changed (or is new).
    """
    changed = db is None
    if db is None:
        db = new_db(now)
    present_set = present if isinstance(present, (set, frozenset, KeysView)) else set(present)
    uids = db.uids
    gone = uids.keys() - present_set
    if gone:
        for base in gone:
            del uids[base]
        changed = True
    added = present_set - uids.keys()
    if added:
        nextuid = db.nextuid
        uids.update(zip(sorted(added), range(nextuid, nextuid + len(added)), strict=True))
        db.nextuid = nextuid + len(added)
        changed = True
    return db, changed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _lock_is_stale(lock: Path, host: str) -> bool:
    try:
        st = lock.stat()
        content = lock.read_text("utf-8", "replace")
    except FileNotFoundError:
        return False
    pid_s, _, owner_host = content.partition(":")
    if owner_host == host and pid_s.isdigit() and not _pid_alive(int(pid_s)):
        return True
    return time.time() - st.st_mtime > STALE_LOCK_AGE


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike[str], *, timeout: float = 30.0) -> Iterator[None]:
    """Hold Courier's ``tmp/courier.lock`` dot-lock on *folder*."""
    tmpdir = os.fspath(folder) + "/tmp/"
    lock = tmpdir + LOCKFILE
    host = names.hostname()
    mine = tmpdir + names.tmp_name("courierlock", host=host)
    fd = os.open(mine, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, f"{os.getpid()}:{host}".encode())
    finally:
        os.close(fd)
    deadline = time.monotonic() + timeout
    delay = 0.001
    try:
        while True:
            try:
                os.link(mine, lock)
                break
            except FileExistsError:
                pass
            if _lock_is_stale(Path(lock), host):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(lock)
                continue
            if time.monotonic() > deadline:
                raise LockError(f"{lock}: folder is locked by another process")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(mine)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
