"""A stderr-to-syslog forwarder in the manner of Courier's courierlogger.

couriertcpd's ``-stderrlogger=PROG`` runs ``PROG NAME`` with the servers'
standard error on its stdin.  Each line ``LEVEL: text`` goes to syslog
(facility mail) as ``NAME: text`` with the level as priority (``INFO``,
``DEBUG``, ``WARN``, ``ERR``, ``ALERT``, ``CRIT``); a line without a known
prefix goes as it is, priority error.  The resulting syslog lines
(``... imapd: LOGIN FAILED, user=erin, ip=[::ffff:1.2.3.4], port=[5]``) are
the ones fail2ban's ``courierlogin`` filters were written for.
"""

from __future__ import annotations

import sys
import syslog

__all__ = ["split_level"]

_LEVELS = {
    "DEBUG": syslog.LOG_DEBUG, "INFO": syslog.LOG_INFO, "NOTICE": syslog.LOG_NOTICE,
    "WARN": syslog.LOG_WARNING, "WARNING": syslog.LOG_WARNING, "ERR": syslog.LOG_ERR,
    "ERROR": syslog.LOG_ERR, "CRIT": syslog.LOG_CRIT, "ALERT": syslog.LOG_ALERT,
}


def split_level(line: str) -> tuple[int, str]:
    """``"INFO: LOGIN, ..."`` → ``(LOG_INFO, "LOGIN, ...")``."""
    head, sep, rest = line.partition(": ")
    if sep and head in _LEVELS:
        return _LEVELS[head], rest
    return syslog.LOG_ERR, line


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--help"]:
        print("Usage: courierpy-syslogger [-name=NAME]\n\n"
              "Copy standard input, one log line at a time, to syslog (facility mail),\n"
              "mapping Courier's INFO:/WARN:/ERR: prefixes to syslog levels.")
        return 0
    name = (args[0] if args else "courierpy").removeprefix("-name=")
    syslog.openlog(name, 0, syslog.LOG_MAIL)
    for raw in sys.stdin.buffer:
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        if text:
            prio, msg = split_level(text)
            syslog.syslog(prio, msg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
