"""GDBM files through the system libgdbm (ctypes).

CPython here is built without ``_gdbm``, and Courier's ``userdb.dat`` and
``userdbshadow.dat`` are GDBM files written by libgdbm 1.x.  We use the same
shared library Courier's ``makedatprog`` links to, with the same open flags,
so the files we write are the files Courier writes (``file`` reports "GNU dbm
1.x or ndbm database, little endian, 64-bit", standard format).

Keys and values are ``bytes``; the callers choose the encoding.  A
:class:`GdbmFile` is not thread-safe: guard it with a lock if threads share it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import enum
import functools
import os
from collections.abc import Iterator
from pathlib import Path

from courierpy.errors import EX_IOERR, EX_NOINPUT, CourierError

__all__ = ["GdbmError", "GdbmFile", "GdbmNotFound", "Mode", "open_gdbm"]

# Flags and codes from gdbm.h (1.x; stable since 1.8).
_GDBM_READER = 0
_GDBM_WRITER = 1
_GDBM_WRCREAT = 2
_GDBM_NEWDB = 3
_GDBM_NOLOCK = 0x040
_GDBM_CLOEXEC = 0x100
_GDBM_INSERT = 0
_GDBM_REPLACE = 1
_GDBM_ITEM_NOT_FOUND = 15


class Mode(enum.Enum):
    """How to open a GDBM file."""

    #: Read only; fails if the file does not exist.
    READ = _GDBM_READER
    #: Read and write an existing file.
    WRITE = _GDBM_WRITER
    #: Read and write; create the file if it does not exist.
    CREATE = _GDBM_WRCREAT
    #: Always start a new, empty database (truncates an existing file).
    NEW = _GDBM_NEWDB


class GdbmError(CourierError):
    """A GDBM operation failed; ``str()`` names the file."""

    exit_code = EX_IOERR

    def __init__(self, path: str | os.PathLike[str], message: str) -> None:
        self.path = os.fspath(path)
        self.message = message
        super().__init__(f"{self.path}: {message}")


class GdbmNotFound(GdbmError):
    """The database file does not exist (or cannot be opened for reading)."""

    exit_code = EX_NOINPUT


class _Datum(ctypes.Structure):
    """A datum libgdbm returns (the memory is ours to free)."""

    _fields_ = [("dptr", ctypes.c_void_p), ("dsize", ctypes.c_int)]


class _DatumIn(ctypes.Structure):
    """A datum we pass in: points straight into a ``bytes`` object (no copy)."""

    _fields_ = [("dptr", ctypes.c_char_p), ("dsize", ctypes.c_int)]


class _Lib:
    """The bound libgdbm and libc entry points we use."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("gdbm") or "libgdbm.so.6"
        try:
            lib = ctypes.CDLL(name, use_errno=True)
        except OSError as exc:  # pragma: no cover - depends on the system
            raise GdbmError(name, f"cannot load libgdbm: {exc}") from exc
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        self.free = libc.free
        self.free.argtypes = [ctypes.c_void_p]
        self.free.restype = None

        self.open = lib.gdbm_open
        self.open.argtypes = [
            ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
        ]
        self.open.restype = ctypes.c_void_p
        self.close = lib.gdbm_close
        self.close.argtypes = [ctypes.c_void_p]
        self.close.restype = ctypes.c_int
        self.store = lib.gdbm_store
        self.store.argtypes = [ctypes.c_void_p, _DatumIn, _DatumIn, ctypes.c_int]
        self.store.restype = ctypes.c_int
        self.fetch = lib.gdbm_fetch
        self.fetch.argtypes = [ctypes.c_void_p, _DatumIn]
        self.fetch.restype = _Datum
        self.delete = lib.gdbm_delete
        self.delete.argtypes = [ctypes.c_void_p, _DatumIn]
        self.delete.restype = ctypes.c_int
        self.exists = lib.gdbm_exists
        self.exists.argtypes = [ctypes.c_void_p, _DatumIn]
        self.exists.restype = ctypes.c_int
        self.firstkey = lib.gdbm_firstkey
        self.firstkey.argtypes = [ctypes.c_void_p]
        self.firstkey.restype = _Datum
        self.nextkey = lib.gdbm_nextkey
        self.nextkey.argtypes = [ctypes.c_void_p, _DatumIn]
        self.nextkey.restype = _Datum
        self.fdesc = lib.gdbm_fdesc
        self.fdesc.argtypes = [ctypes.c_void_p]
        self.fdesc.restype = ctypes.c_int
        self.sync = lib.gdbm_sync
        self.sync.argtypes = [ctypes.c_void_p]
        self.sync.restype = ctypes.c_int
        self.errno_location = lib.gdbm_errno_location
        self.errno_location.argtypes = []
        self.errno_location.restype = ctypes.POINTER(ctypes.c_int)
        self.strerror = lib.gdbm_strerror
        self.strerror.argtypes = [ctypes.c_int]
        self.strerror.restype = ctypes.c_char_p
        self.clear_error = lib.gdbm_clear_error
        self.clear_error.argtypes = [ctypes.c_void_p]
        self.clear_error.restype = None

    def gdbm_errno(self) -> int:
        return int(self.errno_location().contents.value)

    def set_gdbm_errno(self, value: int) -> None:
        self.errno_location().contents.value = value

    def describe_error(self) -> str:
        code = self.gdbm_errno()
        text = (self.strerror(code) or b"unknown GDBM error").decode("utf-8", "replace")
        err = ctypes.get_errno()
        if err:
            return f"{text} ({os.strerror(err)})"
        return text


@functools.cache
def _lib() -> _Lib:
    """The library binding, loaded once on first use (it never changes)."""
    return _Lib()


def _datum(data: bytes) -> _DatumIn:
    """A datum for *data*; it keeps *data* alive while it exists."""
    return _DatumIn(data, len(data))


def _take(lib: _Lib, d: _Datum) -> bytes | None:
    """Copy and free a datum libgdbm allocated; ``None`` for a null datum."""
    if not d.dptr:
        return None
    try:
        return ctypes.string_at(d.dptr, d.dsize)
    finally:
        lib.free(d.dptr)


class GdbmFile:
    """One open GDBM database.  Use :func:`open_gdbm` to get one."""

    def __init__(self, path: Path, handle: int, lib: _Lib) -> None:
        self.path = path
        self._handle: int | None = handle
        self._lib = lib

    # -- lifecycle ----------------------------------------------------------

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._handle is not None:
            handle, self._handle = self._handle, None
            self._lib.close(handle)

    def abandon(self) -> None:
        """Forget a handle inherited from a parent process, closing only our fd.

        gdbm_close in a forked child would unlock the file for the parent too.
        """
        if self._handle is not None:
            handle, self._handle = self._handle, None
            fd = self._lib.fdesc(handle)
            if fd >= 0:
                os.close(fd)

    def __enter__(self) -> GdbmFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # a leaked handle would leak a lock and an fd
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    @property
    def closed(self) -> bool:
        return self._handle is None

    def _h(self) -> int:
        if self._handle is None:
            raise GdbmError(self.path, "database is closed")
        return self._handle

    def _fail(self, what: str) -> GdbmError:
        return GdbmError(self.path, f"{what}: {self._lib.describe_error()}")

    # -- records --------------------------------------------------------------

    def store(self, key: bytes, value: bytes, *, replace: bool = True) -> None:
        """Store *value* under *key*.

        With ``replace=False`` an existing key is an error (what Courier's
        makedatprog does: "duplicate or out of disk space").
        """
        k = _datum(key)
        v = _datum(value)
        ctypes.set_errno(0)
        rc = self._lib.store(self._h(), k, v, _GDBM_REPLACE if replace else _GDBM_INSERT)
        if rc == 1:
            raise GdbmError(self.path, f"duplicate key {key!r}")
        if rc != 0:
            raise self._fail(f"cannot store {key!r}")

    def fetch(self, key: bytes) -> bytes | None:
        """The value stored under *key*, or ``None``."""
        k = _datum(key)
        self._lib.set_gdbm_errno(0)
        ctypes.set_errno(0)
        value = _take(self._lib, self._lib.fetch(self._h(), k))
        if value is None and self._lib.gdbm_errno() not in (0, _GDBM_ITEM_NOT_FOUND):
            raise self._fail(f"cannot fetch {key!r}")
        return value

    def __contains__(self, key: bytes) -> bool:
        k = _datum(key)
        found = bool(self._lib.exists(self._h(), k))
        return found

    def delete(self, key: bytes) -> bool:
        """Delete *key*; ``False`` if it was not there."""
        k = _datum(key)
        self._lib.set_gdbm_errno(0)
        rc = self._lib.delete(self._h(), k)
        if rc == 0:
            return True
        if self._lib.gdbm_errno() == _GDBM_ITEM_NOT_FOUND:
            return False
        raise self._fail(f"cannot delete {key!r}")

    def keys(self) -> Iterator[bytes]:
        """Every key, in GDBM's (hash) order.  Do not store or delete meanwhile."""
        lib = self._lib
        lib.set_gdbm_errno(0)
        current = _take(lib, lib.firstkey(self._h()))
        while current is not None:
            yield current
            k = _datum(current)
            lib.set_gdbm_errno(0)
            current = _take(lib, lib.nextkey(self._h(), k))
        if lib.gdbm_errno() not in (0, _GDBM_ITEM_NOT_FOUND):
            raise self._fail("cannot iterate keys")

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """``(key, value)`` pairs in GDBM order."""
        for key in self.keys():
            value = self.fetch(key)
            if value is not None:
                yield key, value

    def sync(self) -> None:
        """Flush everything to disk (fsync)."""
        if self._lib.sync(self._h()) != 0:
            raise self._fail("cannot sync")


def open_gdbm(
    path: str | os.PathLike[str],
    mode: Mode = Mode.READ,
    *,
    perms: int = 0o644,
    lock: bool = True,
) -> GdbmFile:
    """Open the GDBM file *path*.

    *perms* is the file mode used when the file is created (the process umask
    applies, as with ``open(2)``).  ``lock=False`` skips libgdbm's flock.
    """
    lib = _lib()
    p = Path(path)
    flags = mode.value | _GDBM_CLOEXEC
    if not lock:
        flags |= _GDBM_NOLOCK
    lib.set_gdbm_errno(0)
    ctypes.set_errno(0)
    handle = lib.open(os.fsencode(p), 0, flags, perms, None)
    if not handle:
        err = ctypes.get_errno()
        if mode is Mode.READ and err == 2:
            raise GdbmNotFound(p, "not found")
        raise GdbmError(p, f"cannot open: {lib.describe_error()}")
    return GdbmFile(p, handle, lib)
