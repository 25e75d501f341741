"""Compile access text into the GDBM file couriertcpd reads (Courier's makedat).

The text rules, as Courier's ``makedat`` + ``makedatprog`` apply them:

- the source is a file, or a directory whose regular files (not ``*~``, not
  ``*.dpkg-*``, not in sub-directories) are read one after another;
- a line is ``key<TAB>value``; without a tab the whole line is the key; an
  empty value is stored as ``1``;
- empty lines, lines starting with ``#`` and lines with an empty key are
  skipped; nothing is trimmed (a ``\\r`` stays in the value);
- a line holding just ``.`` ends the input (Courier appends one itself);
- a key given twice is an error and the old database is left as it was.

With ``-cidr``, a line whose first word is a range ``a.b.c.d/n``,
``a.b.c.d-e.f.g.h`` (or the IPv6 forms) followed by blanks becomes one line
per prefix in Courier's key form: whole octets for IPv4 (a /20 becomes
sixteen ``a.b.c`` keys), whole 16-bit groups written ``:hhhh`` for IPv6.
Courier delegates this to the Perl module Net::CIDR and silently skips it when
the module is not installed; we always expand.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from courierpy.errors import CourierError
from courierpy.gdbm import GdbmError, Mode, open_gdbm

__all__ = ["MakedatError", "compile_access", "expand_cidr", "parse_lines", "read_source"]

_RANGE_LINE = re.compile(r"^([a-fA-F0-9:.]+[-/][a-fA-F0-9:.]+)\s+(.*)$")
_DPKG = re.compile(r".*\.dpkg-[a-z]*")


class MakedatError(CourierError):
    """The database could not be built; the message is Courier's."""

    exit_code = 1


def read_source(src: str | os.PathLike[str]) -> list[bytes]:
    """The raw lines of *src* (a file or a directory of files), newlines kept."""
    path = Path(src)
    chunks: list[bytes] = []
    try:
        if path.is_dir():
            for entry in sorted(os.scandir(path), key=lambda e: e.name):
                if entry.name.endswith("~") or _DPKG.fullmatch(entry.path):
                    continue
                if entry.is_file():  # follows symbolic links, as find -L does
                    chunks.append(Path(entry.path).read_bytes())
        else:
            chunks.append(path.read_bytes())
    except OSError as e:
        raise MakedatError(f"{e.filename}: {e.strerror}") from None
    return b"".join(chunks).splitlines(keepends=True)


def _octets(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Iterator[str]:
    """Courier's keys covering *net* (Net::CIDR's cidr2octets)."""
    if net.version == 4:
        step = 8
        whole = -(-net.prefixlen // step) * step or step
        for sub in net.subnets(new_prefix=whole) if whole > net.prefixlen else [net]:
            parts = str(sub.network_address).split(".")
            yield ".".join(parts[: whole // step])
    else:
        step = 16
        whole = -(-net.prefixlen // step) * step or step
        for sub in net.subnets(new_prefix=whole) if whole > net.prefixlen else [net]:
            groups = sub.network_address.exploded.split(":")
            yield ":" + ":".join(groups[: whole // step])


def _networks(spec: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network] | None:
    spec = spec[1:] if spec.startswith(":") and not spec.startswith("::") else spec
    try:
        if "/" in spec:
            return [ipaddress.ip_network(spec, strict=False)]
        first, last = spec.split("-", 1)
        a, b = ipaddress.ip_address(first), ipaddress.ip_address(last)
        if a.version != b.version or b < a:
            return None
        return list(ipaddress.summarize_address_range(a, b))  # type: ignore[arg-type]
    except ValueError:
        return None


def expand_cidr(lines: Iterable[bytes]) -> Iterator[bytes]:
    """The ``-cidr`` pass: ranges become one line per Courier key."""
    for line in lines:
        body = line[:-1] if line.endswith(b"\n") else line
        m = _RANGE_LINE.match(body.decode("latin-1"))
        nets = _networks(m.group(1)) if m else None
        if not m or not nets:
            yield line
            continue
        rest = m.group(2).encode("latin-1")
        for net in nets:
            for key in _octets(net):
                yield key.encode("ascii") + b"\t" + rest + b"\n"


def parse_lines(lines: Iterable[bytes]) -> Iterator[tuple[bytes, bytes]]:
    """``(key, value)`` pairs of the text, until a ``.`` line."""
    for raw in lines:
        line = raw[:-1] if raw.endswith(b"\n") else raw
        if line == b".":
            return
        if not line or line.startswith(b"#"):
            continue
        key, tab, value = line.partition(b"\t")
        if not key:
            continue
        yield key, (value if tab and value else b"1")


def compile_access(lines: Iterable[bytes], dat: str | os.PathLike[str],
                   tmp: str | os.PathLike[str]) -> int:
    """Write the pairs into *tmp*, then rename it over *dat*; the count stored.

    On a duplicate key *tmp* is removed and *dat* is untouched.
    """
    tmp_path, dat_path = Path(tmp), Path(dat)
    count = 0
    try:
        db = open_gdbm(tmp_path, Mode.NEW, perms=0o666)
    except GdbmError:
        raise MakedatError(f"Cannot create {os.fspath(tmp_path)}") from None
    try:
        with db:
            for key, value in parse_lines(lines):
                try:
                    db.store(key, value, replace=False)
                except GdbmError:
                    name = key.decode("utf-8", "replace")
                    raise MakedatError(
                        f"Cannot store record for {name} - duplicate or out of disk space."
                    ) from None
                count += 1
        os.replace(tmp_path, dat_path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return count

