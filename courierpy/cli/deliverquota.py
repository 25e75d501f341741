"""deliverquota: deliver the message on stdin to a Maildir, honouring its quota.

The MTA contract, as Courier's deliverquota keeps it::

    deliverquota [-c] [-w percent] [-W warnfile] maildir [quota]

    exit 0   delivered to maildir/new/<unique>,S=<size> (the maildirsize line appended)
    exit 77  over quota: "Mail quota exceeded." on stdout, nothing stored
    exit 75  temporary failure (maildir missing or unwritable, disk full, ...),
             a "<path>: <reason>" line on stderr, nothing stored
    exit 73  usage error

``-c`` creates the Maildir (and its parents) first. A second argument installs
that quota first (like ``maildirmake -q``). ``-w N``: once the delivery leaves
the Maildir at least N% full, a copy of the warning message (``-W file``, else
``quotawarnmsg`` in the configuration directory) is put in new/ with ``Date:``
and ``Message-Id:`` added, at most once every 24 hours (the ``quotawarn``
file's time records the last one). Like Courier's, it ignores
``MAILDIRQUOTA``: the quota is the one in ``maildirsize`` (or the argument).
"""

from __future__ import annotations

import email.utils
import os
import sys
import time
from pathlib import Path

from courierpy.cli.options import raw_args_command
from courierpy.errors import EX_CANTCREAT, EX_NOPERM, EX_TEMPFAIL
from courierpy.maildir import create, folders, names, quota

USAGE = "Usage: {prog} [-c] [-w percent] maildir"
WARN_INTERVAL = 24 * 3600
WARNSTAMP = "quotawarn"


def _fail(path: str | os.PathLike[str], e: OSError) -> int:
    print(f"{path}: {e.strerror or e}", file=sys.stderr)
    return EX_TEMPFAIL


def _check_maildir(maildir: Path) -> int:
    for sub in ("", "tmp", "new"):
        p = maildir / sub if sub else maildir
        try:
            st = os.stat(p)
        except OSError as e:
            return _fail(p if sub else maildir, e)
        if not os.path.isdir(p):
            print(f"{p}: Not a directory", file=sys.stderr)
            return EX_TEMPFAIL
        del st
    if not os.access(maildir / "tmp", os.W_OK | os.X_OK) or \
            not os.access(maildir / "new", os.W_OK | os.X_OK):
        print(f"{maildir}: Permission denied", file=sys.stderr)
        return EX_TEMPFAIL
    return 0


def _warn(maildir: Path, percent: int, warnfile: Path, env_quota: str | None) -> None:
    """Deliver the quota warning if due (the rules observed on Courier's deliverquota).

    The warning goes to the top Maildir through the quota check like any
    message: if it fits, its maildirsize line is appended; if it does not, it is
    delivered all the same (after the recount the check may cause) with no line.
    """
    usage = quota.read_usage(maildir, env_quota=env_quota)
    if usage.spec is None or usage.percent() < percent:
        return
    root = folders.root_of(maildir)
    stamp = root / WARNSTAMP
    try:
        if time.time() - stamp.stat().st_mtime < WARN_INTERVAL:
            return
    except FileNotFoundError:
        pass
    try:
        body = warnfile.read_bytes()
    except OSError:
        return
    fd = os.open(stamp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, b"\0")
    finally:
        os.close(fd)
    now = time.time()
    message = (f"Date: {email.utils.formatdate(now, localtime=True)}\n"
               f"Message-Id: <{int(now)}.overquota@{names.hostname()}>\n").encode() + body
    try:
        quota.check_add(root, len(message), 1, env_quota=env_quota)
        fits = True
    except quota.QuotaExceeded:
        fits = False
    create.deliver(root, message, uniq="warn")
    if fits:
        quota.add_delta(root, len(message), 1)


def run(argv: list[str], config_dir: Path, stdin: object = None) -> int:
    """deliverquota's logic; returns the exit status."""
    make, percent, warnfile, args = False, None, config_dir / "quotawarnmsg", list(argv)
    try:
        # Courier's own option loop: an option missing its value ends the options.
        while args and args[0].startswith("-") and len(args[0]) > 1:
            opt = args[0]
            if opt == "--":
                args.pop(0)
                break
            if opt == "-c":
                make = True
                args.pop(0)
                continue
            if opt[:2] in ("-w", "-W"):
                value = opt[2:]
                if not value:
                    if len(args) < 2:
                        break
                    value = args[1]
                    args.pop(0)
                args.pop(0)
                if opt[:2] == "-w":
                    percent = int(value)
                else:
                    warnfile = Path(value)
                continue
            raise ValueError(opt)
        if len(args) not in (1, 2):
            raise ValueError("arguments")
    except ValueError:
        print(USAGE.format(prog=sys.argv[0] or "deliverquota"), file=sys.stderr)
        return EX_CANTCREAT
    maildir = Path(args[0])
    env_quota = None  # Courier's deliverquota ignores MAILDIRQUOTA (verified)
    if make:
        try:
            missing = []
            p = maildir
            while not p.exists() and p != p.parent:
                missing.append(p)
                p = p.parent
            for d in reversed(missing):  # like mkdir -p, but each level 0700 as Courier
                os.mkdir(d, 0o700)
            folders.create_maildir(maildir, exist_ok=True)
        except OSError as e:
            return _fail(e.filename or maildir, e)
    rc = _check_maildir(maildir)
    if rc:
        return rc

    def check(size: int) -> None:
        # As in Courier, an empty message skips the quota entirely: no new quota
        # installed, no check (and, below, no maildirsize line).
        if size == 0:
            return
        if len(args) == 2:
            try:
                quota.set_quota(maildir, args[1])
            except quota.QuotaSpecError:
                print(f"WARN: quota string '{args[1]}' not parseable", file=sys.stderr)
        quota.check_add(maildir, size, 1, env_quota=env_quota)

    source = stdin if stdin is not None else sys.stdin.buffer
    try:
        path = create.deliver(maildir, source, check=check)  # type: ignore[arg-type]
    except quota.QuotaExceeded as e:
        print(str(e))
        sys.stdout.flush()
        return EX_NOPERM
    except create.DeliveryError as e:
        print(str(e), file=sys.stderr)
        return EX_TEMPFAIL
    except OSError as e:  # quota bookkeeping failed before the message became visible
        return _fail(e.filename or maildir, e)
    try:
        size = names.parse(path.name).size
        if size:  # Courier appends no line for an empty message
            quota.add_delta(maildir, size, 1)
        if percent is not None:
            _warn(maildir, percent, warnfile, env_quota)
    except (OSError, create.DeliveryError) as e:
        # The message is delivered: report, but do not make the MTA retry it.
        print(f"WARN: {e}", file=sys.stderr)
    return 0


@raw_args_command(config_dir=True)
def main(config_dir: Path, args: tuple[str, ...]) -> None:
    """Deliver stdin to a Maildir++ with quota (see deliverquota(8))."""
    sys.exit(run(list(args), config_dir))


if __name__ == "__main__":  # pragma: no cover
    main()
