"""The Maildir object the servers use: scan, UIDs, flags, expunge, delivery.

A scan lists ``new/`` and ``cur/`` with ``os.scandir`` (sizes come from
``,S=``, no ``stat`` per message), moves ``new/X`` to ``cur/X:2,`` (those
messages are *recent*), and merges the listing into ``courierimapuiddb``
under Courier's folder lock, exactly as Courier's imapd does, so both can
work on one Maildir at the same time.

Safety with several processes on one Maildir:

* Flags change by renaming ``cur/<base>:2,<old>`` to ``cur/<base>:2,<new>``.
  If another process renamed (or removed) it first, the message is found
  again by its basename and the rename retried; a message never disappears
  or doubles, because every step is a single ``rename``.
* A directory listing taken while another process renames a file may miss
  that file. Before a UID is dropped from the uiddb the folder is listed
  again, so a message being re-flagged elsewhere keeps its UID.
* UIDs are only ever assigned under the lock, from *nextuid* upward, and
  never reassigned.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from courierpy.errors import CourierError
from courierpy.maildir import create, names, quota, uiddb

__all__ = ["FolderState", "Listing", "Maildir", "Message", "MessageGone"]


class MessageGone(CourierError):
    """The message was expunged by another process."""

    exit_code = 1


@dataclass(frozen=True, slots=True)
class Message:
    """One message as of the last scan."""

    uid: int
    #: Current file name in ``cur/`` (it changes with the flags).
    filename: str
    basename: str
    #: ``,S=`` size (on-disk, LF line endings), or None if the name lacks it.
    size: int | None
    flags: str
    #: Found in ``new/`` by this scan.
    recent: bool

    @property
    def relpath(self) -> str:
        return "cur/" + self.filename


@dataclass(frozen=True, slots=True)
class FolderState:
    """The result of a scan: messages in UID order."""

    uidvalidity: int
    uidnext: int
    messages: tuple[Message, ...]

    def by_uid(self) -> dict[int, Message]:
        return {m.uid: m for m in self.messages}


def _list_dir(path: Path) -> list[str]:
    try:
        with os.scandir(path) as it:
            return [e.name for e in it if not e.name.startswith(".")]
    except FileNotFoundError:
        return []


def _list_messages(path: str, found: dict[str, str], inodes: dict[str, int] | None,
                   prefix: str = "") -> None:
    """Add ``basename → prefix + name`` and ``basename → inode`` for the messages
    of directory *path* (one ``scandir``, no ``stat``); a basename already in
    *found* keeps its name, and of two names with one basename the first
    listed wins."""
    ents: list[os.DirEntry[str]] = []
    try:
        if inodes is None:  # os.listdir: half the cost of scandir's DirEntry objects
            listed = [n for n in os.listdir(path) if n[0] != "."]
        else:
            with os.scandir(path) as it:
                ents = [e for e in it if e.name[0] != "."]
            listed = [e.name for e in ents]
    except FileNotFoundError:
        return
    bases = [n[:cut] if (cut := n.rfind(":")) >= 0 else n for n in listed]
    if prefix:
        listed = [prefix + n for n in listed]
    # reversed: where two names share a basename, the first listed is kept
    new = dict(zip(reversed(bases), reversed(listed), strict=True))
    if found:
        new = {b: n for b, n in new.items() if b not in found}
    found.update(new)
    if inodes is not None:
        inos = dict(zip(reversed(bases), reversed([e.inode() for e in ents]), strict=True))
        inodes.update(inos if len(new) == len(inos) else {b: inos[b] for b in new})


@dataclass(slots=True)
class Listing:
    """A scan's raw result, for callers that build their own per-message objects.

    *uids* maps basename → UID in UID order; *names* basename → file name
    relative to ``cur/`` (``../new/<name>`` for messages a scan without
    ``move_new`` found in new/); *inodes* basename → inode number as the
    directory listing gave it (``DirEntry.inode()``, no ``stat``); *recent* the
    basenames this scan moved from new/ to cur/.
    """

    uidvalidity: int
    uidnext: int
    uids: dict[str, int]
    names: dict[str, str]
    inodes: dict[str, int]
    recent: set[str]


class Maildir:
    """A Maildir++ folder (the Maildir itself for INBOX, or ``.Name``)."""

    def __init__(self, path: str | os.PathLike[str], *, env_quota: str | None = None,
                 lock_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self._root = os.fspath(path) + "/"  # for string paths in the scan
        self.env_quota = env_quota
        self.lock_timeout = lock_timeout
        self._names: dict[str, str] = {}  # basename → filename in cur/, from the last scan
        self._counter = 0

    # -- scanning -------------------------------------------------------------

    def _move_new(self) -> set[str]:
        recent = set()
        new = self._root + "new/"
        cur = self._root + "cur/"
        try:
            listed = [n for n in os.listdir(new) if n[0] != "."]
        except FileNotFoundError:
            listed = []
        for name in listed:
            target = name if ":" in name else name + names.INFO_PREFIX
            try:
                os.rename(new + name, cur + target)
            except FileNotFoundError:
                continue  # another session moved it first
            recent.add(names.basename(name))
        return recent

    def _list_cur(self, inodes: dict[str, int] | None = None) -> dict[str, str]:
        """basename → name in cur/ (and → inode number into *inodes* if given)."""
        found: dict[str, str] = {}
        _list_messages(self._root + "cur", found, inodes)
        return found

    def listing(self, *, move_new: bool = True, inodes: bool = True) -> Listing:
        """List the folder, move new/ to cur/, assign UIDs (Courier's rules, under
        its lock); return the raw :class:`Listing` (with the inode numbers only
        if *inodes*)."""
        create.clean_tmp(self.path)
        ino_map: dict[str, int] | None = {} if inodes else None
        with uiddb.folder_lock(self.path, timeout=self.lock_timeout):
            recent = self._move_new() if move_new else set()
            found = self._list_cur(ino_map)
            if not move_new:
                _list_messages(self._root + "new", found, ino_map, "../new/")
            db = uiddb.read(self.path)
            if db is not None:
                missing = [b for b in db.uids.keys() - found.keys()]
                for _ in range(2):  # re-list: a concurrent rename can hide a file
                    if not missing:
                        break
                    again = self._list_cur(ino_map)
                    for b in missing:
                        if b in again:
                            found[b] = again[b]
                    missing = [b for b in missing if b not in found]
            db, changed = uiddb.update(db, found.keys())
            if changed:
                self._counter += 1
                uiddb.write(self.path, db, counter=self._counter)
        self._names = found
        return Listing(db.uidvalidity, db.nextuid, db.uids, found,
                       ino_map if ino_map is not None else {}, recent)

    def scan(self, *, move_new: bool = True) -> FolderState:
        """List the folder, move new/ to cur/, assign UIDs; return the state."""
        lst = self.listing(move_new=move_new)
        found, recent = lst.names, lst.recent
        msgs = []
        for base, uid in lst.uids.items():
            fn = found[base]
            p = names.parse(fn)
            msgs.append(Message(uid, fn, base, p.size, p.flags, base in recent))
        return FolderState(lst.uidvalidity, lst.uidnext, tuple(msgs))

    def status(self) -> dict[str, int]:
        """IMAP STATUS counts without touching the folder (no move, no uiddb write).

        As Courier's STATUS: messages not yet in the uiddb (in new/, or in cur/
        but unlisted) count as if they were given the next UIDs.
        """
        db = uiddb.read(self.path) or uiddb.new_db()
        cur = self._list_cur()
        new = {names.basename(n): n for n in _list_dir(self.path / "new")}
        unlisted = len([b for b in cur if b not in db.uids]) + \
            len([b for b in new if b not in db.uids and b not in cur])
        listed = [cur[b] for b in db.uids if b in cur] + [new[b] for b in db.uids if b in new
                                                          and b not in cur]
        messages = len(listed) + unlisted
        seen = sum(1 for n in listed if "S" in names.parse(n).flags) + sum(
            1 for b, n in {**new, **cur}.items()
            if b not in db.uids and "S" in names.parse(n).flags)
        return {"MESSAGES": messages, "UIDNEXT": db.nextuid + unlisted,
                "UIDVALIDITY": db.uidvalidity, "UNSEEN": messages - seen, "RECENT": len(new)}

    # -- flags ----------------------------------------------------------------

    def _current_name(self, basename: str, *, refresh: bool = False) -> str:
        if not refresh and basename in self._names:
            return self._names[basename]
        found = self._list_cur()
        self._names.update(found)
        if basename not in found:
            self._names.pop(basename, None)
            raise MessageGone(f"{basename}: message no longer exists")
        return found[basename]

    def set_flags(self, basename: str, flags: str) -> str:
        """Give message *basename* exactly *flags*; return its new file name."""
        cur = self._root + "cur/"  # strings: no Path objects per message
        name = self._current_name(basename)
        for attempt in range(20):
            new = names.with_flags(name, flags)
            if new == name:
                if os.path.exists(cur + name):
                    return name
            else:
                try:
                    os.rename(cur + name, cur + new)
                    self._names[basename] = new
                    return new
                except FileNotFoundError:
                    pass
            name = self._current_name(basename, refresh=True)
            if attempt > 10:
                os.sched_yield()
        raise MessageGone(f"{basename}: could not rename (too much contention)")

    def change_flags(self, basename: str, add: str = "", remove: str = "") -> str:
        """Add and/or remove flag letters, keeping the others; return the new name."""
        for _ in range(20):
            name = self._current_name(basename)
            current = names.parse(name).flags
            wanted = "".join(c for c in set(current + add) if c not in remove)
            new = names.with_flags(name, wanted)
            if new == name:
                return name
            try:
                cur = self._root + "cur/"
                os.rename(cur + name, cur + new)
                self._names[basename] = new
                return new
            except FileNotFoundError:
                self._current_name(basename, refresh=True)
        raise MessageGone(f"{basename}: could not rename (too much contention)")

    # -- removal --------------------------------------------------------------

    def expunge(self, basenames: Iterable[str]) -> list[str]:
        """Unlink the messages; append quota deltas; return the basenames removed.

        Messages already gone are skipped. UIDs leave the uiddb at the next scan.
        """
        removed = []
        for base in basenames:
            for _ in range(20):
                try:
                    name = self._current_name(base)
                except MessageGone:
                    break
                try:
                    os.unlink(self.path / "cur" / name)
                except FileNotFoundError:
                    self._names.pop(base, None)
                    continue
                self._names.pop(base, None)
                size = names.parse(name).size
                if size is None:
                    size = 0
                quota.add_delta(self.path, -size, -1)
                removed.append(base)
                break
        return removed

    # -- delivery -------------------------------------------------------------

    def deliver(self, source: BinaryIO | bytes, *, flags: str = "", mtime: float | None = None,
                subdir: str = "cur", enforce_quota: bool = True,
                uniq: str | int | None = None) -> Path:
        """Store a message (APPEND-style into cur/ by default), honouring the quota.

        *uniq* is imapd's per-process ``_<n>`` name counter (None: no ``_n``).
        Raises quota.QuotaExceeded (nothing stored) or create.DeliveryError.
        """

        def check(size: int) -> None:
            if enforce_quota:
                quota.check_add(self.path, size, 1, env_quota=self.env_quota)

        path = create.deliver(self.path, source, flags=flags, mtime=mtime, subdir=subdir,
                              check=check, uniq=uniq)
        size = names.parse(path.name).size or 0
        quota.add_delta(self.path, size, 1)
        return path

    def uidvalidity(self) -> int:
        """UIDVALIDITY (scans if the uiddb does not exist yet)."""
        db = uiddb.read(self.path)
        return db.uidvalidity if db is not None else self.scan().uidvalidity
