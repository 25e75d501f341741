"""Maildir++ folders: IMAP names ↔ directories, create, delete, rename, list.

``INBOX`` is the Maildir itself; ``INBOX.a.b`` is the directory ``.a.b`` right
under it (``.`` is the hierarchy separator; intermediate folders need not
exist). Every folder holds ``tmp/ new/ cur/`` and an empty ``maildirfolder``
file (mode 0600) that tells delivery and quota code it is a folder of a parent
Maildir. Names are stored on disk as UTF-8, exactly as given.

Names that could reach outside the Maildir or confuse other Maildir++
software are refused with :class:`FolderNameError`: ``/``, empty components
(``a..b``, a trailing ``.``), a leading ``.``, and control characters.
Courier's own maildirmake accepts some of these (``-f a..b``); we do not.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from courierpy.errors import CourierError
from courierpy.maildir import names

__all__ = [
    "FolderError",
    "FolderExistsError",
    "FolderNameError",
    "NoSuchFolderError",
    "create_folder",
    "create_maildir",
    "delete_folder",
    "dir_to_imap",
    "folder_path",
    "imap_to_dir",
    "list_folders",
    "rename_folder",
    "root_of",
]

INBOX = "INBOX"
SEP = "."
MAILDIRFOLDER = "maildirfolder"


class FolderError(CourierError):
    """A folder operation failed."""

    exit_code = 1


class FolderNameError(FolderError):
    """The name is not a valid Maildir++ folder name."""


class FolderExistsError(FolderError):
    """The folder (or Maildir) already exists."""


class NoSuchFolderError(FolderError):
    """The folder does not exist."""


def _relative(imap_name: str) -> str:
    """The part of an IMAP name below INBOX ("" for INBOX itself)."""
    if imap_name.upper() == INBOX:
        return ""
    if imap_name[:6].upper() == INBOX + SEP:
        return imap_name[6:]
    return imap_name


def validate(relative: str, *, allow_control: bool = False) -> None:
    """Raise FolderNameError unless *relative* (a name below INBOX) is safe.

    *allow_control* accepts control characters (never ``/`` or empty
    components): Courier creates such folders, and an existing one must stay
    reachable.
    """
    if not relative:
        raise FolderNameError("Invalid folder name: empty name")
    if "/" in relative or "\0" in relative:
        raise FolderNameError(f"Invalid folder name: {relative} (contains /)")
    if not allow_control and any(ord(c) < 0x20 or ord(c) == 0x7F for c in relative):
        raise FolderNameError(f"Invalid folder name: {relative!r} (control character)")
    if relative.startswith(SEP):
        raise FolderNameError(f"Invalid folder name: {relative}")
    if any(part == "" for part in relative.split(SEP)):
        raise FolderNameError(f"Invalid folder name: {relative} (empty component)")
    if any(part in (".", "..") for part in relative.split(SEP)):
        raise FolderNameError(f"Invalid folder name: {relative}")


def imap_to_dir(imap_name: str) -> str:
    """The directory name (``.a.b``) of IMAP ``INBOX.a.b``; "" for INBOX.

    A name without the ``INBOX.`` prefix is taken as a folder under INBOX
    (convenient for tools; IMAP code should check the prefix itself).
    """
    rel = _relative(imap_name)
    if rel == "" and imap_name.upper() == INBOX:
        return ""
    validate(rel)
    return SEP + rel


def dir_to_imap(dirname: str) -> str:
    """``.a.b`` → ``INBOX.a.b``."""
    if not dirname.startswith(SEP) or dirname in (".", ".."):
        raise FolderNameError(f"not a folder directory: {dirname}")
    return INBOX + dirname


def folder_path(maildir: str | os.PathLike[str], imap_name: str) -> Path:
    """The directory of IMAP folder *imap_name* in *maildir* (INBOX → maildir).

    Control characters are refused unless that folder already exists (made by
    Courier, which allows them).
    """
    try:
        d = imap_to_dir(imap_name)
    except FolderNameError:
        rel = _relative(imap_name)
        validate(rel, allow_control=True)
        if not (Path(maildir) / (SEP + rel)).is_dir():
            raise
        d = SEP + rel
    return Path(maildir) if d == "" else Path(maildir) / d


def root_of(path: str | os.PathLike[str]) -> Path:
    """The top Maildir of *path* (its parent if *path* is a folder with maildirfolder)."""
    p = Path(path)
    if (p / MAILDIRFOLDER).exists():
        return p.parent
    return p


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_maildir(path: str | os.PathLike[str], *, mode: int = 0o700,
                   sub_mode: int = 0o700, folder: bool = False, exist_ok: bool = False) -> Path:
    """Make a Maildir (``tmp new cur``) at *path*; a folder also gets ``maildirfolder``.

    Modes are applied exactly (chmod after mkdir, so the umask does not
    interfere), the way maildirmake leaves them.
    """
    p = Path(path)
    try:
        os.mkdir(p, mode)
    except FileExistsError:
        if not exist_ok:
            raise FolderExistsError(f"{p}: File exists") from None
    else:
        os.chmod(p, mode)
    for sub in ("tmp", "new", "cur"):
        try:
            os.mkdir(p / sub, sub_mode)
        except FileExistsError:
            continue
        os.chmod(p / sub, sub_mode)
    if folder:
        mf = p / MAILDIRFOLDER
        fd = os.open(mf, os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)
    return p


def create_folder(maildir: str | os.PathLike[str], imap_name: str, *, mode: int = 0o700,
                  sub_mode: int = 0o700) -> Path:
    """Create folder *imap_name* (``INBOX.x`` or ``x``); FolderExistsError if present."""
    d = imap_to_dir(imap_name)
    if d == "":
        raise FolderExistsError(f"{maildir}: File exists")
    if not Path(maildir, "cur").is_dir():
        raise NoSuchFolderError(f"{maildir}: No such file or directory")
    path = Path(maildir) / d
    create_maildir(path, mode=mode, sub_mode=sub_mode, folder=True)
    _fsync_dir(Path(maildir))
    return path


def list_folders(maildir: str | os.PathLike[str]) -> list[str]:
    """IMAP names of the folders that exist on disk (not INBOX), sorted."""
    out = []
    with os.scandir(maildir) as it:
        for entry in it:
            n = entry.name
            if not n.startswith(SEP) or n in (".", "..") or not entry.is_dir():
                continue
            try:
                validate(n[1:], allow_control=True)
            except FolderNameError:
                continue
            out.append(INBOX + n)
    return sorted(out)


def delete_folder(maildir: str | os.PathLike[str], imap_name: str) -> None:
    """Delete one folder and its messages (not its subfolders).

    The directory is first renamed into the Maildir's ``tmp/`` so that no
    reader ever sees a half-removed folder, then removed.
    """
    d = imap_to_dir(imap_name)
    if d == "":
        raise FolderNameError("INBOX cannot be deleted")
    path = Path(maildir) / d
    if not path.is_dir():
        raise NoSuchFolderError(f"{imap_name}: no such folder")
    grave = Path(maildir) / "tmp" / names.tmp_name("deleted")
    os.rename(path, grave)
    _fsync_dir(Path(maildir))
    shutil.rmtree(grave, ignore_errors=True)


def rename_folder(maildir: str | os.PathLike[str], old: str, new: str) -> None:
    """Rename folder *old* to *new*, with all its subfolders (``.old.x`` → ``.new.x``)."""
    od, nd = imap_to_dir(old), imap_to_dir(new)
    if od == "" or nd == "":
        raise FolderNameError("INBOX cannot be renamed here")
    root = Path(maildir)
    if (root / nd).exists():
        raise FolderExistsError(f"{new}: folder exists")
    if nd.startswith(od + SEP):
        raise FolderNameError(f"cannot rename {old} into itself")
    moves = []
    with os.scandir(root) as it:
        for entry in it:
            if entry.name == od or entry.name.startswith(od + SEP):
                target = nd + entry.name[len(od):]
                if (root / target).exists():
                    raise FolderExistsError(f"{dir_to_imap(target)}: folder exists")
                moves.append((entry.name, target))
    if not moves:
        raise NoSuchFolderError(f"{old}: no such folder")
    for src, dst in sorted(moves):
        os.rename(root / src, root / dst)
    _fsync_dir(root)
