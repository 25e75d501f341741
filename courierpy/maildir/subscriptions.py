"""``courierimapsubscribed``: the folders a user subscribed to (IMAP LSUB).

One full IMAP folder name per line, UTF-8, LF-terminated (``INBOX.Work.Sub``,
or ``#shared.e.erin.Sent`` for shared folders), in the top Maildir, mode
0644. Changes are written to ``tmp/`` and renamed into place, so a reader
never sees half a file.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from courierpy.maildir import names

__all__ = ["read", "subscribe", "unsubscribe", "write"]

SUBSCRIBED = "courierimapsubscribed"


def read(maildir: str | os.PathLike[str]) -> list[str]:
    """Subscribed names in file order (duplicates and blank lines dropped)."""
    try:
        data = Path(maildir, SUBSCRIBED).read_bytes()
    except FileNotFoundError:
        return []
    out: list[str] = []
    for line in data.decode("utf-8", "surrogateescape").split("\n"):
        line = line.rstrip("\r")
        if line and line not in out:
            out.append(line)
    return out


def write(maildir: str | os.PathLike[str], entries: list[str]) -> None:
    """Replace the subscription list (atomically)."""
    md = Path(maildir)
    tmp = md / "tmp" / names.tmp_name("subscribed")
    body = "".join(f"{e}\n" for e in entries).encode("utf-8", "surrogateescape")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, md / SUBSCRIBED)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def subscribe(maildir: str | os.PathLike[str], name: str) -> bool:
    """Add *name*; return False if it was already there."""
    entries = read(maildir)
    if name in entries:
        return False
    write(maildir, [*entries, name])
    return True


def unsubscribe(maildir: str | os.PathLike[str], name: str) -> bool:
    """Remove *name*; return False if it was not there."""
    entries = read(maildir)
    if name not in entries:
        return False
    write(maildir, [e for e in entries if e != name])
    return True
