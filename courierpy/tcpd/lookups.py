"""The lookups a child makes before its program runs (they block only it).

- :func:`add_dns`: ``TCPREMOTEHOST`` and ``TCPLOCALHOST`` from reverse DNS,
  confirmed forward; ``softdnserr`` when the lookup fails temporarily or the
  forward lookup does not give the address back; unset when there is no name.
- :func:`add_ident`: ``TCPREMOTEINFO`` from the client's ident (RFC 1413) server.
- :func:`add_dnsbl`: ``-allow``/``-block`` DNS lists, A records only.
"""

from __future__ import annotations

import ipaddress
import socket

__all__ = ["add_dns", "add_dnsbl", "add_ident", "hostname_for"]

IDENT_TIMEOUT = 5.0
_MAPPED = "::ffff:"


def _plain(ip: str) -> str:
    return ip[len(_MAPPED):] if ip.startswith(_MAPPED) else ip


def hostname_for(ip: str) -> str | None:
    """The confirmed name of *ip*, ``softdnserr``, or ``None`` (no name)."""
    addr = _plain(ip)
    try:
        name = socket.gethostbyaddr(addr)[0]
    except socket.herror:
        return None
    except OSError:
        return "softdnserr"
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as e:
        return None if e.errno == socket.EAI_NONAME else "softdnserr"
    want = ipaddress.ip_address(addr)
    for info in infos:
        try:
            if ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) == want:
                return name
        except ValueError:
            continue
    return "softdnserr"


def add_dns(env: dict[str, str]) -> None:
    for ip_key, host_key in (("TCPREMOTEIP", "TCPREMOTEHOST"), ("TCPLOCALIP", "TCPLOCALHOST")):
        name = hostname_for(env[ip_key])
        if name is not None:
            env[host_key] = name


def add_ident(env: dict[str, str]) -> None:
    """Ask the client's port 113 who owns the connection; quietly give up on failure."""
    remote, local = _plain(env["TCPREMOTEIP"]), _plain(env["TCPLOCALIP"])
    try:
        with socket.create_connection((remote, 113), timeout=IDENT_TIMEOUT,
                                      source_address=(local, 0)) as s:
            s.sendall(f"{env['TCPREMOTEPORT']},{env['TCPLOCALPORT']}\r\n".encode())
            data = b""
            while b"\n" not in data and len(data) < 1024:
                chunk = s.recv(1024)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return
    parts = data.decode("latin-1").strip().split(":", 3)
    if len(parts) == 4 and parts[1].strip().upper() == "USERID":
        env["TCPREMOTEINFO"] = parts[3].strip()


def _query_name(ip: str, zone: str) -> str:
    addr = ipaddress.ip_address(_plain(ip))
    if addr.version == 4:
        return ".".join(reversed(str(addr).split("."))) + "." + zone
    nibbles = addr.exploded.replace(":", "")
    return ".".join(reversed(nibbles)) + "." + zone


def add_dnsbl(env: dict[str, str], allows: list[str], blocks: list[str]) -> None:
    """``-allow=zone[=display][,VAR[/ip][,msg]]`` and ``-block=...`` (A queries only)."""
    specs = [(True, a) for a in allows] + [(False, b) for b in blocks]
    for is_allow, spec in specs:
        zone_part, _, rest = spec.partition(",")
        zone, _, display = zone_part.partition("=")
        var_part, _, msg = rest.partition(",")
        var, _, want_ip = (var_part or "BLOCK").partition("/")
        if not zone or var in env:
            continue
        try:
            found = socket.gethostbyname_ex(_query_name(env["TCPREMOTEIP"], zone))[2]
        except OSError:
            continue
        if want_ip and want_ip not in found:
            continue
        env[var] = "" if is_allow else (msg or f"Blacklisted by {display or zone}")
        if found:
            env[var + "_IP"] = found[0]
        env[var + "_ZONE"] = display or zone
