"""Courier's log lines: ``INFO: WHAT, user=..., ip=[...], port=[...][, tail]`` on stderr.

couriertcpd passes the login stage's stderr to the log (Courier's
courierlogger puts it into syslog as ``imapd: LOGIN FAILED, ...``), so the
exact words matter: fail2ban's ``courierlogin`` filters match them.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TextIO


def where(env: Mapping[str, str]) -> str:
    """``ip=[...], port=[...]`` from couriertcpd's variables."""
    return f"ip=[{env.get('TCPREMOTEIP', '')}], port=[{env.get('TCPREMOTEPORT', '')}]"


def log(env: Mapping[str, str], message: str, tail: str = "",
        stream: TextIO | None = None) -> None:
    """Write ``INFO: <message>, ip=[..], port=[..][, tail]`` (``ERR: ...`` verbatim;
    ``NOTICE: <message>`` gets the address and tail at the NOTICE level)."""
    out = stream or sys.stderr
    if message.startswith(("ERR:", "DEBUG:", "WARN:")):
        out.write(message + "\n")
    else:
        level = "NOTICE" if message.startswith("NOTICE: ") else "INFO"
        message = message.removeprefix("NOTICE: ")
        out.write(f"{level}: {message}, {where(env)}" + (f", {tail}" if tail else "") + "\n")
    out.flush()
