"""Compile the userdb text source into ``userdb.dat`` and ``userdbshadow.dat``.

For a source ``S`` (``<config dir>/userdb`` unless ``-f`` names another),
Courier's makeuserdb writes, beside it:

- ``S.dat`` (mode 0644): ``name`` → the fields whose name does not end in
  ``pw``, joined by ``|``, plus ``_=<location>``;
- ``Sshadow.dat`` (mode 0600): ``name`` → the ``*pw`` fields (no entry when
  a record has none);
- ``S.lock`` (the lock, flock'd while building), ``S.tmp`` and ``Sshadow.tmp``
  (the databases being built).

``<location>`` is the record's file relative to a directory source, with a
trailing ``/`` (``sub/file/``); it is empty for a single-file source.

Unlike Courier, we parse and check every line before writing anything, build
both databases completely (fsync'd) and only then rename them into place, so a
failed build leaves the previous databases byte-identical.  Where Courier
silently stores garbage (a line without a TAB becomes a key with the value
``1``; a line ``.`` ends the build early) or fails half-way (a duplicate name
aborts one database but not the other), we refuse the build and name the file
and line.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from authdaemon.userdb.gdbm import GdbmError, Mode, open_gdbm
from authdaemon.userdb.textdb import iter_source_files, symlink_refusal
from courierpy.errors import CourierError

__all__ = ["BuildError", "Compiled", "build", "compile_source", "paths_for"]


class BuildError(CourierError):
    """makeuserdb refused or failed; ``str()`` is the message to print."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Paths:
    source: Path
    dat: Path
    shadow: Path
    lock: Path
    tmp_dat: Path
    tmp_shadow: Path


def paths_for(source: Path) -> Paths:
    """The files makeuserdb uses for the source *source* (a trailing ``/`` is ignored)."""
    base = str(source)
    if base.endswith("/") and base != "/":
        base = base[:-1]
    return Paths(
        source=Path(base),
        dat=Path(base + ".dat"),
        shadow=Path(base + "shadow.dat"),
        lock=Path(base + ".lock"),
        tmp_dat=Path(base + ".tmp"),
        tmp_shadow=Path(base + "shadow.tmp"),
    )


@dataclass
class Compiled:
    """The two databases' contents, in source order."""

    dat: dict[bytes, bytes] = field(default_factory=dict)
    shadow: dict[bytes, bytes] = field(default_factory=dict)
    #: Where each name was defined (for the duplicate message).
    origin: dict[bytes, str] = field(default_factory=dict)


def _location(source: Path, file: Path) -> bytes:
    if file == source:
        return b""
    rel = os.path.relpath(file, source).strip("/")
    return os.fsencode(rel + "/") if rel else b""


def _split_fields(text: bytes) -> list[bytes]:
    items = text.split(b"|")
    while items and items[-1] == b"":  # like Perl's split: trailing empties go
        items.pop()
    return items


def _is_secret(item: bytes) -> bool:
    """A ``*pw=`` field (the name before the first ``=`` ends in ``pw``)."""
    name, eq, _ = item.partition(b"=")
    return bool(eq) and name.endswith(b"pw")


def compile_file(source: Path, file: Path, out: Compiled) -> None:
    """Add the records of one source file to *out*; malformed lines raise BuildError."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise BuildError(f"{file}: {exc.strerror}") from exc
    location = _location(source, file)
    shown = os.fspath(file)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for lineno, line in enumerate(lines, 1):
        if line.startswith(b"#") or line.strip() == b"":
            continue
        name, tab, fields = line.partition(b"\t")
        where = f"{shown}:{lineno}"
        if not tab:
            raise BuildError(f"{where}: malformed line (no TAB after the account name).")
        if name == b"":
            raise BuildError(f"{where}: malformed line (empty account name).")
        if name in out.origin:
            raise BuildError(
                f"{where}: duplicate record for {name.decode('utf-8', 'replace')}"
                f" (first at {out.origin[name]})."
            )
        out.origin[name] = where
        public: list[bytes] = []
        secret: list[bytes] = []
        for item in _split_fields(fields):
            (secret if _is_secret(item) else public).append(item)
        public.append(b"_=" + location)
        out.dat[name] = b"|".join(public)
        if secret:
            out.shadow[name] = b"|".join(secret)


def compile_source(source: Path) -> Compiled:
    """Parse every file of *source* (no permission checks, nothing written)."""
    out = Compiled()
    for file in iter_source_files(source):
        compile_file(source, file, out)
    return out


def check_source(p: Paths) -> None:
    """Courier's refusals, in Courier's order."""
    try:
        st = os.stat(p.source)
    except OSError as exc:
        raise BuildError(f"{p.source}: not found.", exc.errno or errno.ENOENT) from exc
    if st.st_mode & 0o077:
        raise BuildError(f"{p.source}: MAY NOT HAVE GROUP OR WORLD PERMISSIONS!!", 255)
    for path in (p.source, p.dat, p.shadow):
        if path.is_symlink():
            raise BuildError(symlink_refusal(path, "makeuserdb").args[0], 255)


@contextmanager
def _build_lock(path: Path) -> Iterator[None]:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise BuildError(f"Can't open {path}: {exc.strerror}", exc.errno or 1) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write_db(path: Path, records: dict[bytes, bytes], perms: int) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    with open_gdbm(path, Mode.NEW, perms=perms) as db:
        os.chmod(path, perms)  # exactly, whatever the umask
        for key, value in records.items():
            db.store(key, value, replace=False)
        db.sync()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def build(source: Path) -> Compiled:
    """makeuserdb: check, compile and atomically install the databases for *source*."""
    p = paths_for(Path(source))
    check_source(p)
    with _build_lock(p.lock):
        compiled = compile_source(p.source)
        try:
            _write_db(p.tmp_dat, compiled.dat, 0o644)
            _write_db(p.tmp_shadow, compiled.shadow, 0o600)
            os.rename(p.tmp_shadow, p.shadow)
            os.rename(p.tmp_dat, p.dat)
            _fsync_dir(p.dat.parent)
        except (OSError, GdbmError) as exc:
            for tmp in (p.tmp_dat, p.tmp_shadow):
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
            raise BuildError(str(exc)) from exc
    return compiled

