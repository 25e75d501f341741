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

Speed (what a login costs on 10,000 messages): the snapshot is held in
columns (lists of names, sizes, UIDs, ...) indexed by message number, not
one object per message. A ``/3`` list in the usual shape (every name with
one ``:`` info part) that matches the folder is taken in bulk: one split of
the whole text into tokens, checked by rebuilding the text from them, no
per-line parsing and no sort (the list is in message order). A first login
reads each new file with one ``open``/``read``/``close`` relative to a
descriptor of ``cur/``, while a forked child moves ``new/`` to ``cur/`` (both wait
in the kernel, not on the interpreter lock).
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterable, Sequence
from itertools import repeat
from operator import itemgetter, sub
from pathlib import Path

from courierpy.errors import CourierError
from courierpy.maildir import create, names, quota

__all__ = ["MailboxError", "Pop3Mailbox", "SIZELIST", "check_home", "check_maildir",
           "crlf_stats"]

SIZELIST = "courierpop3dsizelist"
_DIGITS = "0123456789"
#: from this many files in new/, a child process moves them to cur/ while cur/ is read
_PARALLEL_MOVES = 64


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


def _base(filename: str) -> str:
    cut = filename.rfind(":")
    return filename if cut < 0 else filename[:cut]


def _key(filename: str) -> str:
    """What ties a message to its sizelist line: the name up to its first ``:``, included
    (Courier's match: ``X`` does not match a file ``X:2,``; ``X:a:2,`` matches ``X:2,``)."""
    cut = filename.find(":")
    return filename if cut < 0 else filename[:cut + 1]


def _sort_key(filename: str) -> tuple[int, str]:
    rest = filename.lstrip(_DIGITS)
    lead = filename[: len(filename) - len(rest)]
    return (int(lead) if lead.isascii() and lead else 0, _base(filename))


def _sorted(listing: list[str]) -> list[str]:
    """*listing* in Courier's message order (leading integer, then the name up to ``:``)."""
    if listing:
        # The usual case in bulk: every name has one ":" and leading digits of one
        # length without a leading zero. Then the numeric order is the text order,
        # and with ":" (the only one) made "\0" the text order is the base order.
        leads = set(map(sub, map(len, listing), map(len, map(str.lstrip, listing,
                                                               repeat(_DIGITS)))))
        if (len(leads) == 1 and 0 not in leads
                and not any(map(str.startswith, listing, repeat("0")))
                and sum(map(str.count, listing, repeat(":"))) == len(listing)
                and all(map(str.__contains__, listing, repeat(":")))
                and not any(map(str.__contains__, listing, repeat("\0")))):
            keys = sorted(map(str.replace, listing, repeat(":"), repeat("\0")))
            return list(map(str.replace, keys, repeat("\0"), repeat(":")))
    return sorted(listing, key=_sort_key)


def _read_fd(fd: int) -> bytes:
    data = os.read(fd, 65536)
    if len(data) == 65536:
        chunks = [data]
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        data = b"".join(chunks)
    return data


def _read_all(path: str, dir_fd: int | None = None) -> bytes:
    fd = os.open(path, os.O_RDONLY, dir_fd=dir_fd)
    try:
        return _read_fd(fd)
    finally:
        os.close(fd)


def _header_8bit(data: bytes) -> int:
    # the header ends at the first empty line, "\r\n" counting as empty (observed)
    if data.startswith((b"\n", b"\r\n")):
        return 0
    end = data.find(b"\n\n")
    crlf = data.find(b"\n\r\n", 0, len(data) if end < 0 else end)
    if crlf >= 0:
        end = crlf
    header = data if end < 0 else data[:end]
    return 0 if header.isascii() else 1


def crlf_stats(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(CRLF size, 1 if the header block holds 8-bit bytes else 0) of a message file."""
    data = _read_all(os.fspath(path))
    return len(data) + data.count(b"\n"), 0 if data.isascii() else _header_8bit(data)


def _stats_of(dir_fd: int, filenames: Iterable[str],
              into: dict[str, tuple[int, int]]) -> None:
    """crlf_stats of each file of *dir_fd* into *into*; files gone meanwhile are left out."""
    op, rd, cl = os.open, os.read, os.close
    for fn in filenames:
        try:
            fd = op(fn, os.O_RDONLY, dir_fd=dir_fd)
        except FileNotFoundError:
            continue  # removed meanwhile by another session
        try:
            data = rd(fd, 65536)
            if len(data) == 65536:
                chunks = [data]
                while chunk := rd(fd, 1 << 20):
                    chunks.append(chunk)
                data = b"".join(chunks)
        finally:
            cl(fd)
        into[fn] = (len(data) + data.count(b"\n"),
                    0 if data.isascii() else _header_8bit(data))


Entries = dict[str, tuple[int, int, int, int]]


def _parse_lines(text: str, version: int) -> tuple[Entries, int]:
    """({key: (size, uid, uidv, utf8)}, number of valid lines) of a sizelist, line by line.

    As Courier: a last line without LF is ignored, and a later line for the same
    message wins.
    """
    entries: Entries = {}
    v3 = version >= 3
    count = 0
    for line in text.split("\n")[:-1]:
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
        entries[_key(filename)] = entry
        count += 1
    return entries, count


class _Columns:
    """A ``/3`` list in the usual shape, split in bulk (see the module docstring).

    The usual shape: each line is ``name:info size uid:uidv:utf8`` (one ``:`` in
    the name, no other blank). The text is cut at every blank and ``:`` and
    checked by rebuilding it from the pieces. Names stay bytes here; they are
    decoded when used.
    """

    __slots__ = ("bases", "sizes", "uids", "uidvs", "utf8")

    def __init__(self, data: bytes, start: int) -> None:
        """The lines of *data* from offset *start* (after the version line)."""
        tokens = data.replace(b":", b" ").split()
        if len(tokens) != 3 + 6 * data.count(b"\n", start):
            raise ValueError("not in the usual shape")
        base, info, size = tokens[3::6], tokens[4::6], tokens[5::6]
        uid, uidv, utf8 = tokens[6::6], tokens[7::6], tokens[8::6]
        lines = map(b" ".join, zip(map(b":".join, zip(base, info, strict=True)), size,
                                   map(b":".join, zip(uid, uidv, utf8, strict=True)),
                                   strict=True))
        rebuilt = b"\n".join(lines)
        if base:
            ok = (len(data) - start == len(rebuilt) + 1 and data.endswith(b"\n")
                  and data.startswith(rebuilt, start))
        else:
            ok = len(data) == start
        if not ok:
            raise ValueError("not in the usual shape")  # the pieces are not in line
        self.bases = base
        self.sizes, self.utf8 = list(map(int, size)), list(map(int, utf8))
        self.uids, self.uidvs = list(map(int, uid)), list(map(int, uidv))

    def entries(self) -> Entries:
        keys = map(os.fsdecode, map(b"%b:".__mod__, self.bases))
        return dict(zip(keys, zip(self.sizes, self.uids, self.uidvs, self.utf8, strict=True),
                        strict=True))


class _Sizelist:
    """A courierpop3dsizelist as read: version, nextuid, uidv, and its entries."""

    def __init__(self, version: int, nextuid: int, uidv: int, data: bytes,
                 start: int) -> None:
        self.version, self.nextuid, self.uidv = version, nextuid, uidv
        self.columns: _Columns | None = None
        self._data: bytes | None = data
        self._start = start
        self._entries: Entries | None = None
        #: valid lines, known with the entries
        self.lines = 0
        if version == 3:
            try:
                self.columns = _Columns(data, start)
            except ValueError:
                pass

    @property
    def entries(self) -> Entries:
        """{key (see _key): (size, uid, uidv, utf8)}."""
        if self._entries is None:
            if self.columns is not None:
                self._entries = self.columns.entries()
                self.lines = len(self.columns.bases)
            else:
                text = (self._data or b"")[self._start:].decode("utf-8", "surrogateescape")
                self._entries, self.lines = _parse_lines(text, self.version)
            self._data = None
        return self._entries


def _read_sizelist(path: str) -> _Sizelist | None:
    """The list at *path*, or None when missing or unusable."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, size + 1)
        if len(data) > size:
            data += _read_fd(fd)  # it grew meanwhile
    finally:
        os.close(fd)
    cut = data.find(b"\n")
    words = (data if cut < 0 else data[:cut]).split()
    if len(words) != 3 or words[0] not in (b"/2", b"/3"):
        return None
    try:
        version, nextuid, uidv = int(words[0][1:]), int(words[1]), int(words[2])
    except ValueError:
        return None
    return _Sizelist(version, nextuid, uidv, data, len(data) if cut < 0 else cut + 1)


def _write_sizelist(maildir: Path, nextuid: int, uidv: int, box: Pop3Mailbox) -> None:
    head = f"/3 {nextuid} {uidv}\n"
    lines = map("%s %d %d:%d:%d\n".__mod__, zip(box.filenames, box.sizes, box.uids, box.uidvs,
                                                box.utf8, strict=True))
    tmp = Path(maildir) / "tmp" / names.tmp_name("pop3")
    with open(tmp, "wb") as f:
        f.write((head + "".join(lines)).encode("utf-8", "surrogateescape"))
    os.rename(tmp, maildir / SIZELIST)


def _list(path: str) -> list[str]:
    try:
        listing = os.listdir(path)
    except FileNotFoundError:
        return []
    if any(map(str.startswith, listing, repeat("."))):
        return [n for n in listing if not n.startswith(".")]
    return listing


class _Mover:
    """Moves ``new/X`` to ``cur/X:2,``, in this process or in a forked one.

    With many files the renames run in a child process while this one reads
    ``cur/``: both wait in the kernel, on different directories' work, and no
    interpreter lock is shared (a thread here would hand the lock over at every
    system call of either side).
    """

    def __init__(self, root: str, new_names: Sequence[str]) -> None:
        self.root, self.new_names = root, new_names
        self.targets = [n if ":" in n else n + names.INFO_PREFIX for n in new_names]
        self.lost = False  # some file was not moved (another session moved it first)
        self._pid = 0

    def _move(self) -> bool:
        new, cur = self.root + "/new/", self.root + "/cur/"
        lost = False
        for name, target in zip(self.new_names, self.targets, strict=True):
            try:
                os.rename(new + name, cur + target)
            except FileNotFoundError:
                lost = True
        return lost

    def start(self, *, background: bool) -> None:
        if background:
            try:
                pid = os.fork()
            except OSError:
                pid = -1
            if pid == 0:  # pragma: no cover - the child
                code = 2
                try:
                    code = 1 if self._move() else 0
                finally:
                    os._exit(code)
            if pid > 0:
                self._pid = pid
                return
        self.lost = self._move()

    def wait(self) -> None:
        if not self._pid:
            return
        try:
            _, status = os.waitpid(self._pid, 0)
            code = os.waitstatus_to_exitcode(status)
        except ChildProcessError:  # reaped for us (SIGCHLD ignored): outcome unknown
            code = 1
        self._pid = 0
        if code != 0:
            self.lost = True


class Pop3Mailbox:
    """A POP3 session's view of one Maildir (see the module docstring).

    Message *i* (0-based) is ``filenames[i]`` in ``cur/`` (the name changes
    when RETR marks it seen), of CRLF size ``sizes[i]``, UIDL
    ``UID<uids[i]>-<uidvs[i]>``, ``utf8[i]`` 1 when its header has 8-bit bytes.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        #: str, or bytes when taken from the list in bulk (see :meth:`filename`)
        self.filenames: list[str | bytes] = []
        self.sizes: list[int] = []
        self.uids: list[int] = []
        self.uidvs: list[int] = []
        self.utf8: list[int] = []

    def __len__(self) -> int:
        return len(self.filenames)

    def filename(self, i: int) -> str:
        """Message *i*'s current name in ``cur/``."""
        name = self.filenames[i]
        if isinstance(name, bytes):
            name = self.filenames[i] = os.fsdecode(name)
        return name

    def uidl(self, i: int) -> str:
        return f"UID{self.uids[i]}-{self.uidvs[i]}"

    def uidl_lines(self, numbers: Sequence[int]) -> bytes:
        """``n UID<uid>-<uidv>`` CRLF for each 0-based message number."""
        uids, uidvs = self.uids, self.uidvs
        if len(numbers) != len(uids):
            uids, uidvs = [uids[i] for i in numbers], [uidvs[i] for i in numbers]
        ordinals = range(1, len(uids) + 1) if isinstance(numbers, range) else [
            i + 1 for i in numbers]
        pairs = zip(ordinals, uids, uidvs, strict=True)
        return b"".join(map(b"%d UID%d-%d\r\n".__mod__, pairs))

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, now: float | None = None) -> Pop3Mailbox:
        box = cls(path)
        box.scan(now=now)
        return box

    def scan(self, *, now: float | None = None) -> None:
        root = os.fspath(self.path)
        cur = root + "/cur"
        if not os.path.isdir(cur):
            raise MailboxError(f"{root}: no cur directory",
                               b"-ERR Maildir invalid (no 'cur' directory)\r\n", after_login=True)
        create.clean_tmp(root)
        new_names = _list(root + "/new")
        old = _read_sizelist(root + "/" + SIZELIST)
        if not new_names and old is not None and old.columns is not None:
            blisting = os.listdir(os.fsencode(cur))
            if any(map(bytes.startswith, blisting, repeat(b"."))):
                blisting = [n for n in blisting if not n.startswith(b".")]
            if self._take_columns(old.columns, blisting):
                return  # the list is current: nothing read, sorted or written
            listing = list(map(os.fsdecode, blisting))
        else:
            listing = _list(cur)  # before new/ is moved in: its names are added later
        mover = None
        if new_names:
            mover = _Mover(root, new_names)
            mover.start(background=len(new_names) >= _PARALLEL_MOVES)
        self._scan(cur, listing, mover, old, now)

    def _scan(self, cur: str, listing: list[str], mover: _Mover | None, old: _Sizelist | None,
              now: float | None) -> None:
        if old is None:
            version, nextuid, uidv = 0, 1, int(time.time() if now is None else now)
            entries: Entries = {}
            lines = 0
        else:
            version, nextuid, uidv, entries = old.version, old.nextuid, old.uidv, old.entries
            lines = old.lines
        stats: dict[str, tuple[int, int]] = {}
        dir_fd = os.open(cur, os.O_RDONLY | os.O_DIRECTORY)
        try:
            _stats_of(dir_fd, (fn for fn in listing if _key(fn) not in entries), stats)
            if mover is not None:
                mover.wait()
                if mover.lost:  # moved by someone else: in cur/ under some name, or not
                    known = set(listing)
                    added = [fn for fn in _list(cur) if fn not in known]
                else:
                    added = mover.targets
                listing += added
                _stats_of(dir_fd, (fn for fn in added if _key(fn) not in entries), stats)
        finally:
            os.close(dir_fd)
        kept: list[tuple[str, int, int, int, int]] = []
        keep, entry_of, stats_of = kept.append, entries.get, stats.get
        seen: set[str] = set()  # basenames (a message twice under two names: the first)
        used: set[str] = set()  # the list's lines that still have their message
        changed = version != 3
        for fn in _sorted(listing):
            first = fn.find(":")  # _key and _base, inline: this runs once per message
            if first < 0:
                base = key = fn
            else:
                key, base = fn[:first + 1], fn[:fn.rfind(":")]
            if base in seen:
                continue
            entry = entry_of(key)
            if entry is not None:
                used.add(key)
                keep((fn, *entry))
            else:
                got = stats_of(fn)
                if got is None:
                    continue  # removed meanwhile by another session
                keep((fn, got[0], nextuid, uidv, got[1]))
                nextuid += 1
                changed = True
            seen.add(base)
        if kept:
            (self.filenames, self.sizes, self.uids, self.uidvs,  # type: ignore[assignment]
             self.utf8) = map(list, zip(*kept, strict=True))
        else:
            self.filenames, self.sizes, self.uids, self.uidvs, self.utf8 = [], [], [], [], []
        if changed or len(used) != lines:  # as Courier: new messages, or lines left over
            try:
                _write_sizelist(self.path, nextuid, uidv, self)
            except OSError:
                pass  # as Courier: the session goes on with the numbers it gave

    def _take_columns(self, cols: _Columns, listing: list[bytes]) -> bool:
        """Take the list as the snapshot if it holds exactly the folder's messages."""
        n = len(cols.bases)
        if len(listing) != n:
            return False
        # a name without ":" gets the base "", which no list in the usual shape holds
        by_base = dict(zip(map(itemgetter(0), map(bytes.rpartition, listing, repeat(b":"))),
                           listing, strict=True))
        # the same bases, each once (else the general path, which keeps a name's first line)
        if len(by_base) != n or by_base.keys() != set(cols.bases):
            return False
        self.filenames = list(map(by_base.__getitem__, cols.bases))  # decoded when used
        self.sizes, self.uids, self.uidvs, self.utf8 = (
            cols.sizes, cols.uids, cols.uidvs, cols.utf8)
        return True

    # -- reading ----------------------------------------------------------------

    def read(self, i: int) -> bytes:
        """Message *i*'s file bytes (found again by basename if its flags changed)."""
        cur = os.fspath(self.path) + "/cur/"
        try:
            return _read_all(cur + self.filename(i))
        except FileNotFoundError:
            pass
        self._refind(i)
        return _read_all(cur + self.filename(i))

    def _refind(self, i: int) -> None:
        base = _base(self.filename(i))
        for fn in _list(os.fspath(self.path) + "/cur"):
            if _base(fn) == base:
                self.filenames[i] = fn
                return
        raise MailboxError(f"{base}: message no longer exists")

    def mark_seen(self, i: int) -> None:
        """Rename message *i* to carry the S flag (RETR), if it does not yet."""
        filename = self.filename(i)
        cut = filename.rfind(":")
        if cut >= 0 and filename.startswith("2,", cut + 1) and "S" in filename[cut + 3:]:
            return
        flags = names.parse(filename).flags
        new = names.with_flags(filename, flags + "S")
        cur = os.fspath(self.path) + "/cur/"
        try:
            os.rename(cur + filename, cur + new)
            self.filenames[i] = new
        except FileNotFoundError:
            pass

    # -- update -----------------------------------------------------------------

    def commit(self, deleted: Iterable[int]) -> list[str]:
        """Unlink the deleted messages, subtract them from maildirsize; return their names."""
        nbytes = 0
        count = 0
        removed: list[str] = []
        cur = self.path / "cur"
        for i in deleted:
            path = cur / self.filename(i)
            size = names.parse(self.filename(i)).size
            try:
                if size is None:
                    size = os.stat(path).st_size
                os.unlink(path)
            except FileNotFoundError:
                try:
                    self._refind(i)
                except MailboxError:
                    continue  # already gone (another session)
                path = cur / self.filename(i)
                try:
                    if size is None:
                        size = os.stat(path).st_size
                    os.unlink(path)
                except FileNotFoundError:
                    continue
            nbytes += size
            count += 1
            removed.append(self.filename(i))
        if count:
            # as Courier: an overgrown (or stale, over-quota) maildirsize is recounted
            # first, from the Maildir as it is now, and the delta still appended after it
            try:
                quota.read_usage(self.path, env_quota=os.environ.get("MAILDIRQUOTA"))
            except (OSError, quota.QuotaSpecError):
                pass
            quota.add_delta(self.path, -nbytes, -count)
        return removed
