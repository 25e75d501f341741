"""couriertcpd's command line, parsed as Courier's parses it.

``couriertcpd [-option[=value]]... portlist program [arg...]``: options come
first, each ``-name`` or ``-name=value``; the first word not starting with
``-`` is the port list; everything after the program is passed verbatim.
The messages and exit code 1 of every refusal are Courier's, word for word.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field

from courierpy.errors import CourierError

__all__ = ["Listen", "OptionError", "TcpdOptions", "parse_args", "parse_portlist"]

#: Options that take no value (a value given anyway is ignored, as Courier does).
_FLAGS = {"accesslocal", "nodnslookup", "noidentlookup", "stop", "restart"}
_VALUED = {
    "access", "address", "denymsg", "drop", "group", "user", "listen", "maxperc",
    "maxperip", "maxprocs", "warn", "pid", "stderr", "stderrlogger",
    "stderrloggername", "block", "allow",
}


class OptionError(CourierError):
    """A command line Courier refuses; ``str()`` is its exact message."""

    exit_code = 1


@dataclass(frozen=True)
class Listen:
    """One socket to open: *host* ``None`` means the wildcard address."""

    host: str | None
    port: int


@dataclass
class TcpdOptions:
    """Everything the command line says."""

    access: str | None = None
    accesslocal: bool = False
    address: str | None = None
    denymsg: str | None = None
    drop: str | None = None
    group: str | None = None
    user: str | None = None
    listen: int | None = None
    maxperc: int | None = None
    maxperip: int | None = 4  # Courier's default (measured)
    maxprocs: int = 40
    warn: int | None = None
    nodnslookup: bool = False
    noidentlookup: bool = False
    pid: str | None = None
    stop: bool = False
    restart: bool = False
    stderr: str | None = None
    stderrlogger: str | None = None
    stderrloggername: str | None = None
    block: list[str] = field(default_factory=list)
    allow: list[str] = field(default_factory=list)
    portlist: str = ""
    program: str = ""
    args: list[str] = field(default_factory=list)

    @property
    def warn_level(self) -> int:
        """``-warn``, else Courier's default: ``maxprocs - maxprocs/10 - 1``.

        (Its manual says 90%; measured: 35 for 40, 17 for 20, 8 for 10, 3 for 4.)
        """
        if self.warn is not None:
            return self.warn
        return self.maxprocs - self.maxprocs // 10 - 1


def _atoi(text: str) -> int:
    """C's atoi: leading blanks, a sign, digits; anything else ends it (0 if none)."""
    s = text.lstrip(" \t\n")
    sign = 1
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    digits = ""
    for c in s:
        if not c.isdigit() or not c.isascii():
            break
        digits += c
    return sign * int(digits) if digits else 0


def _positive(value: str | None, message: str) -> int:
    n = _atoi(value or "")
    if n <= 0:
        raise OptionError(message)
    return n


def parse_args(argv0: str, args: list[str]) -> TcpdOptions:
    """Parse ``args`` (without the program name); raise :class:`OptionError`."""
    o = TcpdOptions()
    i = 0
    while i < len(args) and args[i].startswith("-"):
        name, eq, value = args[i][1:].partition("=")
        val = value if eq else None
        if name in _FLAGS:
            setattr(o, name, True)
        elif name in ("block", "allow"):
            getattr(o, name).append(val or "")
        elif name == "maxprocs":
            o.maxprocs = _positive(val, "Invalid -maxprocsarg option.")
        elif name == "maxperip":
            o.maxperip = _positive(val, "Invalid -maxperip option.")
        elif name == "maxperc":
            o.maxperc = _positive(val, "Invalid -maxperc option.")
        elif name == "listen":
            o.listen = _positive(val, "Invalid -listen option.")
        elif name == "warn":
            o.warn = _atoi(val or "")
        elif name == "drop":
            o.drop = val if val else "BLOCK"
        elif name in _VALUED:
            setattr(o, name, val if val is not None else "")
        else:
            raise OptionError(f"{argv0}: Invalid option: {args[i]}")
        i += 1
    if o.stop or o.restart:
        if not o.pid:
            raise OptionError(f"{argv0}: -pid argument is required.")
        return o
    if len(args) - i < 2:
        raise OptionError(f"Usage: {argv0} [options] port prog arg1 arg2...")
    o.portlist, o.program, o.args = args[i], args[i + 1], args[i + 2:]
    return o


def _check_ip(text: str) -> str:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise OptionError(f"Invalid IP address: {text}") from None
    return text


def _port(text: str) -> int:
    if text.isascii() and text.isdigit():
        n = int(text)
        if 0 < n <= 65535:
            return n
        raise OptionError(f"Invalid port: {text}")
    try:
        return socket.getservbyname(text, "tcp")
    except OSError:
        raise OptionError(f"Invalid port: {text}") from None


def parse_portlist(portlist: str, address: str | None) -> list[Listen]:
    """``143`` / ``127.0.0.1.143,993`` (+ ``-address``) → the sockets to open.

    An address of ``0`` means the wildcard, as in Courier's config files.
    """
    default: str | None = None
    if address is not None and address != "0":
        default = _check_ip(address)
    out: list[Listen] = []
    for item in portlist.split(","):
        if not item:
            continue
        host, dot, port = item.rpartition(".")
        if dot:
            out.append(Listen(None if host == "0" else _check_ip(host), _port(port)))
        else:
            out.append(Listen(default, _port(item)))
    return out
