"""Run a demo courierpy instance on loopback, unprivileged, from a scratch directory.

It lays out a config directory (the repo's etc/courier with a few overrides:
loopback ports, pid files and a log file under the scratch directory), a
userdb with the user ``demo`` (password ``demo``), a Maildir with a few
messages delivered through ``deliverquota``, and starts the servers with the
service commands an administrator uses: ``bin/authdaemond start``,
``bin/imapd start`` and ``bin/pop3d start`` (couriertcpd in front of the login
stage, which hands each logged-in connection to imapd / pop3d). It then prints
how to connect a mail client and runs until Ctrl-C or SIGTERM, which stop the
servers with ``bin/pop3d stop``, ``bin/imapd stop`` and ``bin/authdaemond stop``.

    scripts/demo              # run until Ctrl-C
    scripts/demo --check      # set up, start, log in over IMAP and POP3, stop (used by the tests)
"""

from __future__ import annotations

import argparse
import imaplib
import os
import poplib
import shutil
import signal
import socket
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


def set_up(root: Path, imap_port: int, pop3_port: int) -> tuple[Path, Path]:
    confdir = root / "etc" / "courier"
    authvar = root / "var" / "authdaemon"
    rundir = root / "run"
    home = root / "vmail" / "demo"
    shutil.copytree(REPO / "etc" / "courier", confdir)
    authvar.mkdir(parents=True, mode=0o750)
    rundir.mkdir(parents=True)
    home.mkdir(parents=True)
    log = root / "mail.log"
    with (confdir / "authdaemonrc").open("a") as f:
        f.write(f"\n# demo overrides\nauthmodulelist=\"authuserdb\"\nauthdaemonvar='{authvar}'\n")
    # the servers: loopback, our ports, pid files and log here, no TLS (no certificate)
    common = (f"ADDRESS=127.0.0.1\nCOURIERPY_LOGFILE='{log}'\n"
              f"IMAPACCESSFILE='{confdir / 'imapaccess'}'\n")
    with (confdir / "imapd").open("a") as f:
        f.write(f"\n# demo overrides\n{common}PORT={imap_port}\nPIDFILE='{rundir / 'imapd.pid'}'\n"
                "IMAPDSTART=YES\n")
    with (confdir / "imapd-ssl").open("a") as f:
        f.write("\n# demo overrides\nIMAPDSTARTTLS=NO\n")
    with (confdir / "pop3d").open("a") as f:
        f.write(f"\n# demo overrides\n{common}PORT={pop3_port}\nPIDFILE='{rundir / 'pop3d.pid'}'\n"
                "POP3DSTART=YES\n")
    with (confdir / "pop3d-ssl").open("a") as f:
        f.write("\n# demo overrides\nPOP3_STARTTLS=NO\n")

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


#: the service commands, in start order (stopped in the reverse order)
SERVICES = ("authdaemond", "imapd", "pop3d")


def service(name: str, action: str, confdir: Path) -> None:
    """``bin/NAME --config-dir CONFDIR ACTION``, as an administrator runs it."""
    cmd = [str(REPO / "bin" / name), "--config-dir", str(confdir), action]
    proc = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise SystemExit(
            f"demo: bin/{name} {action} failed (exit {proc.returncode}):\n"
            + proc.stderr.decode(errors="replace") + proc.stdout.decode(errors="replace")
        )


def wait_for(what: str, ready) -> None:
    deadline = time.monotonic() + 15
    while not ready():
        if time.monotonic() > deadline:
            sys.exit(f"demo: {what} did not start")
        time.sleep(0.05)


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def pick_port(preferred: int) -> int:
    if port_free(preferred):
        return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_clients(imap_port: int, pop3_port: int) -> None:
    """Log in as a mail client would, over IMAP and POP3."""
    imap = imaplib.IMAP4("127.0.0.1", imap_port)
    imap.login("demo", "demo")
    typ, data = imap.select("INBOX")
    assert typ == "OK" and data == [str(len(MESSAGES)).encode()], (typ, data)
    imap.logout()
    pop = poplib.POP3("127.0.0.1", pop3_port)
    pop.user("demo")
    pop.pass_("demo")
    count, _ = pop.stat()
    assert count == len(MESSAGES), count
    pop.quit()
    print(f"IMAP and POP3 logins as demo work: {len(MESSAGES)} messages in INBOX.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="set up, check logins, and stop")
    parser.add_argument("--dir", help="where to build the instance (default: a new temp dir)")
    parser.add_argument("--imap-port", type=int, default=14143)
    parser.add_argument("--pop3-port", type=int, default=14110)
    args = parser.parse_args()

    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="courierpy-demo-"))
    imap_port, pop3_port = pick_port(args.imap_port), pick_port(args.pop3_port)
    confdir, authvar = set_up(root, imap_port, pop3_port)
    conf = ["--config-dir", str(confdir)]
    # SIGTERM as Ctrl-C: either one stops the servers (below) and ends the demo
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    started: list[str] = []
    try:
        for name in SERVICES:
            service(name, "start", confdir)
            started.append(name)
        wait_for("authdaemond", (authvar / "socket").exists)
        wait_for("imapd", lambda: not port_free(imap_port))
        wait_for("pop3d", lambda: not port_free(pop3_port))
        print(run("authtest", *conf, "demo", "demo"))
        check_clients(imap_port, pop3_port)
        if args.check:
            return 0
        activate = f"COURIER_CONFDIR={confdir}"
        maildir = root / "vmail/demo/Maildir"
        bindir = REPO / "bin"
        print(
            f"\ncourierpy demo instance in {root}\n"
            f"  IMAP  127.0.0.1:{imap_port}   POP3  127.0.0.1:{pop3_port}   (no TLS)\n"
            f"  user demo, password demo, Maildir {maildir}\n"
            f"  log {root / 'mail.log'}\n\n"
            "Point a mail client at those ports (account demo / demo), or try:\n"
            f"  python3 -c \"import imaplib; m=imaplib.IMAP4('127.0.0.1',{imap_port}); "
            f"m.login('demo','demo'); print(m.select('INBOX'))\"\n"
            f"  {activate} {BIN}/authtest demo demo\n"
            f"  echo 'Subject: hi' | {BIN}/deliverquota {maildir}\n"
            f"  {bindir}/imapd --config-dir {confdir} restart\n\n"
            "Ctrl-C stops the demo (bin/pop3d stop, bin/imapd stop, bin/authdaemond stop)."
        )
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stops
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stopped = True
        for name in reversed(started):
            try:
                service(name, "stop", confdir)
            except SystemExit as e:  # say so, and stop the others all the same
                print(e, file=sys.stderr)
                stopped = False
        if started and stopped:
            print("demo: servers stopped.")


if __name__ == "__main__":
    sys.exit(main())
