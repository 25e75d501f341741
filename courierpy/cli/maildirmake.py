"""maildirmake: create Maildirs and folders, set quotas, manage sharable Maildirs.

Same synopsis, messages, exit codes and modes as Courier's maildirmake::

    maildirmake [-S] maildir                    new Maildir (0700; -S: 0755 top)
    maildirmake [-S | -s read|write[,group]] -f folder maildir
    maildirmake -q quota [-f folder] maildir    install maildirsize (always in the top Maildir)
    maildirmake --add name=/path maildir        shared-maildirs entry
    maildirmake --del name maildir

Options are parsed like getopt (``-q100S`` works, the last ``-f``/``-F`` wins).
    maildirmake --checkutf8|--convutf8 maildir [maildirfilter]

Deliberate differences: folder names that could leave the Maildir (``a/b``,
``a..b``, empty) are refused with ``Invalid folder name``; ``-q`` on a Maildir
or folder that does not exist creates it (the maildrop and courier builds
loop forever). ``--checkutf8``/``--convutf8`` convert pre-5.0 modified-UTF-7
folder names and subscriptions to UTF-8 as Courier's does, but leave names
that are already UTF-8 alone (Courier re-encodes them into garbage), check
every rename before doing any, and do not edit mail filter files.
"""

from __future__ import annotations

import getopt
import os
import sys
from pathlib import Path

from courierpy.cli.options import raw_args_command
from courierpy.maildir import folders, quota, subscriptions
from courierpy.wire import utf7

USAGE = "Usage: maildirmake [ options ] maildir"
SHARED = "shared-maildirs"


class _Usage(Exception):
    pass


def _err(path: str | os.PathLike[str], e: OSError) -> int:
    print(f"maildirmake: {path}: {e.strerror}", file=sys.stderr)
    return 1


def _modes(share: str | None, sharable: bool) -> tuple[int, int]:
    """(folder mode, tmp/new/cur mode) for -s/-S."""
    if share is None:
        return (0o755, 0o755) if sharable else (0o700, 0o700)
    kind, _, group = share.partition(",")
    if kind == "write":
        return (0o1750, 0o1770) if group == "group" else (0o1755, 0o1777)
    return (0o750, 0o750) if group == "group" else (0o755, 0o755)


def _add_shared(maildir: str, spec: str) -> int:
    name, _, path = spec.partition("=")
    if not os.path.isdir(maildir):
        print(f"{maildir}: No such file or directory", file=sys.stderr)
        return 1
    if not os.path.exists(path):
        print(f"{path}: No such file or directory", file=sys.stderr)
        return 1
    file = Path(maildir) / SHARED
    lines = file.read_text("utf-8").splitlines() if file.exists() else []
    if any(line.split("\t", 1)[0] == name for line in lines):
        print(f"{name}: already defined as a sharable maildir.", file=sys.stderr)
        return 2
    _rewrite(file, [*lines, f"{name}\t{path}"])
    return 0


def _del_shared(maildir: str, name: str) -> int:
    file = Path(maildir) / SHARED
    if not file.exists():
        print(f"{maildir}: No such file or directory", file=sys.stderr)
        return 1
    lines = file.read_text("utf-8").splitlines()
    kept = [line for line in lines if line.split("\t", 1)[0] != name]
    if len(kept) == len(lines):
        print(f"{name}: not found.", file=sys.stderr)
        return 1
    _rewrite(file, kept)
    return 0


def _rewrite(file: Path, lines: list[str]) -> None:
    tmp = file.with_name(f".{SHARED}.{os.getpid()}")
    tmp.write_text("".join(f"{line}\n" for line in lines), "utf-8")
    os.chmod(tmp, 0o644)
    os.rename(tmp, file)


def run(argv: list[str]) -> int:
    """maildirmake's logic; returns the exit status."""
    try:
        opts, args = getopt.getopt(argv, "q:f:F:Ss:",
                                   ["add=", "del=", "checkutf8", "convutf8"])
        if not args:
            raise _Usage
    except (getopt.GetoptError, _Usage):
        print(USAGE)
        return 1
    maildir = args[0]
    quota_spec = folder = share = add = delete = None
    sharable = False
    for opt, val in opts:
        if opt == "-q":
            quota_spec = val
        elif opt in ("-f", "-F"):
            folder = val
        elif opt == "-S":
            sharable = True
        elif opt == "-s":
            share = val
        elif opt == "--add":
            if "=" not in val or not val.partition("=")[2].startswith("/"):
                print(USAGE)
                return 1
            add = val
        elif opt == "--del":
            delete = val
        else:
            if len(args) not in (1, 2):
                print(USAGE)
                return 1
            return convert_utf8(maildir, args[1] if len(args) > 1 else None,
                                apply=opt == "--convutf8")
    if share is not None and folder is None:
        print(USAGE)
        return 1
    if add is not None:
        return _add_shared(maildir, add)
    if delete is not None:
        return _del_shared(maildir, delete)
    if folder is not None:
        if folder.startswith("."):
            print(f"Invalid folder name: {folder}")
            return 1
        try:
            folders.validate(folder)
        except folders.FolderNameError:
            print(f"Invalid folder name: {folder}")
            return 1
    if quota_spec is not None:
        return _set_quota(maildir, folder, quota_spec)
    if folder is None:
        try:
            folders.create_maildir(maildir, mode=0o755 if sharable else 0o700)
        except folders.FolderExistsError:
            print(f"maildirmake: {maildir}: File exists", file=sys.stderr)
            return 1
        except OSError as e:
            return _err(maildir, e)
        return 0
    path = os.path.join(maildir, "." + folder)
    mode, sub_mode = _modes(share, sharable)
    if not os.path.isdir(maildir):
        print(f"maildirmake: {path}: No such file or directory", file=sys.stderr)
        return 1
    try:
        folders.create_maildir(path, mode=mode, sub_mode=sub_mode, folder=True)
    except folders.FolderExistsError:
        print(f"maildirmake: {path}: File exists", file=sys.stderr)
        return 1
    except OSError as e:
        return _err(path, e)
    return 0


def _decoded(name: str) -> str | None:
    """The UTF-8 form of a pre-5.0 folder name, None if it needs no change."""
    if not name.isascii() or "&" not in name:
        return None  # plain ASCII, or already UTF-8
    new = utf7.decode(name)
    return new if new != name else None


def convert_utf8(maildir: str, mailfilter: str | None, *, apply: bool) -> int:
    """--checkutf8 (report) / --convutf8 (do): modified-UTF-7 names → UTF-8."""
    print(f"Checking {maildir}:")
    sys.stdout.flush()
    root = Path(maildir)
    try:
        entries = sorted(e.name for e in os.scandir(root)
                         if e.name.startswith(".") and e.name not in (".", "..") and e.is_dir())
    except OSError as e:
        return _err(maildir, e)
    renames = []
    for d in entries:
        try:
            new = _decoded(d[1:])
        except utf7.UTF7Error:
            print(f"Error: INBOX.{d[1:]}: does not appear to be valid modified-UTF7",
                  file=sys.stderr)
            return 1
        if new is not None:
            renames.append((d[1:], new))
    subs = subscriptions.read(root)
    new_subs, sub_changes = [], []
    for entry in subs:
        try:
            new = _decoded(entry) if entry.upper().startswith("INBOX.") else None
        except utf7.UTF7Error:
            print(f"Error: courierimapsubscribed: {entry}: does not appear to be valid "
                  "modified-UTF7", file=sys.stderr)
            return 1
        new_subs.append(new or entry)
        if new is not None:
            sub_changes.append((entry, new))
    targets = [new for _, new in renames]
    sources = {old for old, _ in renames}
    for old, new in renames:
        if targets.count(new) > 1 or (new not in sources and (root / ("." + new)).exists()):
            print(f"Error: INBOX.{old}: INBOX.{new} already exists", file=sys.stderr)
            return 1
    for old, new in sub_changes:
        print(f"Subscription to {old} changed to {new}")
    for old, new in renames:
        print(f"Rename INBOX.{old} to INBOX.{new}")
    if mailfilter is not None:
        print(f"maildirmake: {mailfilter}: mail filter files are not converted; "
              "check the folder names in it", file=sys.stderr)
    if not apply:
        print(f"Verified {root / subscriptions.SUBSCRIBED}")
        return 0
    print(f"Updating {root / subscriptions.SUBSCRIBED}")
    sys.stdout.flush()
    try:
        if sub_changes:
            subscriptions.write(root, new_subs)
        for old, new in renames:
            os.rename(root / ("." + old), root / ("." + new))
    except OSError as e:
        return _err(e.filename or maildir, e)
    return 0


def _set_quota(maildir: str, folder: str | None, spec_text: str) -> int:
    try:
        quota.parse_spec(spec_text)
    except quota.QuotaSpecError:
        print(f"WARN: quota string '{spec_text}' not parseable", file=sys.stderr)
        return 0
    try:
        folders.create_maildir(maildir, exist_ok=True)
        target = Path(maildir)
        if folder is not None:
            target = folders.create_maildir(target / ("." + folder), folder=True,
                                             exist_ok=True)
        quota.set_quota(target, spec_text)
    except OSError as e:
        return _err(e.filename or maildir, e)
    return 0


@raw_args_command()
def main(args: tuple[str, ...]) -> None:
    """Create a Maildir++ (see maildirmake(1))."""
    sys.exit(run(list(args)))


if __name__ == "__main__":  # pragma: no cover
    main()
