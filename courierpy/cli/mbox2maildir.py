"""mbox2maildir: import mbox files (or a directory tree of them) into a Maildir++.

The mbox reader is a pure core (:func:`split_mbox` turns lines into
:class:`MboxMessage` values); every message is then delivered through the
Maildir library's single tmp → new/cur path (``courierpy.maildir.create``).

Format decisions (see man/mbox2maildir.1):

* A message starts at a ``From `` line that begins the file or follows an
  empty line and looks like a From_ line (a sender, then a date with a time).
  The empty line before a separator belongs to the mbox, not to the message.
* Quoting is **mboxrd** by default: ``>From ``, ``>>From `` ... lose one
  ``>``.  ``--quoting mboxo`` unquotes only ``>From ``; ``--quoting none``
  leaves the body alone.  No other byte is changed (headers, including
  ``Status:``/``X-Status:``, are kept).
* Flags: ``Status: R`` → S (seen); ``X-Status:`` A → R (answered), F → F
  (flagged), D → T (deleted), T → D (draft).  A message marked old
  (``Status: O``) or with any flag goes to ``cur/``, the others to ``new/``.
  (Courier's imapd still reports \\Recent once for any message its
  courierimapuiddb does not list yet, in ``cur/`` too.)
* INTERNALDATE (the file's mtime) comes from the From_ line's date, read as
  UTC unless it carries a numeric zone; failing that from ``Date:``.
"""

from __future__ import annotations

import calendar
import email.utils
import io
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import click

from courierpy.errors import EX_DATAERR, EX_NOINPUT, EX_TEMPFAIL, CourierError

# -- the mbox core (no I/O) ----------------------------------------------------------

_FROM_LINE = re.compile(rb"^From \S*\s.*\d{1,2}:\d\d")
_ASCTIME = re.compile(
    rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)\s+"
    rb"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\s+(\d{1,2})\s+"
    rb"(\d{1,2}):(\d\d)(?::(\d\d))?\s+(?:([A-Za-z]{1,5}|[+-]\d{4})\s+)?(\d{4})"
    rb"(?:\s+([+-]\d{4}))?"
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        [
            b"Jan",
            b"Feb",
            b"Mar",
            b"Apr",
            b"May",
            b"Jun",
            b"Jul",
            b"Aug",
            b"Sep",
            b"Oct",
            b"Nov",
            b"Dec",
        ],
        start=1,
    )
}
_QUOTED_RD = re.compile(rb"^>+From ")

QUOTINGS = ("mboxrd", "mboxo", "none")


class MboxError(CourierError):
    """An mbox file is malformed; ``str()`` is ``FILE:LINE: message``."""

    exit_code = EX_DATAERR

    def __init__(self, path: str, line: int, message: str) -> None:
        self.path = path
        self.line = line
        super().__init__(f"{path}:{line}: {message}")


@dataclass
class MboxMessage:
    """One message of an mbox: its bytes (unquoted) and what its headers say."""

    from_line: bytes
    line_number: int  # of the From_ line, 1-based
    content: bytes
    flags: str = ""
    old: bool = False
    mtime: float | None = None


def parse_from_date(from_line: bytes) -> float | None:
    """The epoch time in a From_ line (``From sender Thu Nov 25 16:00:00 2026``)."""
    m = _ASCTIME.search(from_line)
    if m is None:
        return None
    mon, day, hh, mm, ss, zone, year, zone2 = m.groups()
    try:
        t = calendar.timegm(
            (int(year), _MONTHS[mon], int(day), int(hh), int(mm), int(ss or 0), 0, 0, 0)
        )
    except (ValueError, OverflowError):
        return None
    for z in (zone, zone2):
        if z and z[:1] in b"+-" and z[1:].isdigit():
            offset = (int(z[1:3]) * 60 + int(z[3:5])) * 60
            t -= offset if z[:1] == b"+" else -offset
    return float(t)


def _header_block(content: bytes) -> bytes:
    end = content.find(b"\n\n")
    return content if end < 0 else content[: end + 1]


def _header_values(headers: bytes, name: bytes) -> list[bytes]:
    out = []
    prefix = name.lower() + b":"
    for line in headers.split(b"\n"):
        if line.lower().startswith(prefix):
            out.append(line[len(prefix) :].strip())
    return out


def message_flags(content: bytes) -> tuple[str, bool, float | None]:
    """(Maildir flag letters, old?, Date: header time) from a message's headers."""
    headers = _header_block(content)
    status = b"".join(_header_values(headers, b"Status"))
    xstatus = b"".join(_header_values(headers, b"X-Status"))
    flags = set()
    if b"R" in status:
        flags.add("S")
    for letter, flag in ((b"A", "R"), (b"F", "F"), (b"D", "T"), (b"T", "D")):
        if letter in xstatus:
            flags.add(flag)
    date = None
    for value in _header_values(headers, b"Date")[:1]:
        try:
            parsed = email.utils.parsedate_to_datetime(value.decode("ascii", "replace"))
            date = parsed.timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            date = None
    return "".join(sorted(flags)), b"O" in status, date


def unquote(line: bytes, quoting: str) -> bytes:
    if quoting == "mboxrd" and _QUOTED_RD.match(line):
        return line[1:]
    if quoting == "mboxo" and line.startswith(b">From "):
        return line[1:]
    return line


def split_mbox(
    lines: Iterable[bytes], path: str = "<mbox>", quoting: str = "mboxrd"
) -> Iterator[MboxMessage]:
    """Messages of an mbox given as lines (each with its ``\\n``, the last maybe without).

    Raises :class:`MboxError` naming *path* and the line when the data does not
    start with a From_ line.
    """
    current: MboxMessage | None = None
    body: list[bytes] = []
    # An empty line that may turn out to belong to the next separator (it is
    # dropped then, and at the end of the file).
    blank: bytes | None = None
    lineno = 0

    def finish() -> MboxMessage:
        assert current is not None
        current.content = b"".join(body)
        flags, old, date = message_flags(current.content)
        current.flags, current.old = flags, old
        current.mtime = parse_from_date(current.from_line)
        if current.mtime is None:
            current.mtime = date
        return current

    for line in lines:
        lineno += 1
        if current is None:
            if not line.startswith(b"From "):
                raise MboxError(path, lineno, "not an mbox file: no From_ line at its start")
            current = MboxMessage(line.rstrip(b"\r\n"), lineno, b"")
            continue
        if blank is not None and line.startswith(b"From ") and _FROM_LINE.match(line):
            yield finish()
            current = MboxMessage(line.rstrip(b"\r\n"), lineno, b"")
            body = []
            blank = None
            continue
        if blank is not None:
            body.append(blank)
            blank = None
        if line in (b"\n", b"\r\n"):
            blank = line
            continue
        body.append(unquote(line, quoting))
    if current is None:
        raise MboxError(path, max(lineno, 1), "empty mbox file: no message in it")
    yield finish()


# -- the command ------------------------------------------------------------------------


@dataclass
class Totals:
    messages: int = 0
    bytes: int = 0
    files: int = 0
    folders: set[str] = field(default_factory=set)


def _lines(f: BinaryIO, progress=None) -> Iterator[bytes]:
    for line in f:
        if progress is not None:
            progress.update(len(line))
        yield line


def _folder_name(prefix: str | None, rel: Path) -> str:
    parts = [p.replace(".", "_") for p in rel.parts]
    if prefix:
        parts = [prefix, *parts]
    name = ".".join(parts)
    return name


def _plan(sources: list[Path], folder: str | None) -> list[tuple[Path, str | None]]:
    """(mbox file, target folder or None for INBOX) for every source."""
    plan: list[tuple[Path, str | None]] = []
    for src in sources:
        if src.is_dir():
            for dirpath, dirnames, filenames in os.walk(src):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    if name.startswith("."):
                        continue
                    path = Path(dirpath) / name
                    plan.append((path, _folder_name(folder, path.relative_to(src))))
        else:
            plan.append((src, folder))
    return plan


def _is_mbox(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(5) == b"From "


def import_mbox(
    path: Path,
    maildir: Path,
    folder: str | None,
    quoting: str,
    totals: Totals,
    progress=None,
    *,
    subscribe: bool = True,
) -> None:
    """Deliver every message of the mbox *path* into *folder* (None: INBOX) of *maildir*.

    A missing folder is created (and subscribed to, with *subscribe*).  The
    quota file, if there is one, gets one ``maildirsize`` line for what was
    delivered (as deliverquota would, but without refusing anything: an
    import is the administrator's decision), also when it stops half-way.
    """
    from courierpy.maildir import create, folders, quota, subscriptions

    target = maildir if folder is None else Path(folders.folder_path(maildir, folder))
    if folder is not None and not target.is_dir():
        folders.create_folder(maildir, folder)
        if subscribe:
            subscriptions.subscribe(maildir, "INBOX." + folder)
    nbytes = count = 0
    try:
        with open(path, "rb") as f:
            for msg in split_mbox(_lines(f, progress), str(path), quoting):
                subdir = "cur" if (msg.old or msg.flags) else "new"
                create.deliver(
                    target,
                    io.BytesIO(msg.content),
                    flags=msg.flags,
                    mtime=msg.mtime,
                    subdir=subdir,
                )
                if "T" not in msg.flags:  # Courier's quota leaves out mail flagged T (deleted)
                    nbytes += len(msg.content)
                    count += 1
                totals.messages += 1
                totals.bytes += len(msg.content)
    finally:
        # Trash does not count towards the quota (README.maildirquota).
        if count and folder != "Trash":
            quota.add_delta(maildir, nbytes, count)
    totals.files += 1
    totals.folders.add(folder or "INBOX")


@click.command(context_settings={"help_option_names": ["--help"]})
@click.option("--folder", metavar="NAME", help="Import into this folder (created if needed).")
@click.option(
    "--quoting",
    type=click.Choice(QUOTINGS),
    default="mboxrd",
    show_default=True,
    help="How '>From ' lines in bodies are unquoted.",
)
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a tty).")
@click.option(
    "--subscribe/--no-subscribe",
    default=True,
    show_default=True,
    help="Subscribe to the folders the import creates.",
)
@click.argument(
    "paths", nargs=-1, required=True, metavar="MBOX... MAILDIR", type=click.Path(path_type=Path)
)
def main(
    folder: str | None,
    quoting: str,
    progress: bool | None,
    subscribe: bool,
    paths: tuple[Path, ...],
) -> None:
    """Import MBOX files (or directory trees of them) into the Maildir++ MAILDIR."""
    if len(paths) < 2:
        raise click.UsageError("need at least one MBOX and the MAILDIR")
    *sources, maildir = paths
    if folder is not None:
        folder = folder[len("INBOX.") :] if folder.startswith("INBOX.") else folder
        if not folder or folder == "INBOX":
            folder = None
    if not (maildir / "cur").is_dir() or not (maildir / "new").is_dir():
        click.echo(f"mbox2maildir: {maildir}: not a maildir (create it with maildirmake)", err=True)
        sys.exit(EX_NOINPUT)
    for src in sources:
        if not src.exists():
            click.echo(f"mbox2maildir: {src}: No such file or directory", err=True)
            sys.exit(EX_NOINPUT)

    plan = _plan(list(sources), folder)
    explicit = {s for s in sources if not s.is_dir()}
    todo = []
    for path, target in plan:
        if path in explicit or _is_mbox(path):
            todo.append((path, target))
        elif path.stat().st_size:
            click.echo(f"mbox2maildir: {path}: not an mbox file, skipped", err=True)

    show = sys.stderr.isatty() if progress is None else progress
    total_size = sum(p.stat().st_size for p, _ in todo)
    totals = Totals()
    try:
        if show:
            with click.progressbar(
                length=total_size, label="Importing", file=sys.stderr, show_pos=False
            ) as bar:
                for path, target in todo:
                    import_mbox(path, maildir, target, quoting, totals, bar, subscribe=subscribe)
        else:
            for path, target in todo:
                import_mbox(path, maildir, target, quoting, totals, subscribe=subscribe)
    except MboxError as e:
        click.echo(f"mbox2maildir: {e}", err=True)
        _summary(totals)
        sys.exit(e.exit_code)
    except CourierError as e:
        click.echo(f"mbox2maildir: {e}", err=True)
        _summary(totals)
        sys.exit(e.exit_code)
    except OSError as e:
        click.echo(f"mbox2maildir: {e.filename or maildir}: {e.strerror}", err=True)
        _summary(totals)
        sys.exit(EX_TEMPFAIL)
    _summary(totals)


def _summary(totals: Totals) -> None:
    folders = len(totals.folders)
    click.echo(
        f"mbox2maildir: imported {totals.messages} message{'s' if totals.messages != 1 else ''}"
        f" ({totals.bytes} bytes) from {totals.files} mbox file{'s' if totals.files != 1 else ''}"
        f" into {folders} folder{'s' if folders != 1 else ''}"
    )


if __name__ == "__main__":
    main()
