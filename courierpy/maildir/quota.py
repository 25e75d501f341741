"""Maildir++ quota: the ``maildirsize`` file, as Courier reads and writes it.

Format (README.maildirquota)::

    1000000S,1000C          the quota: S = bytes, C = messages (order kept as given)
               0            0     one "%12ld %12ld" line per change: bytes, count
             513            1     (negative for removals)

The totals are the sums of all count lines. The file is recalculated from
scratch (a scan of ``new/`` and ``cur/`` of the Maildir and of every folder
except Trash, sizes taken from ``,S=`` in file names, messages flagged ``T``
not counted) when it is missing, when it is 5120 bytes or longer, or when it
says the Maildir is over quota and it has more than one count line or is at
least 15 minutes old. A recalculated file is written in ``tmp/`` and renamed.

Lines that do not parse count as zero and an unparseable quota line means "no
quota": a damaged file never stops delivery or crashes a server, and the next
recalculation repairs it. Only the top Maildir has a ``maildirsize``; a
folder (one holding ``maildirfolder``) uses its parent's.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from courierpy.errors import EX_NOPERM, CourierError
from courierpy.maildir import folders, names

__all__ = [
    "QuotaExceeded",
    "QuotaSpec",
    "QuotaSpecError",
    "Usage",
    "add_delta",
    "check_add",
    "parse_spec",
    "read_usage",
    "recalculate",
    "set_quota",
]

MAILDIRSIZE = "maildirsize"
#: A maildirsize this long is always recalculated.
RECALC_SIZE = 5120
#: An over-quota maildirsize older than this is recalculated.
RECALC_AGE = 15 * 60
TRASH = ".Trash"

_ITEM_RE = re.compile(r"^\s*(\d+)([SC])\s*$")


class QuotaExceeded(CourierError):
    """Adding the message would exceed the quota (deliverquota: exit 77)."""

    exit_code = EX_NOPERM

    def __init__(self, message: str = "Mail quota exceeded.") -> None:
        super().__init__(message)


class QuotaSpecError(CourierError):
    """A quota specification such as ``10X`` cannot be parsed."""

    exit_code = 1


@dataclass(frozen=True, slots=True)
class QuotaSpec:
    """A parsed quota line; None means no limit of that kind."""

    text: str
    max_bytes: int | None
    max_count: int | None

    @property
    def unlimited(self) -> bool:
        return self.max_bytes is None and self.max_count is None


@dataclass(frozen=True, slots=True)
class Usage:
    """What maildirsize (or a recalculation) says about a Maildir."""

    spec: QuotaSpec | None
    bytes: int
    count: int
    recalculated: bool

    def over(self, add_bytes: int = 0, add_count: int = 0) -> bool:
        """Whether adding *add_bytes*/*add_count* would exceed the quota."""
        if self.spec is None:
            return False
        if self.spec.max_bytes is not None and add_bytes >= 0 and \
                self.bytes + add_bytes > self.spec.max_bytes:
            return True
        return (self.spec.max_count is not None and add_count >= 0
                and self.count + add_count > self.spec.max_count)

    def percent(self) -> int:
        """How full the Maildir is, in percent of the tighter limit (0 without quota)."""
        if self.spec is None:
            return 0
        p = 0
        if self.spec.max_bytes:
            p = max(p, self.bytes * 100 // self.spec.max_bytes)
        if self.spec.max_count:
            p = max(p, self.count * 100 // self.spec.max_count)
        return p


def parse_spec(text: str) -> QuotaSpec:
    """Parse ``1000000S,1000C`` (either part optional, order kept)."""
    text = text.strip()
    max_bytes = max_count = None
    if not text:
        raise QuotaSpecError(f"quota string '{text}' not parseable")
    for item in text.split(","):
        m = _ITEM_RE.match(item)
        if not m:
            raise QuotaSpecError(f"quota string '{text}' not parseable")
        if m.group(2) == "S":
            max_bytes = int(m.group(1))
        else:
            max_count = int(m.group(1))
    return QuotaSpec(text, max_bytes, max_count)


def _leading_int(s: str) -> int:
    m = re.match(r"\s*(-?\d+)", s)
    return int(m.group(1)) if m else 0


def _message_size(dirpath: str, filename: str) -> int | None:
    """Size from ``,S=`` (as atol: ``,S=abc`` is 0), else stat; None if gone."""
    base = names.basename(filename)
    i = base.find(",S=")
    if i >= 0:
        return _leading_int(base[i + 3:].split(",")[0])
    try:
        return os.stat(os.path.join(dirpath, filename)).st_size
    except OSError:
        return None


def _scan_totals(root: Path) -> tuple[int, int, float]:
    """Bytes and count of every message except Trash and ``T``-flagged ones."""
    total = count = 0
    newest = 0.0
    dirs = [root]
    with os.scandir(root) as it:
        for entry in it:
            n = entry.name
            if n.startswith(".") and n not in (".", "..", TRASH) and entry.is_dir():
                dirs.append(Path(entry.path))
    for d in dirs:
        for sub in ("new", "cur"):
            path = os.path.join(d, sub)
            try:
                newest = max(newest, os.stat(path).st_mtime)
                it = os.scandir(path)
            except OSError:
                continue
            with it:
                for entry in it:
                    if entry.name.startswith("."):
                        continue
                    if "T" in names.parse(entry.name).flags:
                        continue
                    size = _message_size(path, entry.name)
                    if size is None:
                        continue
                    total += size
                    count += 1
    return total, count, newest


def _format_line(nbytes: int, ncount: int) -> str:
    return f"{nbytes:12d} {ncount:12d}\n"


def _write_via_tmp(root: Path, content: str) -> None:
    tmp = root / "tmp" / names.tmp_name("NeWmAiLdIrSiZe")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, root / MAILDIRSIZE)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def recalculate(maildir: str | os.PathLike[str], spec: QuotaSpec | None) -> Usage:
    """Count the Maildir afresh and rewrite maildirsize (if there is a quota)."""
    root = folders.root_of(maildir)
    total, count, _ = _scan_totals(root)
    if spec is not None:
        _write_via_tmp(root, spec.text + "\n" + _format_line(total, count))
    return Usage(spec, total, count, True)


def _read_file(path: Path) -> tuple[str, float] | None:
    try:
        with open(path, "rb") as f:
            data = f.read(RECALC_SIZE)
            mtime = os.fstat(f.fileno()).st_mtime
    except FileNotFoundError:
        return None
    if len(data) >= RECALC_SIZE:
        return "", -1.0
    return data.decode("utf-8", "replace"), mtime


def read_usage(maildir: str | os.PathLike[str], *, add_bytes: int = 0, add_count: int = 0,
               env_quota: str | None = None, warn_percent: int | None = None,
               now: float | None = None) -> Usage:
    """The Maildir's quota and usage, recalculating when Courier would.

    *env_quota* (``MAILDIRQUOTA``) overrides the file's quota line: when it
    differs, the file is recalculated with it. Without a maildirsize and
    without *env_quota* there is no quota (and no file is created). "Over
    quota" for the recalculation rule means over after adding
    *add_bytes*/*add_count*, or at least *warn_percent* full when given
    (deliverquota -w).
    """
    root = folders.root_of(maildir)
    path = root / MAILDIRSIZE
    env_spec = None
    if env_quota:
        try:
            env_spec = parse_spec(env_quota)
        except QuotaSpecError:
            env_spec = None
    got = _read_file(path)
    if got is None:
        if env_spec is None:
            return Usage(None, 0, 0, False)
        return recalculate(root, env_spec)
    text, mtime = got
    if mtime < 0:  # too long: recalculate with the quota line it starts with
        spec = env_spec or _spec_from_first_line(path)
        return recalculate(root, spec) if spec else Usage(None, 0, 0, False)
    complete = text.split("\n")  # a last line without LF counts too, as in Courier
    first = complete[0]
    try:
        spec = parse_spec(first) if first.strip() else None
    except QuotaSpecError:
        spec = None
    if env_spec is not None and (spec is None or spec.text != env_spec.text):
        return recalculate(root, env_spec)
    total = count = 0
    nlines = 0
    for line in complete[1:]:
        parts = line.split()
        if not parts:
            continue
        if len(parts) >= 1:
            total += _leading_int(parts[0])
        if len(parts) >= 2:
            count += _leading_int(parts[1])
        nlines += 1
    usage = Usage(spec, total, count, False)
    looks_over = usage.over(add_bytes, add_count) or (
        warn_percent is not None and usage.percent() >= warn_percent)
    if spec is not None and looks_over:
        now = time.time() if now is None else now
        if nlines > 1 or now - mtime >= RECALC_AGE:
            return recalculate(root, spec)
    return usage


def _spec_from_first_line(path: Path) -> QuotaSpec | None:
    try:
        with open(path, "rb") as f:
            first = f.readline(256).decode("utf-8", "replace")
        return parse_spec(first)
    except (OSError, QuotaSpecError):
        return None


def check_add(maildir: str | os.PathLike[str], add_bytes: int, add_count: int = 1, *,
              env_quota: str | None = None) -> Usage:
    """Raise QuotaExceeded if adding the message would go over quota.

    As in Courier, a maildirsize that says "over" is recounted first when it
    has more than one count line or is 15 minutes old.
    """
    usage = read_usage(maildir, add_bytes=add_bytes, add_count=add_count,
                       env_quota=env_quota)
    if usage.over(add_bytes, add_count):
        raise QuotaExceeded()
    return usage


def add_delta(maildir: str | os.PathLike[str], nbytes: int, ncount: int) -> bool:
    """Append a ``%12ld %12ld`` line if maildirsize exists; return whether it did."""
    path = folders.root_of(maildir) / MAILDIRSIZE
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND)
    except FileNotFoundError:
        return False
    try:
        line = _format_line(nbytes, ncount).encode()
        end = os.lseek(fd, 0, os.SEEK_END)
        if end > 0 and os.pread(fd, 1, end - 1) != b"\n":
            line = b"\n" + line  # a damaged last line: do not glue ours onto it
        os.write(fd, line)
    finally:
        os.close(fd)
    return True


def set_quota(maildir: str | os.PathLike[str], spec_text: str) -> Usage:
    """Install quota *spec_text* (maildirmake -q): recount and write maildirsize."""
    spec = parse_spec(spec_text)
    return recalculate(maildir, spec)
