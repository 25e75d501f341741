"""Reading the compiled userdb: ``userdb.dat`` and ``userdbshadow.dat``.

This is what the authuserdb module looks accounts up in.  Both files are GDBM
databases built by makeuserdb (ours or Courier's):

- ``userdb.dat``: key = account name, value = ``f=v|f=v|..|_=<location>``
  (every field whose name does not end in ``pw``); reverse uid records are
  stored under the key ``<uid>=`` with value ``<name>|_=``.
- ``userdbshadow.dat``: key = account name, value = the ``*pw`` fields only.

makeuserdb replaces the files by rename, so a reader notices a rebuild by the
file's identity (device, inode, mtime, size) and reopens, as Courier's
authdaemond does; no restart is needed.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from authdaemon.userdb.gdbm import GdbmFile, GdbmNotFound, Mode, open_gdbm

__all__ = [
    "DAT_NAME",
    "SHADOW_NAME",
    "UserDatabase",
    "UserRecord",
    "decode_fields",
    "is_reverse_key",
    "set_password",
]

#: File names inside the configuration directory.
DAT_NAME = "userdb.dat"
SHADOW_NAME = "userdbshadow.dat"

_REVERSE_KEY = re.compile(r"[0-9]+=")

#: Text in the files is bytes; we keep undecodable bytes round-trippable.
ENCODING = "utf-8"
ERRORS = "surrogateescape"


def is_reverse_key(name: str) -> bool:
    """True for a reverse uid record's key (``5000=``)."""
    return _REVERSE_KEY.fullmatch(name) is not None


def decode_fields(value: str) -> dict[str, str]:
    """``f=v|f=v`` → ``{f: v}``; a field without ``=`` gets ``""``; the last duplicate wins."""
    fields: dict[str, str] = {}
    if value == "":
        return fields
    for item in value.split("|"):
        if item == "":
            continue
        name, _, val = item.partition("=")
        fields[name] = val
    return fields


@dataclass(frozen=True)
class UserRecord:
    """One account of the compiled userdb."""

    name: str
    #: Fields of userdb.dat, including ``_`` (the source location).
    fields: dict[str, str]
    #: The ``*pw`` fields of userdbshadow.dat (empty when there are none).
    secrets: dict[str, str]


def _identity(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


class _Reopening:
    """A read-only GDBM file that is reopened when the file on disk is replaced."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: GdbmFile | None = None
        self._ident: tuple[int, int, int, int] | None = None
        self._pid = 0

    def current(self) -> GdbmFile | None:
        ident = _identity(self.path)
        # Reopen after a rebuild, and in a forked child (a handle inherited
        # across fork shares its file offset with the parent's).
        if ident != self._ident or self._db is None or self._pid != os.getpid():
            self.close()
            if ident is None:
                return None
            try:
                self._db = open_gdbm(self.path, Mode.READ)
            except GdbmNotFound:
                return None
            self._ident = ident
            self._pid = os.getpid()
        return self._db

    def close(self) -> None:
        if self._db is not None:
            if self._pid == os.getpid():
                self._db.close()
            else:
                # Inherited across fork: gdbm_close would also drop the
                # parent's flock (locks belong to the shared open file).
                self._db.abandon()
        self._db = None
        self._ident = None


class UserDatabase:
    """The compiled userdb in *confdir* (``userdb.dat`` + ``userdbshadow.dat``).

    Thread-safe.  A missing ``userdb.dat`` means "no accounts" (Courier's
    authuserdb then finds nobody); a missing shadow file means "no secrets".
    A corrupt file raises :class:`authdaemon.userdb.gdbm.GdbmError`.
    """

    def __init__(self, confdir: Path) -> None:
        self.confdir = Path(confdir)
        self._dat = _Reopening(self.confdir / DAT_NAME)
        self._shadow = _Reopening(self.confdir / SHADOW_NAME)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._dat.close()
            self._shadow.close()

    def __enter__(self) -> UserDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _record(self, key: bytes, value: bytes, shadow: GdbmFile | None) -> UserRecord:
        secret = shadow.fetch(key) if shadow is not None else None
        return UserRecord(
            name=key.decode(ENCODING, ERRORS),
            fields=decode_fields(value.decode(ENCODING, ERRORS)),
            secrets=decode_fields(secret.decode(ENCODING, ERRORS)) if secret else {},
        )

    def lookup(self, name: str) -> UserRecord | None:
        """The account *name* (exact, case-sensitive), or ``None``."""
        if name == "" or is_reverse_key(name):
            return None
        key = name.encode(ENCODING, ERRORS)
        with self._lock:
            dat = self._dat.current()
            if dat is None:
                return None
            value = dat.fetch(key)
            if value is None:
                return None
            return self._record(key, value, self._shadow.current())

    def enumerate(self) -> Iterator[UserRecord]:
        """Every account in GDBM order, reverse uid records skipped.

        The records are read under the lock first, so a rebuild while the
        caller iterates does not disturb it.
        """
        with self._lock:
            dat = self._dat.current()
            if dat is None:
                return iter(())
            shadow = self._shadow.current()
            records = [
                self._record(key, value, shadow)
                for key, value in dat.items()
                if not is_reverse_key(key.decode(ENCODING, ERRORS))
            ]
        return iter(records)


def set_password(confdir: Path, name: str, location: str, field: str, new_hash: str) -> None:
    """Change a password the way Courier's authuserdb does.

    Equivalent to ``userdb <location><name> set <field>=<new_hash>`` followed
    by ``makeuserdb``, on the userdb source ``<confdir>/userdb``.  *location*
    is the record's ``_`` field (``""`` for a single-file userdb, else the
    sub-file path with a trailing ``/``).  Raises a CourierError subclass on
    failure (bad value, unreadable source, failed build).
    """
    from authdaemon.userdb import makeuserdb, textdb

    confdir = Path(confdir)
    source = confdir / "userdb"
    target = textdb.resolve_target(source, location + name)
    textdb.set_fields(target.path, target.name, [f"{field}={new_hash}"])
    makeuserdb.build(source)
