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
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from courierpy.errors import CourierError
from courierpy.maildir import create, names, quota

__all__ = ["MailboxError", "Pop3Mailbox", "Pop3Message", "SIZELIST", "crlf_stats"]

SIZELIST = "courierpop3dsizelist"
_LEAD_RE = re.compile(r"\d*")


class MailboxError(CourierError):
    """The Maildir cannot be opened or read."""

    exit_code = 1


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


@dataclass(slots=True)
class _Entry:
    filename: str
    size: int
    uid: int
    uidv: int
    utf8: int


def _sort_key(filename: str) -> tuple[int, str]:
    lead = _LEAD_RE.match(filename).group(0)  # type: ignore[union-attr]
    return (int(lead) if lead else 0, names.basename(filename))


def crlf_stats(path: Path) -> tuple[int, int]:
    """(CRLF size, 1 if the header block holds 8-bit bytes else 0) of a message file."""
    with open(path, "rb") as f:
        data = f.read()
    # the header ends at the first empty line, "\r\n" counting as empty (observed)
    if data.startswith((b"\n", b"\r\n")):
        header = b""
    else:
        ends = [i for i in (data.find(b"\n\n"), data.find(b"\n\r\n")) if i >= 0]
        header = data[: min(ends)] if ends else data
    return len(data) + data.count(b"\n"), 0 if header.isascii() else 1


def _read_sizelist(path: Path) -> tuple[int, int, int, dict[str, _Entry]] | None:
    """(version, nextuid, uidv, entries by basename), or None when unusable."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    text = data.decode("utf-8", "surrogateescape")
    lines = text.split("\n")
    head = lines[0].split()
    if len(head) != 3 or head[0] not in ("/2", "/3"):
        return None
    try:
        version, nextuid, uidv = int(head[0][1:]), int(head[1]), int(head[2])
    except ValueError:
        return None
    entries: dict[str, _Entry] = {}
    for line in lines[1:]:
        parts = line.rsplit(" ", 2)
        if len(parts) != 3:
            continue
        filename, size_s, ids = parts
        fields = ids.split(":")
        try:
            size = int(size_s)
            uid, e_uidv = int(fields[0]), int(fields[1])
            utf8 = int(fields[2]) if version >= 3 and len(fields) > 2 else 0
        except (ValueError, IndexError):
            continue
        entries.setdefault(names.basename(filename), _Entry(filename, size, uid, e_uidv, utf8))
    return version, nextuid, uidv, entries


def _write_sizelist(maildir: Path, nextuid: int, uidv: int, msgs: Iterable[Pop3Message]) -> None:
    out = [f"/3 {nextuid} {uidv}\n"]
    out.extend(f"{m.filename} {m.size} {m.uid}:{m.uidv}:{m.utf8}\n" for m in msgs)
    tmp = maildir / "tmp" / names.tmp_name("pop3")
    with open(tmp, "wb") as f:
        f.write("".join(out).encode("utf-8", "surrogateescape"))
    os.rename(tmp, maildir / SIZELIST)


def _list(path: Path) -> list[str]:
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
        root = self.path
        if not (root / "cur").is_dir():
            raise MailboxError(f"{root}: not a Maildir")
        create.clean_tmp(root)
        for name in _list(root / "new"):
            target = name if ":" in name else name + names.INFO_PREFIX
            try:
                os.rename(root / "new" / name, root / "cur" / target)
            except FileNotFoundError:
                continue
        files = sorted(_list(root / "cur"), key=_sort_key)
        old = _read_sizelist(root / SIZELIST)
        if old is None:
            version, nextuid, uidv, entries = 0, 1, int(time.time() if now is None else now), {}
        else:
            version, nextuid, uidv, entries = old
        msgs: list[Pop3Message] = []
        seen: set[str] = set()
        changed = version != 3
        for fn in files:
            base = names.basename(fn)
            if base in seen:
                continue
            seen.add(base)
            entry = entries.get(base)
            if entry is not None:
                msgs.append(Pop3Message(fn, base, entry.size, entry.uid, entry.uidv, entry.utf8))
                continue
            try:
                size, utf8 = crlf_stats(root / "cur" / fn)
            except FileNotFoundError:
                continue  # removed meanwhile by another session
            msgs.append(Pop3Message(fn, base, size, nextuid, uidv, utf8))
            nextuid += 1
            changed = True
        if len(seen & entries.keys()) != len(entries):
            changed = True
        if changed:
            _write_sizelist(root, nextuid, uidv, msgs)
        self.messages = msgs

    # -- reading ----------------------------------------------------------------

    def _open_file(self, msg: Pop3Message):  # type: ignore[no-untyped-def]
        try:
            return open(self.path / "cur" / msg.filename, "rb")
        except FileNotFoundError:
            pass
        base = msg.basename
        for fn in _list(self.path / "cur"):
            if names.basename(fn) == base:
                msg.filename = fn
                return open(self.path / "cur" / fn, "rb")
        raise MailboxError(f"{base}: message no longer exists")

    def read(self, msg: Pop3Message) -> bytes:
        with self._open_file(msg) as f:
            return f.read()

    def mark_seen(self, msg: Pop3Message) -> None:
        """Rename the message to carry the S flag (RETR), if it does not yet."""
        flags = names.parse(msg.filename).flags
        if "S" in flags:
            return
        new = names.with_flags(msg.filename, flags + "S")
        try:
            os.rename(self.path / "cur" / msg.filename, self.path / "cur" / new)
            msg.filename = new
        except FileNotFoundError:
            pass

    # -- update -----------------------------------------------------------------

    def commit(self, deleted: Iterable[Pop3Message]) -> int:
        """Unlink the deleted messages, subtract them from maildirsize; return how many."""
        nbytes = 0
        count = 0
        for msg in deleted:
            path = self.path / "cur" / msg.filename
            size = names.parse(msg.filename).size
            try:
                if size is None:
                    size = os.stat(path).st_size
                os.unlink(path)
            except FileNotFoundError:
                try:
                    fh = self._open_file(msg)
                except MailboxError:
                    continue  # already gone (another session)
                fh.close()
                path = self.path / "cur" / msg.filename
                try:
                    if size is None:
                        size = os.stat(path).st_size
                    os.unlink(path)
                except FileNotFoundError:
                    continue
            nbytes += size
            count += 1
        if count:
            quota.add_delta(self.path, -nbytes, -count)
        return count
