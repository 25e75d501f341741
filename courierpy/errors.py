"""One error family for the whole project.

Every error that can reach a user knows how it should be reported: the exit
code a command-line tool ends with (sysexits, as Courier's tools use them).
Protocol errors (IMAP ``BAD``/``NO``, POP3 ``-ERR``) extend this family in the
protocol packages.
"""

from __future__ import annotations

# sysexits.h values used by Courier's tools.
EX_USAGE = 64
EX_DATAERR = 65
EX_NOINPUT = 66
EX_SOFTWARE = 70
EX_OSERR = 71
EX_CANTCREAT = 73
EX_IOERR = 74
EX_TEMPFAIL = 75
EX_NOPERM = 77
EX_CONFIG = 78


class CourierError(Exception):
    """Base of every error raised on purpose by courierpy and authdaemon."""

    #: Exit status a command-line tool uses when this error ends it.
    exit_code: int = 1


class ConfigError(CourierError):
    """A configuration file cannot be read or has a malformed line.

    ``str()`` gives ``FILE:LINE: message`` (or ``FILE: message`` when the
    problem is not tied to one line), the form editors and admins expect.
    """

    exit_code = EX_CONFIG

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path = path
        self.line = line
        self.message = message
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")
