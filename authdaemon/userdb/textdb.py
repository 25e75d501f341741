"""The userdb text source (``/etc/courier/userdb``): reading and editing.

The source is one file, or a directory whose files (recursively, dot-files
skipped) each hold records.  A line is::

    name<TAB>field=value|field=value...     an account
    5000=<TAB>name                           a reverse uid record (pw2userdb)
    # comment                                and blank lines are ignored

Editing follows Courier's ``userdb`` tool: the edited file is locked with
``.lock.<file>`` beside it, rewritten to ``.tmp.<file>`` (mode 0600, then the
old file's mode) and renamed over the original; an edited record keeps its
place, a new one is appended.  We also fsync before the rename, which Courier
does not.

Text is handled as ``str`` decoded with ``surrogateescape``, so bytes that are
not UTF-8 survive an edit unchanged.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from courierpy.errors import CourierError

__all__ = [
    "Record",
    "Target",
    "TextDbError",
    "check_value",
    "delete_record",
    "iter_source_files",
    "locked",
    "read_lines",
    "resolve_target",
    "set_fields",
    "show",
    "unset_fields",
]

ENCODING = "utf-8"
ERRORS = "surrogateescape"

#: A record line as Courier's userdb tool sees it: a non-empty name up to the
#: first TAB, then (optionally) the fields.
_RECORD = re.compile(r"([^\t]+)(?:\t(.*))?", re.DOTALL)
#: One field: the name up to the first "=", then "=value" (kept with its "=").
_FIELD = re.compile(r"([^=]*)(=.*)?", re.DOTALL)


class TextDbError(CourierError):
    """An edit of the text userdb failed; ``str()`` is Courier's message."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Record:
    """One record line of a source file."""

    name: str
    #: The text after the TAB (``None`` when the line has no TAB).
    fields: str | None
    lineno: int


@dataclass(frozen=True)
class Target:
    """Which file an edit goes to, and which record name in it."""

    path: Path
    name: str


def check_value(arg: str) -> None:
    """Courier refuses ``|`` and newlines anywhere in a field argument."""
    if "|" in arg or "\n" in arg:
        raise TextDbError("Invalid field or value.", errno.EINVAL)


def symlink_refusal(path: Path, tool: str) -> TextDbError:
    return TextDbError(
        f"ERROR: Wrong {tool} command.\n       ({path} is a symbolic link)", 255
    )


def resolve_target(source: Path, spec: str) -> Target:
    """``[path/]name`` → the file under *source* and the record name.

    ``sub/file/alice`` edits ``<source>/sub/file``; a bare name edits *source*
    itself.  Symbolic links on the way to the file are followed (Courier does
    this so the temporary file sits next to the real file).
    """
    head, sep, name = spec.rpartition("/")
    path = Path(f"{source}/{head}") if sep else Path(source)
    return Target(follow_links(path), name)


def follow_links(path: Path) -> Path:
    """Resolve *path* while it is a symbolic link (relative links from its directory)."""
    seen = 0
    while True:
        try:
            link = os.readlink(path)
        except OSError:
            return path
        seen += 1
        if seen > 40:
            raise TextDbError(f"{path}: {os.strerror(errno.ELOOP)}", errno.ELOOP)
        path = Path(link) if os.path.isabs(link) else path.parent / link


def _sibling(path: Path, prefix: str) -> Path:
    return path.parent / f"{prefix}{path.name}"


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold Courier's edit lock ``.lock.<file>`` (flock, exclusive) for *path*."""
    lock_path = _sibling(path, ".lock.")
    try:
        fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise TextDbError(f"Can't open {lock_path}: {exc.strerror}", exc.errno or 1) from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            raise TextDbError(f"Can't lock {lock_path}: {exc.strerror}", exc.errno or 1) from exc
        yield
    finally:
        os.close(fd)


def read_lines(path: Path) -> list[str] | None:
    """The lines of *path* without their newlines; ``None`` if it cannot be opened.

    A directory (or anything else that is not a regular file) is refused with
    Courier's ``<path>: not a file.``.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise TextDbError(f"{path}: not a file.", errno.ENOTTY)
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    text = data.decode(ENCODING, ERRORS)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def parse_record(line: str, lineno: int = 0) -> Record | None:
    """The record on *line* as the userdb tool matches it, or ``None``."""
    m = _RECORD.fullmatch(line)
    if m is None:
        return None
    return Record(m.group(1), m.group(2), lineno)


def split_fields(text: str | None) -> dict[str, str]:
    """``f=v|g`` → ``{"f": "=v", "g": ""}`` (values keep their ``=``; last wins)."""
    fields: dict[str, str] = {}
    if not text:
        return fields
    items = text.split("|")
    while items and items[-1] == "":  # split drops trailing empty fields
        items.pop()
    for item in items:
        m = _FIELD.fullmatch(item)
        assert m is not None  # the pattern matches every string
        fields[m.group(1)] = m.group(2) or ""
    return fields


def join_record(name: str, fields: dict[str, str]) -> str:
    if not fields:
        return name
    return name + "\t" + "|".join(k + v for k, v in fields.items())


def _write_replacing(path: Path, lines: Sequence[str]) -> None:
    """Write *lines* to ``.tmp.<file>``, fsync, give it *path*'s mode, rename."""
    tmp = _sibling(path, ".tmp.")
    data = "".join(line + "\n" for line in lines).encode(ENCODING, ERRORS)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = None
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if mode is not None:
                os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
        dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise TextDbError(f"{exc.filename or path}: {exc.strerror}", exc.errno or 1) from exc


def _find(lines: list[str], name: str) -> tuple[int, Record] | None:
    for i, line in enumerate(lines):
        rec = parse_record(line, i + 1)
        if rec is not None and rec.name == name:
            return i, rec
    return None


def set_fields(path: Path, name: str, assignments: Sequence[str]) -> None:
    """``userdb name set f=v ...``: merge into the record, or append a new one.

    Each assignment is ``field=value`` (or a bare ``field``, stored as is).
    A new record keeps the argument order, duplicates included, as Courier's.
    """
    for arg in assignments:
        check_value(arg)
    with locked(path):
        lines = read_lines(path) or []
        found = _find(lines, name)
        if found is None:
            lines.append(name + ("\t" + "|".join(assignments) if assignments else ""))
        else:
            i, rec = found
            fields = split_fields(rec.fields)
            for arg in assignments:
                m = _FIELD.fullmatch(arg)
                assert m is not None  # the pattern matches every string
                fields[m.group(1)] = m.group(2) or ""
            lines[i] = join_record(name, fields)
        _write_replacing(path, lines)


def unset_fields(path: Path, name: str, field_names: Sequence[str]) -> bool:
    """``userdb name unset f ...``; ``False`` (nothing written) if there is no such record."""
    if not field_names:
        return False
    for arg in field_names:
        check_value(arg)
    with locked(path):
        lines = read_lines(path)
        found = _find(lines, name) if lines is not None else None
        if lines is None or found is None:
            return False
        i, rec = found
        fields = split_fields(rec.fields)
        for f in field_names:
            fields.pop(f, None)
        lines[i] = join_record(name, fields)
        _write_replacing(path, lines)
        return True


def delete_record(path: Path, name: str) -> bool:
    """``userdb name del``; ``False`` if there is no such record."""
    with locked(path):
        lines = read_lines(path)
        found = _find(lines, name) if lines is not None else None
        if lines is None or found is None:
            return False
        del lines[found[0]]
        _write_replacing(path, lines)
        return True


def show(path: Path, name: str | None) -> list[str]:
    """``userdb -show``: every record name, or the ``f=v`` lines of *name*'s record."""
    with locked(path):
        lines = read_lines(path)
    if lines is None:
        return []
    out: list[str] = []
    for line in lines:
        if line.startswith("#"):
            continue
        rec = parse_record(line)
        if rec is None:
            continue
        if name is None:
            out.append(rec.name)
        elif rec.name == name:
            return (rec.fields or "").split("|")
    return out


def iter_source_files(source: Path) -> list[Path]:
    """The files of a userdb source: itself, or every non-dot file below it (sorted)."""
    if not source.is_dir():
        return [source]
    files: list[Path] = []
    dirs = [source]
    while dirs:
        current = dirs.pop(0)
        for entry in sorted(os.scandir(current), key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                dirs.append(Path(entry.path))
            else:
                files.append(Path(entry.path))
    return files
