"""The Maildir as Courier's pop3d sees it: a snapshot, UIDLs, sizes, deletions.

At login Courier's pop3d (observed, courier-pop 1.0.16):

* purges old files from ``tmp/`` and moves ``new/X`` to ``cur/X:2,``;
* lists ``cur/`` and orders the messages by the leading integer of the file
  name (the delivery time), then by the name up to ``:``;
* reads ``courierpop3dsizelist`` (format below). A message whose name up to
  ``:`` is listed keeps the listed CRLF size, UID, uidv and UTF-8 flag; any
  other message is read once to get its CRLF size (file size plus one per LF)
  and whether its header has 8-bit bytes, and is given ``nextuid`` and the
  list's uidv;
* rewrites the list (through ``tmp/`` and a rename) only when it was missing,
  in an older format, or its set of messages differs from the folder's; a
  flag change alone does not rewrite it.

The list::

    "/3" SP nextuid SP uidv LF
    filename SP crlf-size SP uid ":" uidv ":" utf8flag LF     (one per message)

``/2`` lists (``filename size uid:uidv``) are read and upgraded; a list
without a version line is ignored (fresh numbering, new uidv = now). The
UIDL of a message is ``UID<uid>-<uidv>``.

RETR marks a message seen (rename to ``:2,...S``), TOP does not. Deletions
are applied by :meth:`Pop3Mailbox.commit` (QUIT): each file is unlinked and
one ``maildirsize`` line subtracts the on-disk sizes and the count. Nothing
is locked: two sessions on one Maildir each keep their own snapshot, and a
message the other session already removed is skipped.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from courierpy.errors import CourierError
from courierpy.maildir import create, names, quota

__all__ = ["MailboxError", "Pop3Mailbox", "Pop3Message", "SIZELIST", "check_home",
           "check_maildir", "crlf_stats"]

SIZELIST = "courierpop3dsizelist"


class MailboxError(CourierError):
    """The Maildir cannot be opened or read; *reply* is Courier's -ERR line for it.

    *event* is a log event Courier writes (``LOCKED``); *after_login* says that
    Courier logs the LOGIN line before this error (it found the Maildir first).
    """

    exit_code = 1

    def __init__(self, message: str, reply: bytes = b"", *, event: str | None = None,
                 after_login: bool = False) -> None:
        super().__init__(message)
        self.reply = reply or b"-ERR Can't open the message file - it's gone!\r\n"
        self.event = event
        self.after_login = after_login


def check_home(home: str = ".") -> None:
    """Courier refuses a home with the sticky bit (an admin's "account locked" switch)."""
    if os.stat(home).st_mode & stat.S_ISVTX:
        raise MailboxError(
            f"{home}: sticky bit set",
            b"-ERR Your account is temporarily unavailable (+t bit set on home directory).\r\n",
            event="LOCKED")


def check_maildir(path: str) -> None:
    """The Maildir must exist (Courier chdirs into it)."""
    if not os.path.isdir(path):
        raise MailboxError(f"chdir {path}: No such file or directory",
                           # sic: Courier ends this reply with a bare LF
                           f"-ERR chdir {path} failed\n".encode("utf-8", "surrogateescape"))


@dataclass(slots=True)
class Pop3Message:
    """One message of the session's snapshot."""

    filename: str  # current name in cur/ (changes when RETR marks it seen)
    basename: str
    size: int  # CRLF size, as LIST/STAT report it
    uid: int
    uidv: int
    utf8: int

    @property
    def uidl(self) -> str:
        return f"UID{self.uid}-{self.uidv}"


def _sort_key(filename: str) -> tuple[int, str]:
    rest = filename.lstrip("0123456789")
    lead = filename[: len(filename) - len(rest)]
    cut = filename.rfind(":")
    return (int(lead) if lead.isascii() and lead else 0, filename if cut < 0 else filename[:cut])


def _read_all(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.read(fd, 65536)
        if len(data) == 65536:
            chunks = [data]
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            data = b"".join(chunks)
        return data
    finally:
        os.close(fd)


def crlf_stats(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(CRLF size, 1 if the header block holds 8-bit bytes else 0) of a message file."""
    data = _read_all(os.fspath(path))
    # the header ends at the first empty line, "\r\n" counting as empty (observed)
    if data.startswith((b"\n", b"\r\n")):
        header = b""
    else:
        ends = [i for i in (data.find(b"\n\n"), data.find(b"\n\r\n")) if i >= 0]
        header = data[: min(ends)] if ends else data
    return len(data) + data.count(b"\n"), 0 if header.isascii() else 1


def _read_sizelist(path: str) -> tuple[int, int, int, dict[str, tuple[int, int, int, int]]] | None:
    """(version, nextuid, uidv, {basename: (size, uid, uidv, utf8)}), or None when unusable."""
    try:
        data = _read_all(path)
    except FileNotFoundError:
        return None
    lines = data.decode("utf-8", "surrogateescape").split("\n")
    head = lines[0].split()
    if len(head) != 3 or head[0] not in ("/2", "/3"):
        return None
    try:
        version, nextuid, uidv = int(head[0][1:]), int(head[1]), int(head[2])
    except ValueError:
        return None
    entries: dict[str, tuple[int, int, int, int]] = {}
    v3 = version >= 3
    for line in lines[1:]:
        parts = line.rsplit(" ", 2)
        if len(parts) != 3:
            continue
        filename, size_s, ids = parts
        fields = ids.split(":")
        try:
            entry = (int(size_s), int(fields[0]), int(fields[1]),
                     int(fields[2]) if v3 and len(fields) > 2 else 0)
        except (ValueError, IndexError):
            continue
        cut = filename.rfind(":")
        base = filename if cut < 0 else filename[:cut]
        if base not in entries:
            entries[base] = entry
    return version, nextuid, uidv, entries


def _write_sizelist(maildir: Path, nextuid: int, uidv: int, msgs: Iterable[Pop3Message]) -> None:
    out = [f"/3 {nextuid} {uidv}\n"]
    out.extend(f"{m.filename} {m.size} {m.uid}:{m.uidv}:{m.utf8}\n" for m in msgs)
    tmp = Path(maildir) / "tmp" / names.tmp_name("pop3")
    with open(tmp, "wb") as f:
        f.write("".join(out).encode("utf-8", "surrogateescape"))
    os.rename(tmp, maildir / SIZELIST)


def _list(path: str) -> list[str]:
    try:
        with os.scandir(path) as it:
            return [e.name for e in it if not e.name.startswith(".")]
    except FileNotFoundError:
        return []


class Pop3Mailbox:
    """A POP3 session's view of one Maildir (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.messages: list[Pop3Message] = []

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, now: float | None = None) -> Pop3Mailbox:
        box = cls(path)
        box.scan(now=now)
        return box

    def scan(self, *, now: float | None = None) -> None:
        root = os.fspath(self.path)
        cur, new = root + "/cur/", root + "/new/"
        if not os.path.isdir(cur):
            raise MailboxError(f"{root}: no cur directory",
                               b"-ERR Maildir invalid (no 'cur' directory)\r\n", after_login=True)
        create.clean_tmp(root)
        for name in _list(new):
            target = name if ":" in name else name + names.INFO_PREFIX
            try:
                os.rename(new + name, cur + target)
            except FileNotFoundError:
                continue
        listing = _list(cur)
        old = _read_sizelist(root + "/" + SIZELIST)
        if old is None:
            version, nextuid, uidv, entries = 0, 1, int(time.time() if now is None else now), {}
        else:
            version, nextuid, uidv, entries = old
        if version == 3 and len(listing) == len(entries):
            # Fast path: the same messages as the list, which both Courier and we write
            # in message order, so no sort is needed and nothing is rewritten.
            by_base = {}
            for fn in listing:
                cut = fn.rfind(":")
                by_base[fn if cut < 0 else fn[:cut]] = fn
            if by_base.keys() == entries.keys():
                self.messages = [Pop3Message(by_base[b], b, *e) for b, e in entries.items()]
                return
        files = sorted(listing, key=_sort_key)
        msgs: list[Pop3Message] = []
        seen: set[str] = set()
        changed = version != 3
        for fn in files:
            cut = fn.rfind(":")
            base = fn if cut < 0 else fn[:cut]
            if base in seen:
                continue
            seen.add(base)
            entry = entries.get(base)
            if entry is not None:
                msgs.append(Pop3Message(fn, base, *entry))
                continue
            try:
                size, utf8 = crlf_stats(cur + fn)
            except FileNotFoundError:
                continue  # removed meanwhile by another session
            msgs.append(Pop3Message(fn, base, size, nextuid, uidv, utf8))
            nextuid += 1
            changed = True
        if not changed and len(seen) != len(entries) and len(seen & entries.keys()) != len(
                entries):
            changed = True
        if changed:
            try:
                _write_sizelist(self.path, nextuid, uidv, msgs)
            except OSError:
                pass  # as Courier: the session goes on with the numbers it gave

        self.messages = msgs

    # -- reading ----------------------------------------------------------------

    def read(self, msg: Pop3Message) -> bytes:
        """The message file's bytes (found again by basename if its flags changed)."""
        cur = os.fspath(self.path) + "/cur/"
        try:
            return _read_all(cur + msg.filename)
        except FileNotFoundError:
            pass
        self._refind(msg)
        return _read_all(cur + msg.filename)

    def _refind(self, msg: Pop3Message) -> None:
        for fn in _list(os.fspath(self.path) + "/cur"):
            if names.basename(fn) == msg.basename:
                msg.filename = fn
                return
        raise MailboxError(f"{msg.basename}: message no longer exists")

    def mark_seen(self, msg: Pop3Message) -> None:
        """Rename the message to carry the S flag (RETR), if it does not yet."""
        cut = msg.filename.rfind(":")
        if cut >= 0 and msg.filename.startswith("2,", cut + 1) and "S" in msg.filename[cut + 3:]:
            return
        flags = names.parse(msg.filename).flags
        new = names.with_flags(msg.filename, flags + "S")
        try:
            os.rename(self.path / "cur" / msg.filename, self.path / "cur" / new)
            msg.filename = new
        except FileNotFoundError:
            pass

    # -- update -----------------------------------------------------------------

    def commit(self, deleted: Iterable[Pop3Message]) -> list[str]:
        """Unlink the deleted messages, subtract them from maildirsize; return their names."""
        nbytes = 0
        count = 0
        removed: list[str] = []
        for msg in deleted:
            path = self.path / "cur" / msg.filename
            size = names.parse(msg.filename).size
            try:
                if size is None:
                    size = os.stat(path).st_size
                os.unlink(path)
            except FileNotFoundError:
                try:
                    self._refind(msg)
                except MailboxError:
                    continue  # already gone (another session)
                path = self.path / "cur" / msg.filename
                try:
                    if size is None:
                        size = os.stat(path).st_size
                    os.unlink(path)
                except FileNotFoundError:
                    continue
            nbytes += size
            count += 1
            removed.append(msg.filename)
        if count:
            # as Courier: an overgrown (or stale, over-quota) maildirsize is recounted
            # first, from the Maildir as it is now, and the delta still appended after it
            try:
                quota.read_usage(self.path, env_quota=os.environ.get("MAILDIRQUOTA"))
            except (OSError, quota.QuotaSpecError):
                pass
            quota.add_delta(self.path, -nbytes, -count)
        return removed
