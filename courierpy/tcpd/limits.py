"""Connection slots and per-address counts, as couriertcpd keeps them (no I/O).

Observed on Courier's couriertcpd:

- at ``-maxprocs`` active connections nothing more is accepted: new clients
  wait in the listen queue until a child exits;
- every accepted connection takes a slot first, then the access file and the
  per-address limits are checked; a refused one is closed by a short-lived
  child and its slot is free when that child has been reaped;
- ``ALERT: <max> maximum active connections.`` is logged the first time the
  count reaches ``-maxprocs``, ``WARN: <n> active connections.`` the first
  time it reaches the warn level below that (each once per process);
- over ``-maxperip`` (or the access file's ``MAXCPERIP``) the connection is
  closed with nothing sent and ``ALERT: Maximum connection limit reached for
  <ip>`` is logged; over ``-maxperc`` (same /24) it is closed, nothing logged.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["Limits", "Slots", "c_block"]


def c_block(ip: str) -> str:
    """The "C network" an address belongs to: /24 for IPv4, /120 for IPv6."""
    addr = ipaddress.ip_address(ip)
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    prefix = 24 if addr.version == 4 else 120
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


@dataclass(frozen=True)
class Limits:
    maxprocs: int
    warn: int
    maxperip: int | None = None
    maxperc: int | None = None


@dataclass
class Slots:
    """The live connections and the log lines their coming and going cause."""

    limits: Limits
    active: int = 0
    per_ip: Counter[str] = field(default_factory=Counter)
    per_c: Counter[str] = field(default_factory=Counter)
    warned: bool = False
    alerted: bool = False

    def full(self) -> bool:
        """No more connections may be accepted now."""
        return self.active >= self.limits.maxprocs

    def take(self) -> list[str]:
        """A connection was accepted: take a slot; the log lines to write."""
        self.active += 1
        lines: list[str] = []
        if self.active >= self.limits.maxprocs:
            if not self.alerted:
                self.alerted = True
                lines.append(f"ALERT: {self.limits.maxprocs} maximum active connections.")
        elif not self.warned and self.active >= self.limits.warn:
            self.warned = True
            lines.append(f"WARN: {self.active} active connections.")
        return lines

    def give_back(self) -> None:
        """The slot of a refused connection (never admitted) is free again."""
        self.active -= 1

    def admit(self, ip: str, maxcperip: int | None = None) -> str | None:
        """Check the per-address limits for *ip*.

        ``None``: admitted.  Otherwise refused, and the string is the line to log:
        ``ALERT: ...`` over the per-IP limit, empty over ``-maxperc`` (Courier
        logs nothing then).  *maxcperip* (the access file's ``MAXCPERIP``)
        replaces ``-maxperip``.
        """
        limit = maxcperip if maxcperip is not None else self.limits.maxperip
        if limit is not None and limit > 0 and self.per_ip[ip] >= limit:
            return f"ALERT: Maximum connection limit reached for {ip}"
        block = c_block(ip)
        if self.limits.maxperc is not None and self.per_c[block] >= self.limits.maxperc:
            return ""
        self.per_ip[ip] += 1
        self.per_c[block] += 1
        return None

    def release(self, ip: str) -> None:
        """The child serving a connection admitted for *ip* has exited."""
        self.active -= 1
        for counter, key in ((self.per_ip, ip), (self.per_c, c_block(ip))):
            counter[key] -= 1
            if counter[key] <= 0:
                del counter[key]
