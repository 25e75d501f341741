"""Access control lists of Maildir++ folders, as Courier keeps them.

Where a folder's ACL lives (spec section 5.4)::

    Maildir/courierimapacl                 INBOX (absent: the built-in default)
    Maildir/.a.b/courierimapacl            the folder INBOX.a.b
    Maildir/courierimaphieracl/a.b         INBOX.a.b while .a.b does not exist
                                           (an intermediate level of the hierarchy)

Each file holds ``identifier SP rights`` lines.  A folder without a file of
its own inherits its parent's ACL, and reading it saves that copy for each
level between the nearest level that has a file and the folder itself (this is
what makes a new folder start with its parent's ACL).

Identifiers: ``owner``, ``anyone`` (``anonymous``), ``user=LOGIN``,
``group=NAME``, ``administrators``; a leading ``-`` makes a negative entry.
Rights are letters of ``aceilrstwx``, kept sorted.  The owner must keep ``a``
and ``l``; ``administrators`` always holds every right; ``anyone`` and
``administrators`` cannot have negative entries.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from courierpy.errors import CourierError

__all__ = [
    "ALL_RIGHTS",
    "ACL_FILE",
    "HIERACL_DIR",
    "AclError",
    "Entry",
    "compute_rights",
    "delete_acl",
    "format_acl",
    "parse_acl",
    "read_acl",
    "reset",
    "set_acl",
    "validate",
]

ALL_RIGHTS = "aceilrstwx"
ACL_FILE = "courierimapacl"
HIERACL_DIR = "courierimaphieracl"
_ANYONE = ("anyone", "anonymous")
_ADMINS = ("administrators", "group=administrators")


class AclError(CourierError):
    """An ACL operation was refused or failed; ``str()`` is Courier's message."""

    exit_code = 1


class InvalidOwnerRights(AclError):
    def __init__(self) -> None:
        super().__init__("Trying to set invalid access rights for owner")


@dataclass(frozen=True)
class Entry:
    identifier: str  # with its leading "-" for a negative entry
    rights: str


def default_acl() -> list[Entry]:
    return [Entry("owner", ALL_RIGHTS), Entry("administrators", ALL_RIGHTS)]


def normalize_rights(rights: Iterable[str]) -> str:
    return "".join(sorted(set(rights)))


# -- file format ----------------------------------------------------------------------


def parse_acl(data: bytes) -> list[Entry]:
    out = []
    for line in data.decode("utf-8", "surrogateescape").split("\n"):
        if not line:
            continue
        ident, _, rights = line.partition(" ")
        out.append(Entry(ident, rights))
    return out


def format_acl(entries: Iterable[Entry]) -> bytes:
    text = "".join(f"{e.identifier} {e.rights}\n" for e in entries)
    return text.encode("utf-8", "surrogateescape")


# -- folder names ---------------------------------------------------------------------


def split_folder(maildir: Path, folder: str) -> list[str]:
    """``INBOX.a.b`` → ``["a", "b"]``; ``INBOX`` → ``[]``."""
    if folder != "INBOX" and not folder.startswith("INBOX."):
        raise AclError(f"{folder}: Invalid argument")
    rest = folder[len("INBOX.") :] if folder.startswith("INBOX.") else ""
    if not rest:
        return []
    parts = rest.split(".")
    if any(not p or "/" in p for p in parts):
        raise AclError(f"{maildir}: Invalid argument")
    return parts


def _level_files(maildir: Path, name: str) -> tuple[Path, Path]:
    """(the folder's own ACL file, its hieracl file) for on-disk name *name*."""
    return maildir / f".{name}" / ACL_FILE, maildir / HIERACL_DIR / name


def _read(path: Path) -> list[Entry] | None:
    try:
        with open(path, "rb") as f:
            return parse_acl(f.read())
    except (FileNotFoundError, NotADirectoryError):
        return None


def _tmp_name() -> str:
    now = time.time()
    sec = int(now)
    return f"{sec}.M{int((now - sec) * 1_000_000)}P{os.getpid()}_acl.{socket.gethostname()}"


def _write_level(maildir: Path, name: str | None, entries: list[Entry]) -> None:
    """Save *entries* as the ACL of level *name* (``None`` = INBOX), tmp → rename."""
    data = format_acl(entries)
    if name is None:
        targets = [(maildir / "tmp", maildir / ACL_FILE)]
    else:
        own, hier = _level_files(maildir, name)
        targets = [(maildir / f".{name}" / "tmp", own), (maildir / "tmp", hier)]
    for tmpdir, target in targets:
        tmp = tmpdir / _tmp_name()
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except (FileNotFoundError, NotADirectoryError):
            continue
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.rename(tmp, target)
        except FileNotFoundError:
            (maildir / HIERACL_DIR).mkdir(mode=0o755, exist_ok=True)
            os.rename(tmp, target)
        return
    raise AclError(f"{maildir}: No such file or directory")


# -- reading and changing ------------------------------------------------------------


def read_acl(maildir: str | os.PathLike[str], folder: str) -> list[Entry]:
    """The ACL of IMAP *folder* (``INBOX`` or ``INBOX.x.y``) in *maildir*.

    Inherited ACLs are saved for the levels below the nearest one that has a
    file, as Courier does.
    """
    maildir = Path(maildir)
    parts = split_folder(maildir, folder)
    levels = [".".join(parts[:i]) for i in range(len(parts), 0, -1)]  # F, parent, ...
    found: list[Entry] | None = None
    missing: list[str] = []
    for name in levels:
        own, hier = _level_files(maildir, name)
        found = _read(own)
        if found is None:
            found = _read(hier)
        if found is not None:
            break
        missing.append(name)
    if found is None:
        found = _read(maildir / ACL_FILE)
        if found is None:
            found = default_acl()
    for name in reversed(missing):
        _write_level(maildir, name, found)
    return found


def validate(maildir: Path, entries: list[Entry]) -> None:
    """Refuse an ACL Courier would refuse."""
    pos = neg = ""
    for e in entries:
        if e.identifier in ("-" + a for a in _ANYONE + _ADMINS):
            raise AclError(f"{maildir}: Invalid argument")
        if e.identifier == "administrators" and e.rights != ALL_RIGHTS:
            raise AclError(f"{maildir}: Invalid argument")
        if e.identifier == "owner":
            pos += e.rights
        elif e.identifier == "-owner":
            neg += e.rights
    if not {"a", "l"} <= set(pos) - set(neg):
        raise InvalidOwnerRights()


def _check_identifier(identifier: str) -> None:
    bare = identifier[1:] if identifier.startswith("-") else identifier
    if not bare or any(c.isspace() for c in identifier):
        raise AclError("maildiracl: Invalid argument")


def set_acl(
    maildir: str | os.PathLike[str], folder: str, identifier: str, rights: str
) -> list[Entry]:
    """Set (or with a ``+``/``-`` prefix, change) *identifier*'s rights; the new ACL."""
    maildir = Path(maildir)
    _check_identifier(identifier)
    parts = split_folder(maildir, folder)
    entries = list(read_acl(maildir, folder))
    current = next((e.rights for e in entries if e.identifier == identifier), "")
    if rights.startswith("+"):
        new = normalize_rights(current + rights[1:])
    elif rights.startswith("-"):
        new = normalize_rights(set(current) - set(rights[1:]))
    else:
        new = normalize_rights(rights)
    entry = Entry(identifier, new)
    for i, e in enumerate(entries):
        if e.identifier == identifier:
            entries[i] = entry
            break
    else:
        entries.append(entry)
    validate(maildir, entries)
    _write_level(maildir, ".".join(parts) or None, entries)
    return entries


def delete_acl(maildir: str | os.PathLike[str], folder: str, identifier: str) -> list[Entry]:
    """Remove *identifier*'s entry (if any); the new ACL."""
    maildir = Path(maildir)
    _check_identifier(identifier)
    parts = split_folder(maildir, folder)
    entries = [e for e in read_acl(maildir, folder) if e.identifier != identifier]
    validate(maildir, entries)
    _write_level(maildir, ".".join(parts) or None, entries)
    return entries


def compute_rights(entries: Iterable[Entry], identifiers: Iterable[str]) -> str:
    """The rights of someone known by all of *identifiers* (``anyone`` always applies)."""
    ids = set(identifiers)
    if ids & set(_ADMINS):
        return ALL_RIGHTS
    ids.update(_ANYONE)
    pos: set[str] = set()
    neg: set[str] = set()
    for e in entries:
        if e.identifier in ids:
            pos.update(e.rights)
        elif e.identifier.startswith("-") and e.identifier[1:] in ids:
            neg.update(e.rights)
    rights = pos - neg
    if "owner" in ids:
        rights.add("a")  # the owner can always administer (negative entries notwithstanding)
    return normalize_rights(rights)


#: ``reset`` leaves younger hieracl files alone (a folder may be on its way).
RESET_MIN_AGE = 3600


def reset(maildir: str | os.PathLike[str], *, now: float | None = None) -> list[str]:
    """Remove stale ``courierimaphieracl`` files, as ``maildiracl -reset``; their names.

    A file is kept while a folder exists below that level (it is then the ACL
    of an intermediate level) or while it is younger than an hour (mtime);
    anything else goes, including the file of a folder that now has a
    directory of its own (observed with Courier's tool).
    """
    when = time.time() if now is None else now
    maildir = Path(maildir)
    hier = maildir / HIERACL_DIR
    try:
        names = os.listdir(hier)
    except (FileNotFoundError, NotADirectoryError):
        return []
    folders = set()
    try:
        for entry in os.scandir(maildir):
            if entry.name.startswith(".") and os.path.isdir(os.path.join(entry.path, "cur")):
                folders.add(entry.name[1:])
    except FileNotFoundError:
        return []
    removed = []
    for name in names:
        if any(f.startswith(name + ".") for f in folders):
            continue
        try:
            if when - os.stat(hier / name).st_mtime <= RESET_MIN_AGE:
                continue
            os.unlink(hier / name)
            removed.append(name)
        except FileNotFoundError:
            pass
    return removed


# -- the IMAP view (RFC 2086/4314 as Courier's imapd shows it) -----------------------------

#: On disk e (expunge), t (\Deleted) and x (delete folder) are separate; IMAP
#: clients of RFC 2086 know one "d", shown only when all three are held.
_D_PARTS = frozenset("etx")


def to_imap_rights(rights: str) -> str:
    """On-disk rights → the letters GETACL/MYRIGHTS show (``aceilrstwx`` → ``acdilrsw``)."""
    letters = set(rights)
    shown = letters - _D_PARTS
    if _D_PARTS <= letters:
        shown.add("d")
    return normalize_rights(shown)


def from_imap_rights(rights: str) -> str:
    """IMAP SETACL letters → on-disk rights (``d`` stands for ``e``, ``t`` and ``x``)."""
    letters = set(rights)
    if "d" in letters:
        letters.discard("d")
        letters |= _D_PARTS
    return normalize_rights(letters)


def to_imap_identifier(identifier: str) -> str:
    """``user=frank`` → ``frank``, ``-user=bob`` → ``-bob``; others unchanged."""
    neg = identifier.startswith("-")
    bare = identifier[1:] if neg else identifier
    if bare.startswith("user="):
        bare = bare[len("user=") :]
    return ("-" if neg else "") + bare
