"""Shared folders: sharable maildirs and the virtual shared index.

Two mechanisms, as in Courier (README.sharedfolders):

* **Filesystem-permission sharing.**  A maildir lists the sharable maildirs it
  may reach in ``<maildir>/shared-maildirs``; ``/etc/courier/maildirshared``
  lists them for everyone.  Both hold ``nick<TAB>/path`` lines (the path is
  taken literally).  ``maildirmake --add nick=/path`` / ``--del nick`` edit the
  per-maildir file.

* **Virtual shared folders (ACL based).**  ``IMAP_SHAREDINDEXFILE`` (default
  ``/etc/courier/shared/index``) lists accounts and account groups::

      account-line = name TAB uid TAB gid TAB home [TAB maildir [TAB options]]
                     ; uid and gid numbers above 0, or the line is ignored
      group-line   = groupname TAB "*" TAB filename      ; in the same directory
      comment      = "#" ... / empty line

  ``maildir`` is relative to ``home`` (default ``./Maildir``) unless absolute.
  An account with the option ``sharedgroup=X`` uses ``<index>X`` as its top
  level index instead.  IMAP shows these as ``#shared.<group>...<account>.<folder>``;
  ``.`` and ``/`` in names become spaces, or ``\\:`` and ``\\;`` (with ``\\``
  doubled) under ``IMAP_SHAREDMUNGENAMES``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from courierpy.errors import CourierError

__all__ = [
    "GLOBAL_SHARED_FILE",
    "SHARED_MAILDIRS_FILE",
    "DEFAULT_INDEX_FILE",
    "IndexAccount",
    "IndexGroup",
    "SharedError",
    "SharedIndex",
    "SharedMaildir",
    "add_shared_maildir",
    "del_shared_maildir",
    "index_file_for",
    "munge_name",
    "parse_index",
    "parse_shared_maildirs",
    "read_shared_maildirs",
    "shared_maildirs_for",
    "unmunge_name",
]

SHARED_MAILDIRS_FILE = "shared-maildirs"
GLOBAL_SHARED_FILE = Path("/etc/courier/maildirshared")
DEFAULT_INDEX_FILE = Path("/etc/courier/shared/index")


class SharedError(CourierError):
    """A shared-folder file cannot be changed as asked; ``str()`` is Courier's message."""

    exit_code = 1


# -- shared-maildirs / maildirshared ------------------------------------------------


@dataclass(frozen=True)
class SharedMaildir:
    nick: str
    path: str


def parse_shared_maildirs(data: bytes) -> list[SharedMaildir]:
    """``nick<TAB>path`` lines; blank lines, ``#`` comments and lines without a tab are skipped."""
    out = []
    for line in data.decode("utf-8", "surrogateescape").split("\n"):
        if not line or line.startswith("#"):
            continue
        nick, tab, path = line.partition("\t")
        if tab and nick and path:
            out.append(SharedMaildir(nick, path))
    return out


def read_shared_maildirs(path: str | os.PathLike[str]) -> list[SharedMaildir]:
    try:
        with open(path, "rb") as f:
            return parse_shared_maildirs(f.read())
    except FileNotFoundError:
        return []


def shared_maildirs_for(
    maildir: str | os.PathLike[str], global_file: str | os.PathLike[str] = GLOBAL_SHARED_FILE
) -> list[SharedMaildir]:
    """The sharable maildirs *maildir* can reach: its own list, then the global one.

    A nickname in the maildir's own file hides the same one in the global file.
    """
    own = read_shared_maildirs(Path(maildir) / SHARED_MAILDIRS_FILE)
    nicks = {s.nick for s in own}
    return own + [s for s in read_shared_maildirs(global_file) if s.nick not in nicks]


def _write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def _format(entries: list[SharedMaildir]) -> bytes:
    return "".join(f"{e.nick}\t{e.path}\n" for e in entries).encode("utf-8", "surrogateescape")


def add_shared_maildir(maildir: str | os.PathLike[str], nick: str, path: str) -> None:
    """``maildirmake --add nick=path maildir``.

    Errors, as Courier's: a nickname with ``.`` or ``/`` → ``NICK: invalid name``
    (exit 1); a path that does not exist → ``PATH: No such file or directory``
    (1); a nickname already listed → ``NICK: already defined as a sharable
    maildir.`` (exit 2).  Tabs and newlines are refused too (Courier would
    write a corrupt line).
    """
    maildir = Path(maildir)
    if not nick or any(c in nick for c in "./\t\n") or "\n" in path:
        raise SharedError(f"{nick}: invalid name")
    try:
        os.stat(path)
    except OSError as e:
        raise SharedError(f"{path}: {e.strerror}") from None
    if not maildir.is_dir():
        raise SharedError(f"{maildir}: No such file or directory")
    file = maildir / SHARED_MAILDIRS_FILE
    entries = read_shared_maildirs(file)
    if any(e.nick == nick for e in entries):
        err = SharedError(f"{nick}: already defined as a sharable maildir.")
        err.exit_code = 2
        raise err
    entries.append(SharedMaildir(nick, path))
    _write_atomically(file, _format(entries))


def del_shared_maildir(maildir: str | os.PathLike[str], nick: str) -> None:
    """``maildirmake --del nick maildir``; ``NICK: not found.`` (exit 1) if absent."""
    file = Path(maildir) / SHARED_MAILDIRS_FILE
    entries = read_shared_maildirs(file)
    kept = [e for e in entries if e.nick != nick]
    if len(kept) == len(entries):
        raise SharedError(f"{nick}: not found.")
    _write_atomically(file, _format(kept))


# -- the virtual shared index -------------------------------------------------------------


@dataclass(frozen=True)
class IndexAccount:
    name: str
    uid: str
    gid: str
    home: str
    maildir: str  # absolute, or relative to home as written
    options: str = ""

    @property
    def maildir_path(self) -> Path:
        """Where the account's maildir is (``home/./Maildir`` by default)."""
        return Path(self.home) / (self.maildir or "./Maildir")


@dataclass(frozen=True)
class IndexGroup:
    name: str
    filename: str


def parse_index(data: bytes) -> list[IndexAccount | IndexGroup]:
    """Entries of one index file, in file order; malformed lines are skipped (as Courier)."""
    out: list[IndexAccount | IndexGroup] = []
    for line in data.decode("utf-8", "surrogateescape").split("\n"):
        if not line or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) >= 3 and fields[1] == "*" and fields[0] and fields[2]:
            out.append(IndexGroup(fields[0], fields[2]))
        elif len(fields) >= 4 and fields[0] and _positive(fields[1]) and _positive(fields[2]):
            maildir = fields[4] if len(fields) > 4 else ""
            options = fields[5] if len(fields) > 5 else ""
            out.append(IndexAccount(fields[0], fields[1], fields[2], fields[3], maildir, options))
    return out


def _positive(field: str) -> bool:
    """Courier rejects an account line whose uid or gid is not a number above 0."""
    return field.isdigit() and int(field) > 0


def _options(options: str | dict[str, str]) -> dict[str, str]:
    if isinstance(options, dict):
        return options
    out = {}
    for item in options.split(","):
        key, _, value = item.partition("=")
        if key:
            out[key.strip()] = value.strip()
    return out


def index_file_for(
    options: str | dict[str, str] = "", index_file: str | os.PathLike[str] = DEFAULT_INDEX_FILE
) -> Path:
    """The top-level index of an account: ``index_file`` + its ``sharedgroup`` option."""
    group = _options(options).get("sharedgroup", "")
    return Path(str(index_file) + group)


def munge_name(name: str, munge: bool = False) -> str:
    """An index name as an IMAP hierarchy component (``.``/``/`` are not allowed)."""
    if munge:
        return name.replace("\\", "\\\\").replace(".", "\\:").replace("/", "\\;")
    return name.replace(".", " ").replace("/", " ")


def unmunge_name(component: str) -> str:
    """Reverse :func:`munge_name` with ``munge=True``."""
    out = []
    i = 0
    while i < len(component):
        c = component[i]
        if c == "\\" and i + 1 < len(component):
            nxt = component[i + 1]
            out.append({"\\": "\\", ":": ".", ";": "/"}.get(nxt, nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


class SharedIndex:
    """The tree of index files rooted at one top-level index, read on demand.

    Group files are read once per object; a group that (directly or not)
    lists itself is not followed again, so a circular set-up cannot hang.
    Accounts whose maildir does not exist are left out, as Courier does.
    """

    def __init__(self, root: str | os.PathLike[str], *, munge: bool = False) -> None:
        self.root = Path(root)
        self.munge = munge
        self._files: dict[Path, list[IndexAccount | IndexGroup]] = {}

    def _entries(self, path: Path) -> list[IndexAccount | IndexGroup]:
        if path not in self._files:
            try:
                with open(path, "rb") as f:
                    self._files[path] = parse_index(f.read())
            except (FileNotFoundError, NotADirectoryError, PermissionError):
                self._files[path] = []
        return self._files[path]

    def children(self, components: tuple[str, ...] = ()) -> dict[str, IndexAccount | IndexGroup]:
        """Munged name → entry, one level below the (munged) path *components*."""
        path = self.root
        chain = {path}
        for comp in components:
            entry = self.children_of(path).get(comp)
            if not isinstance(entry, IndexGroup):
                return {}
            path = self.root.parent / entry.filename
            if path in chain:
                return {}
            chain.add(path)
        return self.children_of(path)

    def children_of(self, path: Path) -> dict[str, IndexAccount | IndexGroup]:
        out: dict[str, IndexAccount | IndexGroup] = {}
        for entry in self._entries(path):
            name = munge_name(entry.name, self.munge)
            if name in out:
                continue
            if isinstance(entry, IndexAccount) and not entry.maildir_path.is_dir():
                continue
            out[name] = entry
        return out

    def accounts(self) -> Iterator[tuple[tuple[str, ...], IndexAccount]]:
        """Every reachable account with its munged path (groups..., account)."""
        stack: list[tuple[tuple[str, ...], Path, frozenset[Path]]] = [
            ((), self.root, frozenset({self.root}))
        ]
        while stack:
            prefix, path, seen = stack.pop(0)
            for name, entry in self.children_of(path).items():
                if isinstance(entry, IndexAccount):
                    yield (*prefix, name), entry
                else:
                    sub = self.root.parent / entry.filename
                    if sub not in seen:
                        stack.append(((*prefix, name), sub, seen | {sub}))
