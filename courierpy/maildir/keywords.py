"""IMAP keywords of a Maildir folder, stored the Courier way in ``courierimapkeywords/``.

Layout (see Courier's README.imapkeywords and the project spec, section 5.3)::

    courierimapkeywords/:list          the stable snapshot
    courierimapkeywords/<base>         a pending update: the message's whole keyword set
    courierimapkeywords/.<N>.<base>    an update already merged by a reader, kept for a while

``:list`` holds one keyword per line, an empty line, then one
``<base>:<idx> <idx>...`` line per message that has keywords (``idx`` counts
from 0 in the first section).  An update file holds one keyword per line;
reading stops at the first empty line.

Writers never lock: an update is written in the folder's ``tmp/`` and renamed
into place (replace), or linked into place so that a concurrent pending update
is never overwritten (add/remove, which must read first).  A reader merges
``:list`` with the update files (the newest wins: a plain ``<base>`` beats any
``.<N>.<base>``, and a larger N beats a smaller one), writes the merged state
into a new ``:list`` when it changed, renames plain updates to
``.<T+1>.<base>`` (``T = now // 300``) and removes versions that can no longer
matter.  Versions with ``N >= T`` are kept and re-applied by every reader for a
few minutes, so that an update renamed by one reader while another reader was
writing an older ``:list`` is never lost.

Keywords compare case-insensitively (ASCII letters) unless ``case_sensitive``
is set; the spelling kept is the first one met.  ``:list`` is written byte
for byte as Courier writes it: its keyword section follows Courier's hash
table (see :func:`keyword_hash`), which also decides which spelling survives
when case variants meet.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import time
from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from courierpy.errors import EX_TEMPFAIL, CourierError

__all__ = [
    "KEYWORDS_DIR",
    "KeywordError",
    "KeywordState",
    "load",
    "read_keywords",
    "set_keywords",
    "update_keywords",
    "format_list",
    "hash_order",
    "keyword_hash",
    "parse_list",
]

KEYWORDS_DIR = "courierimapkeywords"
LIST_NAME = ":list"
#: Length of one version period, seconds.
PERIOD = 300
#: Update files for messages that are gone are removed once this old (ctime).
STALE_SECONDS = 15 * 60
#: How often a reader restarts when an update file vanishes under it.
_MAX_RESTARTS = 100

_VERSIONED = re.compile(r"\.(\d+)\.(.+)\Z", re.S)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class KeywordError(CourierError):
    """The keyword store of a folder cannot be read or written."""

    exit_code = 1
    #: maildirkw reports nothing for this failure (as Courier's does).
    silent = False


@dataclass
class KeywordState:
    """The merged keywords of a folder.

    ``messages`` keeps Courier's order: the ``:list`` order, then messages met
    only in update files, in directory order.  A message whose update file
    cleared every keyword is present with an empty list.
    """

    messages: dict[str, list[str]] = field(default_factory=dict)


def _fold(keyword: str, case_sensitive: bool) -> str:
    return keyword if case_sensitive else keyword.translate(_ASCII_LOWER)


def _sort_key(keyword: str) -> bytes:
    return keyword.encode("utf-8", "surrogateescape")


class _Spelling:
    """Canonical spelling of each keyword (first one met wins)."""

    def __init__(self, case_sensitive: bool) -> None:
        self.case_sensitive = case_sensitive
        self._seen: dict[str, str] = {}

    def add(self, keyword: str) -> str:
        return self._seen.setdefault(_fold(keyword, self.case_sensitive), keyword)

    def normalize(self, keywords: Iterable[str]) -> list[str]:
        """Canonical, de-duplicated, sorted by byte value."""
        out: dict[str, str] = {}
        for kw in keywords:
            spelled = self.add(kw)
            out.setdefault(_fold(spelled, self.case_sensitive), spelled)
        return sorted(out.values(), key=_sort_key)


# -- the file formats -----------------------------------------------------------


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def parse_update(data: bytes) -> list[str]:
    """Keywords of an update file: one per line, up to the first empty line."""
    out = []
    for line in _decode(data).split("\n"):
        if line == "":
            break
        out.append(line)
    return out


def format_update(keywords: Iterable[str]) -> bytes:
    return b"".join(_encode(kw) + b"\n" for kw in keywords)


def parse_list(data: bytes) -> tuple[list[str], dict[str, list[str]]]:
    """``:list`` contents → (keywords section, basename → keywords)."""
    text = _decode(data)
    lines = text.split("\n")
    keywords: list[str] = []
    i = 0
    while i < len(lines) and lines[i] != "":
        keywords.append(lines[i])
        i += 1
    messages: dict[str, list[str]] = {}
    for line in lines[i + 1 :]:
        base, sep, idx = line.rpartition(":")
        if not sep or not base:
            continue
        kws = []
        for tok in idx.split():
            if tok.isdigit() and int(tok) < len(keywords):
                kws.append(keywords[int(tok)])
        messages[base] = kws
    return keywords, messages


def keyword_hash(keyword: str, case_sensitive: bool = False) -> int:
    """Courier's hash of a keyword: bytes shifted in, reduced by 0x11301 past 16 bits.

    (Found by observation: the ``:list`` keyword section is ordered by this
    hash modulo 43, then by name.)
    """
    h = 0
    for c in _encode(_fold(keyword, case_sensitive)):
        h = (h << 1) ^ c
        if h & 0x10000:
            h ^= 0x11301
    return h


_LIST_BUCKETS = 43


def _list_order(keyword: str, case_sensitive: bool) -> tuple[int, bytes]:
    name = _encode(_fold(keyword, case_sensitive))
    return keyword_hash(keyword, case_sensitive) % _LIST_BUCKETS, name


def hash_order(keywords: Iterable[str], case_sensitive: bool = False) -> list[str]:
    """*keywords* in Courier's hash-table order.

    The order of ``:list``'s keyword section, and the order in which Courier's
    imapd lists a folder's keywords in ``* FLAGS`` and ``PERMANENTFLAGS``
    (before the system flags).  In ``FETCH FLAGS`` it lists a message's
    keywords in byte order instead, after its system flags.
    """
    return sorted(keywords, key=lambda kw: _list_order(kw, case_sensitive))


def format_list(messages: dict[str, list[str]], case_sensitive: bool = False) -> bytes:
    """A ``:list`` for *messages* (messages without keywords are left out).

    Byte for byte what Courier writes: the keywords in use, in its hash-table
    order; then each message, in the order given, with the indexes of its
    keywords in byte order.
    """
    used: dict[str, None] = {}
    for kws in messages.values():
        for kw in kws:
            used.setdefault(kw)
    ordered = hash_order(used, case_sensitive)
    index = {kw: i for i, kw in enumerate(ordered)}
    body = []
    for base, kws in messages.items():
        if not kws:
            continue
        nums = " ".join(str(index[kw]) for kw in sorted(kws, key=_sort_key))
        body.append(f"{base}:{nums}\n")
    head = "".join(f"{kw}\n" for kw in ordered)
    return _encode(head + "\n" + "".join(body))


# -- file helpers -----------------------------------------------------------------


def _tmp_name(suffix: str = "") -> str:
    now = time.time()
    sec = int(now)
    usec = int((now - sec) * 1_000_000)
    return f"{sec}.M{usec}P{os.getpid()}{suffix}.{socket.gethostname()}"


def _write_tmp(folder: Path, data: bytes) -> Path:
    """Write *data* to a new file in ``folder/tmp`` (fsynced); its path."""
    tmpdir = folder / "tmp"
    for _ in range(1000):
        path = tmpdir / _tmp_name()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            time.sleep(0.001)
            continue
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        return path
    raise KeywordError(f"{tmpdir}: cannot create a unique temporary file")


def _ensure_dir(folder: Path) -> Path:
    kwdir = folder / KEYWORDS_DIR
    try:
        kwdir.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except FileNotFoundError:
        raise KeywordError(f"{folder}: No such file or directory") from None
    return kwdir


def _read_file(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# -- reading ----------------------------------------------------------------------


@dataclass
class _Seen:
    plain: bool = False
    versions: list[int] = field(default_factory=list)

    def winner(self, base: str) -> str:
        if self.plain:
            return base
        return f".{max(self.versions)}.{base}"


class _Restart(Exception):
    pass


def load(
    folder: str | os.PathLike[str],
    *,
    present: Container[str] | None = None,
    case_sensitive: bool = False,
    now: float | None = None,
    compact: bool = True,
) -> KeywordState:
    """Merge ``:list`` with the pending updates of *folder*.

    *present* is the set of message basenames now in ``new/`` and ``cur/``;
    when given, entries for other messages are dropped and their update files
    removed once older than 15 minutes.  ``None`` (what ``maildirkw`` does)
    keeps every entry.  With *compact* the merged state is written back and
    old versions are cleaned up as Courier's readers do.
    """
    folder = Path(folder)
    for _ in range(_MAX_RESTARTS):
        try:
            return _load_once(folder, present, case_sensitive, now, compact)
        except _Restart:
            continue
    raise KeywordError(f"{folder / KEYWORDS_DIR}: keeps changing, giving up")


def _load_once(
    folder: Path,
    present: Container[str] | None,
    case_sensitive: bool,
    now: float | None,
    compact: bool,
) -> KeywordState:
    kwdir = folder / KEYWORDS_DIR
    when = time.time() if now is None else now
    t = int(when // PERIOD)
    spelling = _Spelling(case_sensitive)

    raw_list = _read_file(kwdir / LIST_NAME)
    list_keywords, list_messages = parse_list(raw_list or b"")
    for kw in list_keywords:
        spelling.add(kw)

    merged: dict[str, list[str]] = {}
    skipped_missing = False
    for base, kws in list_messages.items():
        if present is not None and base not in present:
            skipped_missing = True
            continue
        merged[base] = spelling.normalize(kws)

    try:
        names = os.listdir(kwdir)
    except FileNotFoundError:
        return KeywordState(merged)

    seen: dict[str, _Seen] = {}
    for name in names:
        if name == LIST_NAME:
            continue
        if name.startswith("."):
            m = _VERSIONED.match(name)
            if m is None:
                continue
            n, base = int(m.group(1)), m.group(2)
        else:
            n, base = None, name
        if present is not None and base not in present:
            if compact:
                try:
                    st = os.stat(kwdir / name)
                except FileNotFoundError:
                    continue
                if when - st.st_ctime >= STALE_SECONDS:
                    _unlink(kwdir / name)
            continue
        entry = seen.setdefault(base, _Seen())
        if n is None:
            entry.plain = True
        else:
            entry.versions.append(n)

    # Apply in Courier's order: messages already in :list first, then the others.
    order = [b for b in merged if b in seen] + [b for b in seen if b not in merged]
    changed = skipped_missing
    plain_files: list[str] = []
    for base in order:
        entry = seen[base]
        data = _read_file(kwdir / entry.winner(base))
        if data is None:
            raise _Restart
        kws = spelling.normalize(parse_update(data))
        if merged.get(base) != kws and (kws or merged.get(base)):
            changed = True
        merged[base] = kws
        if entry.plain:
            plain_files.append(base)

    if not compact:
        return KeywordState(merged)

    if changed or plain_files:
        tmp = _write_tmp(folder, format_list(merged, case_sensitive))
        os.rename(tmp, kwdir / LIST_NAME)
        for base in plain_files:
            try:
                os.rename(kwdir / base, kwdir / f".{t + 1}.{base}")
            except FileNotFoundError:
                pass

    for base, entry in seen.items():
        lows = sorted(n for n in entry.versions if n < t)
        if len(entry.versions) == 1 and lows and not entry.plain:
            # A lone old version: its contents are in :list now.
            _unlink(kwdir / f".{lows[0]}.{base}")
            continue
        for n in lows[:-1]:
            _unlink(kwdir / f".{n}.{base}")

    return KeywordState(merged)


def read_keywords(
    folder: str | os.PathLike[str],
    *,
    present: Container[str] | None = None,
    case_sensitive: bool = False,
) -> dict[str, set[str]]:
    """basename → keywords of every message of *folder* that has keywords."""
    state = load(folder, present=present, case_sensitive=case_sensitive)
    return {base: set(kws) for base, kws in state.messages.items() if kws}


# -- writing ----------------------------------------------------------------------


def set_keywords(
    folder: str | os.PathLike[str],
    basename: str,
    keywords: Iterable[str],
    *,
    case_sensitive: bool = False,
) -> list[str]:
    """Replace the keywords of message *basename*; the keywords written.

    As ``maildirkw`` without ``-a``/``-r``: the last writer wins.  Spellings
    follow the ones already in ``:list``.
    """
    folder = Path(folder)
    _check_basename(basename)
    kwdir = _ensure_dir(folder)
    spelling = _Spelling(case_sensitive)
    raw_list = _read_file(kwdir / LIST_NAME)
    for kw in parse_list(raw_list or b"")[0]:
        spelling.add(kw)
    kws = spelling.normalize(keywords)
    tmp = _write_tmp_or_fail(folder, format_update(kws))
    try:
        os.rename(tmp, kwdir / basename)
    except OSError as e:
        _unlink(tmp)
        raise KeywordError(f"{kwdir}/{basename}: {os.strerror(e.errno or errno.EIO)}") from None
    return kws


def update_keywords(
    folder: str | os.PathLike[str],
    basename: str,
    *,
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
    case_sensitive: bool = False,
    now: float | None = None,
) -> list[str]:
    """Add and remove keywords of *basename* without losing a concurrent update.

    The new set is linked into place; if another writer's pending update is
    already there, the store is read again (which merges it) and the change is
    redone on top of it.
    """
    folder = Path(folder)
    _check_basename(basename)
    kwdir = _ensure_dir(folder)
    add = list(add)
    remove = list(remove)
    for _ in range(_MAX_RESTARTS):
        state = load(folder, case_sensitive=case_sensitive, now=now)
        spelling = _Spelling(case_sensitive)
        for kws in state.messages.values():
            for kw in kws:
                spelling.add(kw)
        current = state.messages.get(basename, [])
        drop = {_fold(kw, case_sensitive) for kw in remove}
        kept = [kw for kw in current + add if _fold(kw, case_sensitive) not in drop]
        new = spelling.normalize(kept)
        tmp = _write_tmp_or_fail(folder, format_update(new))
        staged = kwdir / f".tmp.{int(time.time())}{tmp.name}"
        os.rename(tmp, staged)
        try:
            os.link(staged, kwdir / basename)
        except FileExistsError:
            continue
        except OSError as e:
            # Courier's maildirkw -a/-r fails silently here (exit 1).
            err = KeywordError(f"{kwdir}/{basename}: {os.strerror(e.errno or errno.EIO)}")
            err.silent = True
            raise err from None
        finally:
            _unlink(staged)
        return new
    raise KeywordError(f"{kwdir}: too many concurrent updates of {basename}")


def _write_tmp_or_fail(folder: Path, data: bytes) -> Path:
    try:
        return _write_tmp(folder, data)
    except FileNotFoundError:
        raise KeywordError(f"{folder}: No such file or directory") from None
    except OSError as e:
        err = KeywordError(f"{folder}: {os.strerror(e.errno or errno.EIO)}")
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            err.exit_code = EX_TEMPFAIL
        raise err from None


def _check_basename(basename: str) -> None:
    if basename == LIST_NAME:
        raise KeywordError(f"invalid message name: {basename}")


# -- IMAP_USELOCKS-compatible lock (maildirkw -l) ------------------------------------

LOCK_NAME = "courier.lock"


class FolderLock:
    """Courier's dot-lock ``tmp/courier.lock`` (content ``<pid>:<host>``).

    Taken by linking a freshly written file in ``tmp/`` to the lock name, which
    is atomic on NFS too.  A lock left by a dead process of this host is broken.
    """

    def __init__(self, folder: str | os.PathLike[str], *, timeout: float = 60.0) -> None:
        self.path = Path(folder) / "tmp" / LOCK_NAME
        self.folder = Path(folder)
        self.timeout = timeout
        self._held = False

    def __enter__(self) -> FolderLock:
        host = socket.gethostname()
        deadline = time.monotonic() + self.timeout
        while True:
            tmp = self.folder / "tmp" / _tmp_name("_courierlock")
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            except FileNotFoundError:
                raise KeywordError(f"{self.folder}: No such file or directory") from None
            try:
                os.write(fd, f"{os.getpid()}:{host}".encode())
            finally:
                os.close(fd)
            try:
                os.link(tmp, self.path)
                self._held = True
                return self
            except FileExistsError:
                self._break_if_stale(host)
            finally:
                _unlink(tmp)
            if time.monotonic() > deadline:
                raise KeywordError(f"{self.path}: locked by another process")
            time.sleep(0.05)

    def _break_if_stale(self, host: str) -> None:
        data = _read_file(self.path)
        if data is None:
            return
        pid, _, owner = data.decode("ascii", "replace").partition(":")
        if owner != host or not pid.isdigit():
            return
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            _unlink(self.path)
        except PermissionError:
            pass

    def __exit__(self, *exc: object) -> None:
        if self._held:
            _unlink(self.path)
            self._held = False
