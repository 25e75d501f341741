"""userdbpw: read a password, print the hash to store in a userdb ``*pw`` field.

Usage, as Courier's::

    userdbpw [-md5] [-hmac-md5 | -hmac-sha1 | -hmac-sha256]

No option gives a traditional DES crypt, ``-md5`` an MD5-crypt (``$1$``),
``-hmac-<hash>`` the HMAC state a CRAM-<HASH> login needs (an ``-hmac-``
option wins over ``-md5`` wherever it stands; the last ``-hmac-`` wins).  Any
other argument: ``userdbpw: invalid argument.`` and exit 1, before anything is
read.

On a terminal the password is asked for twice with echo off (``Password: ``,
``Reenter password: ``, on standard error) until both agree; otherwise one
line is read from standard input.  End of input before the first character
exits 1 with no output.  Interrupting the prompt (SIGINT, SIGHUP) restores the
terminal, prints an empty line and exits 0, as Courier's does.

The arguments are parsed by hand rather than by click: Courier's grammar has
no ``--`` marker and no help option (``userdbpw -- -md5`` and ``userdbpw
--help`` are invalid arguments there), and click's parser always has both.
"""

from __future__ import annotations

import os
import signal
import sys
import termios
from typing import BinaryIO

from authdaemon.passwords import (
    CRAM_ALGORITHMS,
    MAX_PASSWORD_LINE,
    PasswordTooLongError,
    hash_password,
    hmac_secret,
)

PROG = "userdbpw"

PROMPT = b"Password: "
REPROMPT = b"\nReenter password: "
MISMATCH = b"\nPasswords don't match.\n\n"

#: crypt(3)'s failure token; Courier's userdbpw prints it for a password of
#: 512 bytes or more in DES mode (a value that never verifies).
CRYPT_FAILURE = "*0"


class InvalidArgument(Exception):
    """An argument userdbpw does not know."""


def parse_args(args: list[str]) -> tuple[bool, str | None]:
    """``(md5, hmac_algorithm)`` from the arguments, or :class:`InvalidArgument`."""
    md5 = False
    algo: str | None = None
    for arg in args:
        if arg == "-md5":
            md5 = True
        elif arg.startswith("-hmac-") and arg[6:] in CRAM_ALGORITHMS:
            algo = arg[6:]
        else:
            raise InvalidArgument(arg)
    return md5, algo


def read_line(stream: BinaryIO) -> bytes | None:
    """One line without its LF, cut at :data:`MAX_PASSWORD_LINE` bytes.

    None if the input ends before a single byte was read (Courier then exits 1).
    """
    kept = bytearray()
    seen = False
    while True:
        chunk = stream.readline(65536)
        if not chunk:
            return bytes(kept) if seen else None
        seen = True
        line_done = chunk.endswith(b"\n")
        if line_done:
            chunk = chunk[:-1]
        room = MAX_PASSWORD_LINE - len(kept)
        if room > 0:
            kept += chunk[:room]
        if line_done:
            return bytes(kept)


def make_hash(password: bytes, md5: bool, algo: str | None) -> str:
    """What userdbpw prints for *password* with these options."""
    if algo is not None:
        return hmac_secret(password, algo)
    if md5:
        return hash_password(password, "md5-crypt")
    try:
        return hash_password(password, "des")
    except PasswordTooLongError:
        return CRYPT_FAILURE  # what Courier prints when crypt(3) refuses


def _ask_on_terminal(stdin: BinaryIO) -> bytes | None:
    """Prompt twice with echo off until both entries agree; None on end of input."""
    fd = stdin.fileno()
    saved = termios.tcgetattr(fd)

    def interrupted(signum: int, frame: object) -> None:
        os.write(1, b"\n")
        termios.tcsetattr(fd, termios.TCSANOW, saved)
        os._exit(0)

    old_int = signal.signal(signal.SIGINT, interrupted)
    old_hup = signal.signal(signal.SIGHUP, interrupted)
    quiet = list(saved)
    quiet[3] &= ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSANOW, quiet)
    try:
        while True:
            os.write(2, PROMPT)
            first = read_line(stdin)
            if first is None:
                return None
            os.write(2, REPROMPT)
            second = read_line(stdin)
            if second is None:
                return None
            if first.split(b"\0")[0] == second.split(b"\0")[0]:
                os.write(2, b"\n")
                return first
            os.write(2, MISMATCH)
    finally:
        # Courier leaves echo off when input ends at a prompt; we always restore it.
        termios.tcsetattr(fd, termios.TCSANOW, saved)
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGHUP, old_hup)


def _is_terminal(fd: int) -> bool:
    try:
        termios.tcgetattr(fd)
    except (termios.error, OSError):
        return False
    return True


HELP = """\
Usage: userdbpw [-md5 | -hmac-md5 | -hmac-sha1 | -hmac-sha256]

Read a password (twice from a terminal, else one line from standard input)
and print its hash for a userdb password field: traditional DES crypt by
default, MD5-crypt with -md5, or the HMAC secret for CRAM-MD5, CRAM-SHA1 or
CRAM-SHA256. See userdbpw(8).
"""


def main(argv: list[str] | None = None) -> int:
    """Run userdbpw; returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--help"]:
        # Courier's userdbpw calls --help an invalid argument; ours helps.
        sys.stdout.write(HELP)
        return 0
    try:
        md5, algo = parse_args(args)
    except InvalidArgument:
        sys.stderr.write(f"{PROG}: invalid argument.\n")
        sys.stderr.flush()
        return 1
    if sys.stdin is None:  # started with standard input closed: nothing to read
        return 1
    stdin = sys.stdin.buffer
    if _is_terminal(stdin.fileno()):
        password = _ask_on_terminal(stdin)
    else:
        password = read_line(stdin)
    if password is None:
        return 1
    out = sys.stdout.buffer
    out.write(make_hash(password, md5, algo).encode("ascii") + b"\n")
    out.flush()
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
