"""``authpasswd [method]``: print a password hash for authlib's databases.

On a terminal the password is asked twice (``Password:``, ``Reenter
password:``); otherwise one line is read from standard input. Without a
method the hash is MD5-crypt; ``md5``, ``md5raw``, ``sha256``, ``sha512`` and
``ssha`` give the ``{...}`` forms, and anything else ``{SSHA}``, as Courier's.
"""

from __future__ import annotations

import getpass
import os
import sys

from authdaemon.passwords import authpasswd_hash
from courierpy.cli.options import raw_args_command


def _read_line() -> str | None:
    line = sys.stdin.buffer.readline()
    if not line:
        return None
    return line.rstrip(b"\n").decode("utf-8", "surrogateescape")


@raw_args_command(interspersed=False)
def main(args: tuple[str, ...]) -> None:
    """Hash a password (see authpasswd(1))."""
    method = args[0] if args else None
    if os.isatty(sys.stdin.fileno()):
        try:
            first = getpass.getpass("Password: ")
            second = getpass.getpass("Reenter password: ")
        except EOFError:
            sys.exit(1)
        if first != second:
            sys.stderr.write("Passwords don't match.\n")
            sys.exit(1)
        password: str | None = first
    else:
        password = _read_line()
    if password is None:
        sys.exit(1)
    sys.stdout.write(authpasswd_hash(password.encode("utf-8", "surrogateescape"), method) + "\n")
    sys.exit(0)
