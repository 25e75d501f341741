"""``userdb``: edit the userdb text source, as Courier's userdb tool does.

::

    userdb [path/.../ | -f file ]name set field=value field...
    userdb [path/.../ | -f file ]name unset field field...
    userdb [path/.../ | -f file ]name del
    userdb -show [path/... | -f file ] [name]

The source is ``<config dir>/userdb``; ``path/`` picks a file below it when it
is a directory; ``-f file`` picks any file.  A ``field`` given without
``=value`` is read from standard input (one line each, with a
``name.field: `` prompt on a terminal).  Run ``makeuserdb`` afterwards.
"""

from __future__ import annotations

import errno
import sys
from pathlib import Path

from authdaemon.userdb import textdb
from courierpy.cli.options import raw_args_command

USAGE = (
    "Usage: {0} [path/.../ | -f file ]name set field=value field=value...\n"
    "       {0} [path/.../ | -f file ]name unset field field...\n"
    "       {0} [path/.../ | -f file ]name del\n"
    "       {0} -show [path/... | -f file ] [name]\n"
)


class _Usage(Exception):
    pass


def _has_char(value: str | None) -> bool:
    """Perl's ``/./``: at least one character other than a newline."""
    return value is not None and any(c != "\n" for c in value)


def _read_values(name: str, fields: list[str]) -> list[str]:
    """Fill in each bare ``field`` from stdin (Courier's prompt on a tty)."""
    isatty = sys.stdin.isatty()
    out: list[str] = []
    for arg in fields:
        if "=" in arg:
            out.append(arg)
            continue
        if isatty:
            sys.stdout.write(f"{name}.{arg}: ")
            sys.stdout.flush()
        raw = sys.stdin.buffer.readline()
        if raw == b"":
            raise SystemExit(1)
        value = raw.decode(textdb.ENCODING, textdb.ERRORS)
        if value.endswith("\n"):
            value = value[:-1]
        if "|" in value or "\n" in value:
            # Courier's script exits with the errno left behind by Perl's terminal
            # checks on stdin/stdout: ENOTTY.
            raise textdb.TextDbError("Invalid value.", errno.ENOTTY)
        out.append(f"{arg}={value}")
    return out


def run(config_dir: Path, argv: list[str]) -> int:
    """The tool on an argument list; returns the exit status."""
    args = list(argv)
    default = config_dir / "userdb"
    if default.is_symlink():
        raise textdb.symlink_refusal(default, "userdb")

    name = args.pop(0) if args else None
    doshow = False
    if name == "-show":
        doshow = True
        name = args.pop(0) if args else None
    userdb: str | None = str(default)
    path_spec: str | None = None
    if name == "-f":
        userdb = args.pop(0) if args else None
        name = args.pop(0) if args else None
    elif name is not None and "/" in name:
        path_spec = name
        head, _, name = name.rpartition("/")
        userdb = f"{default}/{head}"

    verb = None
    if doshow:
        if not _has_char(userdb):
            raise _Usage
    else:
        verb = args.pop(0) if args else None
        if not (_has_char(verb) and _has_char(name) and _has_char(userdb)):
            raise _Usage
    assert userdb is not None
    path = textdb.follow_links(Path(userdb))
    for arg in args:
        textdb.check_value(arg)

    if doshow:
        # Deliberate difference: Courier's man page documents "-show path [addr]",
        # but its script reads "-show a/b" as record "b" of file "a" and ignores
        # any addr after it, and "-show path/" lists nothing.  We keep the one-word
        # form ("-show a/b" = record b of file a), list the file for "-show path/",
        # and honour the documented "-show path addr".
        if path_spec is not None and args:
            path = textdb.follow_links(Path(f"{default}/{path_spec.rstrip('/')}"))
            name = args[0]
        elif name == "":
            name = None
        for line in textdb.show(path, name):
            sys.stdout.buffer.write((line + "\n").encode(textdb.ENCODING, textdb.ERRORS))
        return 0
    assert name is not None
    if verb == "set":
        textdb.set_fields(path, name, _read_values(name, args))
    elif verb == "unset":
        textdb.unset_fields(path, name, args)
    elif verb == "del":
        if args:
            raise _Usage
        textdb.delete_record(path, name)
    else:
        raise _Usage
    return 0


@raw_args_command(config_dir=True, interspersed=False)
def main(config_dir: Path, args: tuple[str, ...]) -> None:
    """Edit the userdb text database (see userdb(8))."""
    try:
        status = run(config_dir, list(args))
    except _Usage:
        sys.stdout.write(USAGE.format(sys.argv[0]))
        status = 1
    except textdb.TextDbError as exc:
        sys.stdout.flush()
        sys.stderr.write(f"{exc}\n")
        status = exc.exit_code
    sys.exit(status)
