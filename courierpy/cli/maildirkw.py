"""maildirkw: set or list the IMAP keywords of Maildir messages, as Courier's tool."""

from __future__ import annotations

import getopt
import sys

from courierpy.cli.options import raw_args_command
from courierpy.maildir import keywords as kw

USAGE = "Usage: maildirkw [ options ] maildir [+/-]flag [+/-]flag...\n"


def _usage() -> None:
    sys.stdout.write(USAGE)
    sys.stdout.flush()
    sys.exit(1)


def run(argv: list[str], prog: str = "maildirkw") -> int:
    """The whole command on *argv* (without the program name); the exit status."""
    try:
        opts, args = getopt.gnu_getopt(argv, "clLar")
    except getopt.GetoptError as e:
        sys.stderr.write(f"{prog}: invalid option -- '{e.opt}'\n")
        _usage()
    flags = {o for o, _ in opts}
    case_sensitive = "-c" in flags
    mode = "set"
    for o, _ in opts:  # the last of -a/-r wins, as with Courier's getopt loop
        if o == "-a":
            mode = "add"
        elif o == "-r":
            mode = "remove"

    out = sys.stdout.buffer
    try:
        if "-L" in flags:
            if not args:
                _usage()
            state = kw.load(args[0], case_sensitive=case_sensitive)
            for base, words in state.messages.items():
                out.write(" ".join([base, *words]).encode("utf-8", "surrogateescape") + b"\n")
            out.flush()
            return 0
        if len(args) < 2:
            _usage()
        maildir, basename, words = args[0], args[1], args[2:]
        lock = kw.FolderLock(maildir) if "-l" in flags else None
        if lock is not None:
            lock.__enter__()
        try:
            if mode == "set":
                kw.set_keywords(maildir, basename, words, case_sensitive=case_sensitive)
            elif mode == "add":
                kw.update_keywords(maildir, basename, add=words, case_sensitive=case_sensitive)
            else:
                kw.update_keywords(maildir, basename, remove=words, case_sensitive=case_sensitive)
        finally:
            if lock is not None:
                lock.__exit__(None, None, None)
    except kw.KeywordError as e:
        if not e.silent:
            sys.stderr.write(f"{e}\n")
        return e.exit_code
    return 0


@raw_args_command()
def main(args: tuple[str, ...]) -> None:
    """maildirkw [-c] [-l] [-a|-r] maildir message [keyword...] | maildirkw [-c] -L maildir"""
    # Courier parses with GNU getopt; click would swallow a "--", so the raw
    # argument vector is handed over (click only provides the entry point).
    # getopt names the program as invoked (argv[0]), as Courier's does.
    prog = sys.argv[0] if not sys.argv[0].endswith(".py") else "maildirkw"
    sys.exit(run(sys.argv[1:], prog))


if __name__ == "__main__":
    main()
