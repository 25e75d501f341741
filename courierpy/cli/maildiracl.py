"""maildiracl: list, change and compute Maildir folder ACLs, as Courier's tool."""

from __future__ import annotations

import sys

from courierpy.cli.options import raw_args_command
from courierpy.maildir import acl

USAGE = "Usage: maildiracl [ options ] maildir [INBOX[.folder] [identifier rights]]\n"

#: command → the smallest number of arguments after it
_MIN_ARGS = {"-reset": 1, "-list": 2, "-set": 4, "-delete": 3, "-compute": 3}


def _usage() -> int:
    sys.stdout.write(USAGE)
    sys.stdout.flush()
    return 1


def run(argv: list[str]) -> int:
    """The whole command on *argv* (without the program name); the exit status."""
    if not argv or argv[0] not in _MIN_ARGS or len(argv) - 1 < _MIN_ARGS[argv[0]]:
        return _usage()
    cmd, args = argv[0], argv[1:]
    out = sys.stdout.buffer
    try:
        if cmd == "-reset":
            acl.reset(args[0])
        elif cmd == "-list":
            for e in acl.read_acl(args[0], args[1]):
                out.write(f"{e.identifier}\t{e.rights}\n".encode("utf-8", "surrogateescape"))
        elif cmd == "-set":
            acl.set_acl(args[0], args[1], args[2], args[3])
        elif cmd == "-delete":
            acl.delete_acl(args[0], args[1], args[2])
        else:
            entries = acl.read_acl(args[0], args[1])
            out.write(acl.compute_rights(entries, args[2:]).encode() + b"\n")
    except acl.AclError as e:
        out.flush()
        sys.stderr.write(f"{e}\n")
        return e.exit_code
    except OSError as e:
        out.flush()
        sys.stderr.write(f"{args[0]}: {e.strerror}\n")
        return 1
    out.flush()
    return 0


@raw_args_command()
def main(args: tuple[str, ...]) -> None:
    """maildiracl -reset|-list|-set|-delete|-compute maildir [INBOX[.folder] ...]"""
    # Arguments such as "-user=bob" and "-r" are data, not options: the raw
    # vector is used (click only provides the entry point).
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
