"""Run a demo courierpy instance on loopback, unprivileged, from a scratch directory.

It lays out a config directory (the repo's etc/courier with a few overrides),
a userdb with the user ``demo`` (password ``demo``), a Maildir with a few
messages delivered through ``deliverquota``, and starts our authdaemond. It
then prints how to try it and runs until Ctrl-C. Everything is done with the
project's own commands, as an administrator would do it.

    scripts/demo              # run until Ctrl-C
    scripts/demo --check      # set up, check that login works, stop (used by the tests)
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from email.utils import formatdate
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

MESSAGES = [
    ("Welcome to courierpy", "This Maildir is served by courierpy's Python tools.\n"),
    ("Your Maildir++ quota", "The demo account has a quota of 10 MB (see maildirsize).\n"),
    ("Grüße aus dem Demo", "Non-ASCII subjects are MIME-encoded on the wire.\n"),
]


def run(*args: str, stdin: bytes | None = None) -> str:
    """Run one of our commands; stop the demo with its message if it fails."""
    cmd = [str(BIN / args[0]), *args[1:]]
    proc = subprocess.run(cmd, input=stdin, capture_output=True)
    if proc.returncode != 0:
        sys.exit(
            f"demo: {' '.join(args)} failed (exit {proc.returncode}):\n"
            + proc.stderr.decode(errors="replace")
            + proc.stdout.decode(errors="replace")
        )
    return proc.stdout.decode()


def message(subject: str, body: str, n: int) -> bytes:
    from email.header import Header

    return (
        f"From: Courierpy Demo <postmaster@localhost>\n"
        f"To: demo@localhost\n"
        f"Subject: {Header(subject, 'utf-8').encode()}\n"
        f"Date: {formatdate(localtime=True)}\n"
        f"Message-ID: <demo{n}@localhost>\n"
        f"MIME-Version: 1.0\n"
        f"Content-Type: text/plain; charset=utf-8\n"
        f"Content-Transfer-Encoding: 8bit\n"
        f"\n{body}"
    ).encode()


def set_up(root: Path) -> tuple[Path, Path]:
    confdir = root / "etc" / "courier"
    authvar = root / "var" / "authdaemon"
    home = root / "vmail" / "demo"
    shutil.copytree(REPO / "etc" / "courier", confdir)
    authvar.mkdir(parents=True, mode=0o750)
    home.mkdir(parents=True)
    with (confdir / "authdaemonrc").open("a") as f:
        f.write(f"\n# demo overrides\nauthmodulelist=\"authuserdb\"\nauthdaemonvar='{authvar}'\n")

    conf = ("--config-dir", str(confdir))
    maildir = home / "Maildir"
    run("maildirmake", "-q", "10000000S", str(maildir))
    run("maildirmake", "-f", "Sent", str(maildir))
    for n, (subject, body) in enumerate(MESSAGES):
        run("deliverquota", str(maildir), stdin=message(subject, body, n))

    run(
        "userdb", *conf, "demo", "set",
        f"uid={os.getuid()}", f"gid={os.getgid()}", f"home={home}", f"mail={maildir}",
    )  # fmt: skip
    hashed = run("userdbpw", "-md5", stdin=b"demo\n").strip()
    run("userdb", *conf, "demo", "set", "systempw", stdin=hashed.encode() + b"\n")
    run("makeuserdb", *conf)
    return confdir, authvar


def wait_for_socket(path: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit("demo: authdaemond did not start")
        time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="set up, check a login, and stop")
    parser.add_argument("--dir", help="where to build the instance (default: a new temp dir)")
    args = parser.parse_args()

    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="courierpy-demo-"))
    confdir, authvar = set_up(root)
    daemon = subprocess.Popen([str(BIN / "authdaemond"), "--config-dir", str(confdir)])
    try:
        wait_for_socket(authvar / "socket", daemon)
        print(run("authtest", "--config-dir", str(confdir), "demo", "demo"))
        if args.check:
            return 0
        activate = f"COURIER_CONFDIR={confdir}"
        print(
            f"courierpy demo instance in {root}\n"
            f"  authdaemond socket: {authvar / 'socket'}\n"
            f"  user demo, password demo, Maildir {root / 'vmail/demo/Maildir'}\n\n"
            "Try it:\n"
            f"  {activate} {BIN}/authtest demo demo\n"
            f"  {activate} {BIN}/authenumerate -o\n"
            f"  {BIN}/maildirkw -L {root / 'vmail/demo/Maildir'}\n"
            f"  echo 'Subject: hi' | {BIN}/deliverquota {root / 'vmail/demo/Maildir'}\n\n"
            "imapd and pop3d join this demo when they land (see the project's issues).\n"
            "Ctrl-C stops the demo."
        )
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        daemon.wait()
        return daemon.returncode or 0
    except KeyboardInterrupt:
        return 0
    finally:
        if daemon.poll() is None:
            daemon.terminate()
            daemon.wait(10)


if __name__ == "__main__":
    sys.exit(main())
