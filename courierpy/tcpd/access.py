"""The access database couriertcpd consults for every connection.

Keys are address prefixes written as Courier writes them; the value of the
most specific key that exists decides (observed on Courier's couriertcpd):

- IPv4 (and IPv4-mapped IPv6) addresses: ``a.b.c.d``, ``a.b.c``, ``a.b``,
  ``a``, then ``*``;
- other IPv6 addresses: ``:hhhh:hhhh:...`` with all eight groups written as
  four lowercase hex digits, then seven groups, ... one group, then ``*``.

With ``-accesslocal`` the local end is looked up first (``ip.port``, then the
address and its prefixes as above, then ``*.port``, then ``*``; the first key
found): a ``deny`` there refuses the connection, otherwise its variables are
set; then the remote address is looked up as above.

A value starting with ``deny`` refuses the connection.  Anything else allows
it; a leading ``allow`` (and one comma after it) is skipped, and each
remaining comma-separated item, trimmed of blanks, becomes an environment
variable (``NAME`` alone means ``NAME=``).  ``1`` is what ``makedat`` stores
for a key without a value, and Courier sets it as the variable ``1=``; we do
the same.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field

from courierpy.gdbm import GdbmError, GdbmFile, Mode, open_gdbm

__all__ = [
    "AccessDb",
    "Decision",
    "canonical_ip",
    "local_keys",
    "parse_value",
    "remote_keys",
]

_MAPPED_PREFIX = "::ffff:"


@dataclass(frozen=True)
class Decision:
    """What the access file says about one connection."""

    allowed: bool = True
    #: Variables to put into the child's environment, in file order.
    env: tuple[tuple[str, str], ...] = field(default=())

    def get(self, name: str) -> str | None:
        """The last value given to *name*, or ``None``."""
        value = None
        for k, v in self.env:
            if k == name:
                value = v
        return value


def canonical_ip(address: str) -> str:
    """The address as Courier shows it: IPv4 as ``::ffff:a.b.c.d``, IPv6 compressed."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 4:
        return _MAPPED_PREFIX + str(ip)
    if ip.ipv4_mapped is not None:
        return _MAPPED_PREFIX + str(ip.ipv4_mapped)
    return str(ip)


def _key_forms(address: str) -> list[str]:
    """Full-address key first, then ever shorter prefixes (no ``*``)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.version == 4:
        parts = str(ip).split(".")
        return [".".join(parts[:n]) for n in range(4, 0, -1)]
    groups = ip.exploded.split(":")
    return [":" + ":".join(groups[:n]) for n in range(8, 0, -1)]


def remote_keys(address: str) -> list[str]:
    """The keys tried, in order, for the remote address."""
    return [*_key_forms(address), "*"]


def local_keys(address: str, port: int) -> list[str]:
    """The keys tried, in order, for the local end with ``-accesslocal``."""
    forms = _key_forms(address)
    return [f"{forms[0]}.{port}", *forms, f"*.{port}", "*"]


def parse_value(value: bytes) -> Decision:
    """Interpret one access-file value (see the module docstring)."""
    text = value.decode("utf-8", "surrogateescape")
    if text.startswith("deny"):
        return Decision(allowed=False)
    if text.startswith("allow"):
        text = text[5:]
        if text.startswith(","):
            text = text[1:]
    env: list[tuple[str, str]] = []
    if text:
        for item in text.split(","):
            item = item.strip(" \t")
            name, _, val = item.partition("=")
            env.append((name, val))
    return Decision(allowed=True, env=tuple(env))


class AccessDb:
    """An open access file (``-access=file.dat``); :meth:`reopen` after SIGHUP.

    A missing or unreadable file allows everything, as Courier's does (it says
    so once, at start-up, on stderr).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._db: GdbmFile | None = None
        self.error: str | None = None
        self.reopen()

    def reopen(self) -> None:
        """Close and open the file again (it may have been replaced by makedat)."""
        self.close()
        try:
            self._db = open_gdbm(self.path, Mode.READ, lock=False)
            self.error = None
        except GdbmError:
            self._db = None
            try:
                os.stat(self.path)
                reason = "cannot open"
            except OSError as e:
                reason = e.strerror or str(e)
            self.error = f"{self.path}: {reason}"

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def abandon(self) -> None:
        """In a forked child: drop the parent's handle without touching its lock."""
        if self._db is not None:
            self._db.abandon()
            self._db = None

    def _first(self, keys: list[str]) -> bytes | None:
        if self._db is None:
            return None
        for key in keys:
            value = self._db.fetch(key.encode("ascii"))
            if value is not None:
                return value
        return None

    def check(self, remote_ip: str, local_ip: str | None = None,
              local_port: int | None = None) -> Decision:
        """The decision for a connection (local end looked up only when given)."""
        env: list[tuple[str, str]] = []
        if local_ip is not None and local_port is not None:
            value = self._first(local_keys(local_ip, local_port))
            if value is not None:
                local = parse_value(value)
                if not local.allowed:
                    return local
                env.extend(local.env)
        value = self._first(remote_keys(remote_ip))
        if value is None:
            return Decision(allowed=True, env=tuple(env))
        remote = parse_value(value)
        if not remote.allowed:
            return remote
        return Decision(allowed=True, env=tuple(env) + remote.env)
