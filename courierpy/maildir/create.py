"""The write path: a message streamed into ``tmp/``, then made visible in one rename.

The order is what makes a crash harmless::

    tmp/<unique>      written in chunks, fsync'd, closed
    (optional check)  e.g. the quota, now that the size is known
    new/<name>,S=n    one rename (or cur/<name>,S=n:2,<flags>)
    fsync(new/)       the rename itself is durable

A process killed at any point leaves at most a file in ``tmp/`` (removed by
:func:`clean_tmp` after 36 hours, as Courier does), never a partial message in
``new/`` or ``cur/``.
"""

from __future__ import annotations

import errno
import io
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from courierpy.errors import EX_TEMPFAIL, CourierError
from courierpy.maildir import names

__all__ = ["DeliveryError", "clean_tmp", "deliver", "write_tmp"]

CHUNK = 64 * 1024
#: Age after which files in tmp/ are removed (Courier: 36 hours).
TMP_MAX_AGE = 36 * 3600


class DeliveryError(CourierError):
    """The message could not be stored (disk full, permissions, ...): a temporary failure."""

    exit_code = EX_TEMPFAIL

    def __init__(self, message: str, *, errno_: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno_


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_tmp(maildir: Path, source: BinaryIO | bytes, *, tag: str | None = None,
              prefix: bytes = b"") -> tuple[Path, os.stat_result]:
    """Stream *source* (after *prefix*) into a new file in ``maildir/tmp``; fsync it.

    Returns the tmp path and its final stat. On any error the tmp file is removed.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        source = io.BytesIO(bytes(source))
    tmpdir = maildir / "tmp"
    while True:
        path = tmpdir / names.tmp_name(tag)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            break
        except FileExistsError:  # same microsecond, same pid: try the next one
            time.sleep(0.000_01)
    try:
        with os.fdopen(fd, "wb", buffering=0) as out:
            if prefix:
                out.write(prefix)
            read = getattr(source, "readinto", None)
            if read is not None:
                buf = bytearray(CHUNK)
                view = memoryview(buf)
                while True:
                    n = source.readinto(view)  # type: ignore[union-attr]
                    if not n:
                        break
                    _write_all(out, view[:n])
            else:
                while chunk := source.read(CHUNK):
                    _write_all(out, memoryview(chunk))
            os.fsync(out.fileno())
            st = os.fstat(out.fileno())
    except BaseException as e:
        if isinstance(e, OSError) and e.filename is None:
            e.filename = str(path)  # "<tmp file>: No space left on device", as Courier says
        try:
            os.unlink(path)
        except OSError:
            pass
        raise
    return path, st


def _write_all(out: io.RawIOBase, data: memoryview) -> None:
    while data:
        n = out.write(data)
        if n is None:
            raise OSError(errno.EAGAIN, "write would block")
        data = data[n:]


def deliver(maildir: str | os.PathLike[str], source_stream: BinaryIO | bytes, *,
            flags: str = "", mtime: float | None = None, subdir: str = "new",
            uniq: str | int | None = None, prefix: bytes = b"",
            check: Callable[[int], None] | None = None) -> Path:
    """Store one message in *maildir* (a Maildir or folder); return its final path.

    *source_stream* is read in chunks (a binary file or bytes); it is stored
    as-is (no line-ending conversion). ``subdir="cur"`` stores it with
    ``:2,<flags>``; *mtime* sets the file time (IMAP INTERNALDATE). *check* is
    called with the size before the message becomes visible and may raise
    (e.g. over quota) to abandon it. OSErrors become :class:`DeliveryError`.
    """
    if subdir not in ("new", "cur"):
        raise ValueError("subdir must be 'new' or 'cur'")
    md = Path(maildir)
    tmp_path: Path | None = None
    try:
        tmp_path, st = write_tmp(md, source_stream, prefix=prefix)
        if check is not None:
            check(st.st_size)
        if mtime is not None:
            os.utime(tmp_path, (mtime, mtime))
        # An empty message gets no ",S=0" (as Courier's deliverquota names it).
        name = names.message_name(st.st_dev, st.st_ino, st.st_size or None, uniq=uniq)
        if subdir == "cur":
            name += names.INFO_PREFIX + names.format_flags(flags)
        final = md / subdir / name
        os.rename(tmp_path, final)
        tmp_path = None
        _fsync_dir(md / subdir)
        return final
    except OSError as e:
        where = e.filename or md
        raise DeliveryError(f"{where}: {e.strerror or e}", errno_=e.errno) from e
    finally:
        if tmp_path is not None:
            try:
                os.unlink(tmp_path)
            except OSError:
                pass


def clean_tmp(maildir: str | os.PathLike[str], *, max_age: int = TMP_MAX_AGE,
              now: float | None = None) -> int:
    """Remove files in ``tmp/`` whose ctime is older than *max_age*; return how many."""
    now = time.time() if now is None else now
    removed = 0
    tmpdir = Path(maildir) / "tmp"
    try:
        it = os.scandir(tmpdir)
    except FileNotFoundError:
        return 0
    with it:
        for entry in it:
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if now - st.st_ctime > max_age and not entry.is_dir(follow_symlinks=False):
                try:
                    os.unlink(entry.path)
                    removed += 1
                except FileNotFoundError:
                    pass
    return removed
