"""Differential: our pop3d against the REAL courierpop3d on copies of one Maildir.

Both run pre-authenticated over pipes, as Courier's courierpop3login starts
courierpop3d (``AUTHENTICATED`` in the environment, cwd = home, argv[1] =
Maildir). Replies must be byte-identical, except the uidv in UIDLs: it is
the clock second at which the ``courierpop3dsizelist`` was created, so two
runs may straddle a second; it is normalized on both sides. The Maildir
afterwards must hold the same files, the same courierpop3dsizelist (uidv
normalized) and the same maildirsize.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import REPO, require

pytestmark = pytest.mark.oracle

COURIER_POP3D = "/usr/lib/courier/courier/courierpop3d"
OUR_POP3D = str(REPO / ".venv" / "bin" / "pop3d")

MESSAGES = {
    "new/1700000000.M1P1.host,S=60": b"From: a@b\nSubject: one\n\nline1\n.dot line\n..two\nline3\n",
    "cur/1700000001.M1P1.host,S=21:2,F": b"Subject: two\n\nshort\n",
    "new/1700000002.M1P1.host": b"Subject: three\n\nbody3\nmore\n",
    "cur/1700000003.M2P1.host:2,RS": b"Subject: crlf\r\nX: y\r\n\r\nbody\r\nlast",
    "cur/1700000003.M1P1.host:2,": b"Subject: no blank line",
    "new/1699999999.M9P9.host,S=40": b"Subject: caf\xc3\xa9\nFrom: a@b\n\nbody \xc3\xa9\n",
    "cur/1700000010.M1P1.host,S=13:2,": b"Subject: x\n\n\n",
    "new/1700000011.M1P1.host": b"\nbody without header\n.\n",
}
# Where the header ends for the UTF-8 flag: a leading empty line, a CRLF empty line.
MESSAGES["cur/1700000020.M1P1.host:2,"] = b"\nSubject: x\xc3\xa9\n\nbody\n"
MESSAGES["cur/1700000021.M1P1.host:2,"] = b"Subject: x\r\n\r\nX-Y: \xc3\xa9\n\nbody\n"
MESSAGES["cur/1700000022.M1P1.host:2,"] = b"Subject: x\r\nX-Y: \xc3\xa9\r\n\r\nbody\n"
# Six body lines, for TOP n 5 / TOP n 2 cut points.
MESSAGES["new/1700000012.M1P1.host"] = b"Subject: long\nTo: t@x\n\n" + b"".join(
    b"line %d\n" % i for i in range(1, 9))

UIDV_RE = re.compile(rb"(UID\d+-)\d+")


def make_home(root: Path, *, quota: bool = True) -> Path:
    home = root
    md = home / "Maildir"
    for sub in ("tmp", "new", "cur"):
        (md / sub).mkdir(parents=True, exist_ok=True)
    for rel, data in MESSAGES.items():
        (md / rel).write_bytes(data)
    if quota:
        (md / "maildirsize").write_bytes(b"100000S,100C\n         300           10\n")
    return home


def run(prog: str, home: Path, script: bytes, **env: str) -> bytes:
    environ = {"PATH": "/usr/bin:/bin", "AUTHENTICATED": "erin",
               "TCPREMOTEIP": "127.0.0.1", "TCPREMOTEPORT": "1", **env}
    args = [prog, "Maildir"] if prog == COURIER_POP3D else [prog, "--config-dir", "/nonexistent",
                                                            "Maildir"]
    proc = subprocess.run(args, input=script, cwd=home, env=environ, capture_output=True,
                          timeout=30, check=False)
    return proc.stdout


WRAPPED_RE = re.compile(rb"\+OK \d+ octets follow\.\r\nFrom: Mail Delivery Subsystem")


def norm(data: bytes) -> bytes:
    """UIDL uidv, and the MIME boundary of a wrapped UTF-8 message (=_<pid>-<time>, whose
    length also changes the announced size), made comparable."""
    data = UIDV_RE.sub(rb"\1UIDV", data)
    data = re.sub(rb"=_\d+-\d+", b"=_PID-TIME", data)
    return WRAPPED_RE.sub(b"+OK N octets follow.\r\nFrom: Mail Delivery Subsystem", data)


def state(home: Path) -> dict[str, bytes]:
    md = home / "Maildir"
    out: dict[str, bytes] = {}
    for dirpath, _, files in os.walk(md):
        for f in files:
            p = Path(dirpath) / f
            rel = str(p.relative_to(md))
            if rel.startswith("tmp/"):
                out[rel] = b""
                continue
            data = p.read_bytes()
            if f == "courierpop3dsizelist":
                data = re.sub(rb"(?m)^(/3 \d+ )\d+$", rb"\1UIDV", data)
                data = re.sub(rb" (\d+):\d+:(\d)$", rb" \1:UIDV:\2", data, flags=re.M)
            out[rel] = data
    return out


@pytest.fixture
def homes(tmp_path: Path) -> tuple[Path, Path]:
    require(COURIER_POP3D, "the real Courier POP3 server (courier-pop)")
    return make_home(tmp_path / "courier"), make_home(tmp_path / "ours")


def both(homes: tuple[Path, Path], script: bytes, **env: str) -> tuple[bytes, bytes]:
    theirs = run(COURIER_POP3D, homes[0], script, **env)
    ours = run(OUR_POP3D, homes[1], script, **env)
    return norm(theirs), norm(ours)


READ_SCRIPT = b"".join(
    line + b"\r\n" for line in [
        b"STAT", b"LIST", b"UIDL", b"CAPA", b"NOOP",
        *[b"LIST %d" % i for i in range(0, 14)],
        *[b"UIDL %d" % i for i in range(0, 14)],
        *[b"TOP %d 0" % i for i in range(1, 13)],
        *[b"TOP %d 5" % i for i in range(1, 13)],
        *[b"TOP %d 2" % i for i in range(1, 13)],
        *[b"RETR %d" % i for i in range(1, 13)],
        b"TOP 1", b"TOP 1 x", b"TOP 9 -1", b"LIST abc", b"LIST 1 2", b"RETR", b"DELE",
        b"uidl 2", b"list", b"", b"   ", b"XYZ", b"LAST", b"APOP erin 0123", b"USER erin",
        b"PASS x", b"STLS", b"AUTH", b"AUTH PLAIN", b"UTF8", b"STAT",
    ])


@pytest.mark.parametrize("env", [
    {},
    # as courierpop3login hands over: a non-UTF8 client gets UTF-8 messages wrapped
    {"UTF8": "0", "MIME_UNICODE_MESSAGE_TYPE": "message/global"},
    {"UTF8": "1", "MIME_UNICODE_MESSAGE_TYPE": "message/global"},
    {"MIME_UNICODE_MESSAGE_TYPE": "message/global"},
], ids=["plain", "wrap", "utf8-login", "no-utf8-var"])
def test_read_commands_identical(homes: tuple[Path, Path], env: dict[str, str]) -> None:
    theirs, ours = both(homes, READ_SCRIPT + b"QUIT\r\n", **env)
    assert b"octets follow" in theirs  # the oracle answered at all
    assert (b"Cannot display Unicode content" in theirs) == (env.get("UTF8") == "0")
    assert ours.split(b"\r\n") == theirs.split(b"\r\n")
    assert state(homes[1]) == state(homes[0])


@pytest.mark.parametrize("quit_", [True, False], ids=["quit", "disconnect"])
def test_dele_state_identical(homes: tuple[Path, Path], quit_: bool) -> None:
    script = b"DELE 1\r\nDELE 3\r\nDELE 3\r\nRETR 3\r\nSTAT\r\nLIST\r\nRSET\r\nSTAT\r\n" \
             b"DELE 2\r\nDELE 5\r\nDELE 9\r\nRETR 4\r\nSTAT\r\nUIDL\r\n"
    if quit_:
        script += b"QUIT\r\n"
    theirs, ours = both(homes, script)
    assert ours == theirs
    before = state(homes[0])
    assert state(homes[1]) == before
    if quit_:
        assert len([k for k in before if k.startswith("cur/")]) == len(MESSAGES) - 3
    else:
        assert len([k for k in before if k.startswith("cur/")]) == len(MESSAGES)


def test_access_options_identical(homes: tuple[Path, Path]) -> None:
    for options, tls in [("disablepop3=1", "0"), ("disableinsecurepop3=1", "0"),
                         ("disableinsecurepop3=1", "1"), ("disablepop3=0", "0")]:
        theirs, ours = both(homes, b"STAT\r\nQUIT\r\n", OPTIONS=options, POP3_TLS=tls)
        assert ours == theirs, options


def _uidls(data: bytes) -> list[bytes]:
    lines = data.split(b"\r\n")
    start = lines.index(b"+OK") + 1
    return lines[start:lines.index(b".", start)]


@pytest.mark.parametrize("first", ["courier", "ours"])
def test_uidls_survive_switching_servers(tmp_path: Path, first: str) -> None:
    """A Maildir served by one server, then by the other: same UIDLs, no re-download."""
    require(COURIER_POP3D)
    home = make_home(tmp_path / "h")
    progs = [COURIER_POP3D, OUR_POP3D]
    if first == "ours":
        progs.reverse()
    one = run(progs[0], home, b"UIDL\r\nDELE 2\r\nQUIT\r\n")
    (home / "Maildir/new/1800000000.M1P1.host,S=12").write_bytes(b"Subject: n\n\n")
    two = run(progs[1], home, b"UIDL\r\nQUIT\r\n")
    three = run(progs[0], home, b"UIDL\r\nQUIT\r\n")
    first_uidls = _uidls(one)
    kept = [u for u in first_uidls if not u.startswith(b"2 ")]
    second = [u.split(b" ", 1)[1] for u in _uidls(two)]
    assert [u.split(b" ", 1)[1] for u in kept] == second[:-1]
    assert second[-1] not in [u.split(b" ", 1)[1] for u in first_uidls]
    assert _uidls(three) == _uidls(two)


def test_old_sizelist_formats_identical(homes: tuple[Path, Path]) -> None:
    for home in homes:
        (home / "Maildir/courierpop3dsizelist").write_bytes(
            b"/2 20 1600000000\n1700000000.M1P1.host,S=60:2, 99 7:1600000000\n"
            b"1700000002.M1P1.host:2, 30 9:1500000000\n")
        for rel in MESSAGES:
            if rel.startswith("new/"):
                src = home / "Maildir" / rel
                src.rename(home / "Maildir" / "cur" / (src.name + ":2,"))
    theirs = run(COURIER_POP3D, homes[0], b"LIST\r\nUIDL\r\nQUIT\r\n")
    ours = run(OUR_POP3D, homes[1], b"LIST\r\nUIDL\r\nQUIT\r\n")
    assert b"UID7-1600000000" in theirs
    assert ours == theirs
    assert state(homes[1]) == state(homes[0])
    for home in homes:  # a /3 list with a flag change only: not rewritten
        ino = (home / "Maildir/courierpop3dsizelist").stat().st_ino
        cur = home / "Maildir/cur"
        name = next(n for n in os.listdir(cur) if n.startswith("1700000010"))
        (cur / name).rename(cur / (name + "F"))
        run(OUR_POP3D if home == homes[1] else COURIER_POP3D, home, b"QUIT\r\n")
        assert (home / "Maildir/courierpop3dsizelist").stat().st_ino == ino
    garbage = b"not a list\n"
    for home in homes:
        (home / "Maildir/courierpop3dsizelist").write_bytes(garbage)
    theirs, ours = both(homes, b"UIDL\r\nQUIT\r\n")
    assert ours == theirs
    assert state(homes[1]) == state(homes[0])


def _edit_none(text: bytes) -> bytes:
    return text


def _edit_line(text: bytes, index: int, old: bytes, new: bytes) -> bytes:
    lines = text.split(b"\n")
    lines[index] = lines[index].replace(old, new, 1)
    return b"\n".join(lines)


# Lists in the usual shape (taken in bulk by ours) and just outside it (parsed line by line).
SIZELIST_EDITS = {
    "as-written": _edit_none,
    "leading-zero-uid": lambda t: _edit_line(t, 2, b" 2:", b" 002:"),
    "plus-size": lambda t: re.sub(rb" (\d+) 3:", rb" +\1 3:", t),
    "double-space": lambda t: _edit_line(t, 1, b" ", b"  "),
    "tab": lambda t: _edit_line(t, 3, b" ", b"\t"),
    "no-info": lambda t: _edit_line(t, 4, b":2,", b""),
    "two-colons": lambda t: _edit_line(t, 4, b":2,", b":x:2,"),
    "empty-info-and-extra-field": lambda t: _edit_line(_edit_line(t, 1, b":2,", b":"), 2, b":0",
                                                        b":0:7"),
    "utf8-flag-2": lambda t: _edit_line(t, 1, b":0\n", b":2\n").replace(
        t.split(b"\n")[1].rsplit(b":", 1)[0] + b":0", t.split(b"\n")[1].rsplit(b":", 1)[0] + b":2"),
    "duplicate-line": lambda t: t + t.split(b"\n")[2].replace(b" 2:", b" 99:") + b"\n",
    "no-final-newline": lambda t: t.rstrip(b"\n"),
    "crlf": lambda t: t.replace(b"\n", b"\r\n"),
    "empty": lambda t: t.split(b"\n")[0] + b"\n",
    "one-missing": lambda t: b"\n".join(t.split(b"\n")[:3] + t.split(b"\n")[4:]),
    "one-unknown": lambda t: _edit_line(t, 5, b".M", b".X"),
    # with the file of the fourth message renamed to have no ":2," either:
    "file-no-info": _edit_none,
    "file-and-line-no-info": lambda t: _edit_line(t, 4, b":2,", b""),
}


@pytest.mark.parametrize("edit", SIZELIST_EDITS)
@pytest.mark.parametrize("flag_change", [False, True], ids=["same-flags", "flag-changed"])
def test_sizelist_shapes_identical(homes: tuple[Path, Path], edit: str,
                                   flag_change: bool) -> None:
    """One list (Courier's, edited) in both Maildirs: same numbers, same rewrite or none."""
    run(COURIER_POP3D, homes[0], b"QUIT\r\n")  # moves new/ to cur/, writes the list
    shutil.rmtree(homes[1] / "Maildir")
    shutil.copytree(homes[0] / "Maildir", homes[1] / "Maildir")
    text = SIZELIST_EDITS[edit]((homes[0] / "Maildir/courierpop3dsizelist").read_bytes())
    for home in homes:
        (home / "Maildir/courierpop3dsizelist").write_bytes(text)
        if edit.startswith("file-"):
            cur = home / "Maildir/cur"
            name = sorted(os.listdir(cur))[3]
            (cur / name).rename(cur / name.split(":")[0])
        if flag_change:  # RETR elsewhere marked a message seen; the list is not rewritten
            cur = home / "Maildir/cur"
            name = sorted(os.listdir(cur))[2]
            (cur / name).rename(cur / (name + "S"))
    theirs, ours = both(homes, b"STAT\r\nLIST\r\nUIDL\r\nRETR 3\r\nQUIT\r\n")
    assert ours == theirs
    assert state(homes[1]) == state(homes[0])


def test_first_login_on_many_messages_identical(tmp_path: Path) -> None:
    """Enough new/ messages for ours to move them in a thread while reading cur/; names
    with leading integers of different lengths, leading zeros and none."""
    require(COURIER_POP3D)
    homes = (tmp_path / "courier", tmp_path / "ours")
    for home in homes:
        md = home / "Maildir"
        for sub in ("tmp", "new", "cur"):
            (md / sub).mkdir(parents=True)
        for i in range(150):
            body = b"Subject: m%d%s\n\n%s" % (i, b" \xc3\xa9" if i % 9 == 0 else b"",
                                               b"line\n" * (i % 13))
            stem = [f"{1700000000 + i * 7919 % 150}", f"{i:05d}", f"x{i}", f"{i}"][i % 4]
            name = f"{stem}.M{i}P1.host"
            if i % 3:
                (md / "new" / name).write_bytes(body)
            else:
                (md / "cur" / (name + ":2,S")).write_bytes(body)
    script = b"STAT\r\nLIST\r\nUIDL\r\nRETR 7\r\nDELE 9\r\nQUIT\r\n"
    theirs, ours = both(homes, script)
    assert ours == theirs
    assert state(homes[1]) == state(homes[0])
    theirs, ours = both(homes, b"UIDL\r\nQUIT\r\n")  # and the list each wrote
    assert ours == theirs


# -- the AUTHORIZATION state: Courier's courierpop3login against our pop3d ------------------
#
# Both sit behind the REAL couriertcpd and authenticate through our authdaemond:
#   couriertcpd PORT courierpop3login courierpop3d Maildir      (Courier)
#   couriertcpd PORT pop3d --config-dir=ETC Maildir              (ours, logging in itself)
# with the same pop3d/pop3d-ssl files sourced into the environment.

COURIER_LIB = "/usr/lib/courier/courier"
VMAIL = 5000


class Chain:
    def __init__(self, root: Path, ports: dict[str, int]) -> None:
        self.root = root
        self.ports = ports


def _start_chain(root: Path, pop3d_extra: str, ssl_extra: str):  # type: ignore[no-untyped-def]
    """Generator: yields a Chain; stops everything afterwards."""
    import contextlib
    import time

    from authdaemon.passwords import hash_password, hmac_secret
    from authdaemon.userdb.makeuserdb import build
    from tests.oracle.courier_auth import courier_namespace, write_authdaemonrc
    from tests.oracle.test_authdaemon_courier_chain import stop_group, wait_port
    from tests.support import free_port

    tcpd = require("couriertcpd")
    login = require(f"{COURIER_LIB}/courierpop3login")
    require(COURIER_POP3D)
    openssl = require("openssl")
    root.chmod(0o755)
    daemons: list[subprocess.Popen[bytes]] = []
    servers: list[subprocess.Popen[bytes]] = []
    etcs = {}
    try:
        for which in ("courier", "ours"):  # each with its own homes and authdaemond
            side = root / which
            etc, run = side / "etc", side / "run"
            etc.mkdir(parents=True)
            for name, extra in (("pop3d", pop3d_extra), ("pop3d-ssl", ssl_extra)):
                text = Path(f"/etc/courier/{name}").read_text()
                (etc / name).write_text(text + "\n" + extra + "\n")
            subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                            "1", "-subj", "/CN=localhost", "-keyout", str(etc / "key.pem"),
                            "-out", str(etc / "cert.pem")], check=True, capture_output=True)
            # GnuTLS (couriertls) wants the traditional RSA key format, then the certificate
            rsa = subprocess.run([openssl, "rsa", "-traditional", "-in", str(etc / "key.pem")],
                                 check=True, capture_output=True).stdout
            (etc / "pop3d.pem").write_bytes(rsa + (etc / "cert.pem").read_bytes())
            if os.path.exists("/etc/courier/dhparams.pem"):  # couriertls needs it
                shutil.copy("/etc/courier/dhparams.pem", etc / "dhparams.pem")
            write_authdaemonrc(etc, authdaemonvar=str(run))
            lines = []
            accounts = [("erin", ""), ("carol", "|options=disablepop3=1"),
                        ("dave", "|options=disableinsecurepop3=1"),
                        ("cram", f"|hmac-md5pw={hmac_secret('cramcram', 'md5')}")]
            if which == "courier":  # for the hand-over comparison: same data, own homes
                accounts += [(p + name, extra) for p in ("h", "g") for name, extra in accounts]
            for user, extra in accounts:
                home = side / "vmail" / user
                for sub in ("tmp", "new", "cur"):
                    (home / "Maildir" / sub).mkdir(parents=True)
                for rel, data in MESSAGES.items():
                    (home / "Maildir" / rel).write_bytes(data)
                subprocess.run(["chown", "-R", f"{VMAIL}:{VMAIL}", str(home)], check=True)
                lines.append(f"{user}\tuid={VMAIL}|gid={VMAIL}|home={home}|mail={home}/Maildir"
                             f"|systempw={hash_password(user + 'pw', 'md5-crypt')}{extra}\n")
            side.chmod(0o755)
            (side / "vmail").chmod(0o755)
            (etc / "userdb").write_text("".join(lines))
            (etc / "userdb").chmod(0o600)
            build(etc / "userdb")
            daemons.append(subprocess.Popen(
                [str(REPO / ".venv" / "bin" / "authdaemond"), "--config-dir", str(etc)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            deadline = time.monotonic() + 15
            while not (run / "socket").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            etcs[which] = etc
        # Our pop3d behind Courier's courierpop3login runs as the account (uid 5000), which
        # cannot reach the venv's interpreter under /root here: a wrapper starts it with the
        # system's Python of the same version and the venv's packages.
        wrapper = root / "ourpop3d.sh"
        site = REPO / ".venv" / "lib" / "python3.11" / "site-packages"
        wrapper.write_text(f"#!/bin/sh\nPYTHONPATH={REPO}:{site} exec /usr/bin/python3 -m "
                           f"courierpy.cli.pop3d --config-dir=/nonexistent \"$@\"\n")
        wrapper.chmod(0o755)
        with courier_namespace(etcs["courier"], root / "courier" / "run") as ns:
            ports = {}
            for which, prog, conf in (
                    ("courier", f"{login} {COURIER_POP3D}", "/etc/courier"),
                    ("ours", f"{OUR_POP3D} --config-dir={etcs['ours']}", etcs["ours"]),
                    ("handover", f"{login} {wrapper}", "/etc/courier")):
                port = free_port()
                script = (f"set -a; . {conf}/pop3d; . {conf}/pop3d-ssl; "
                          f"COURIERPY_LOGIN_FAIL_DELAY=0.1; exec {tcpd} -address=127.0.0.1 "
                          f"-nodnslookup -noidentlookup -stderr={root}/{which}.log {port} "
                          f"{prog} Maildir")
                servers.append(ns.popen(
                    ["env", "-i", "PATH=/usr/bin:/bin:/usr/sbin:/usr/lib/courier", "sh", "-c",
                     script], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL))
                wait_port(port, servers[-1])
                ports[which] = port
            yield Chain(root, ports)
    finally:
        for proc in servers:
            stop_group(proc)
        for daemon in daemons:
            daemon.terminate()
            daemon.wait(timeout=15)
        with contextlib.suppress(OSError):
            subprocess.run(["rm", "-rf", str(root)], check=False)


@pytest.fixture(scope="module")
def chain() -> Iterator[Chain]:
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="pop3chain-"))
    yield from _start_chain(root, 'POP3AUTH="PLAIN LOGIN CRAM-MD5"', "")


MULTI = ("CAPA", "LIST", "UIDL", "RETR", "TOP")


class Conversation:
    """One client connection that sends a line and reads exactly its reply."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.file = self.sock.makefile("rb")
        self.transcript = [self.file.readline()]

    def ask(self, line: bytes) -> bytes:
        self.sock.sendall(line + b"\r\n")
        words = line.split()
        first = self.file.readline()
        reply = first
        multi = words and words[0].upper().decode() in MULTI and first.startswith(b"+OK") and (
            len(words) == 1 or words[0].upper() in (b"RETR", b"TOP"))
        if multi:
            while True:
                nxt = self.file.readline()
                if not nxt:
                    break
                reply += nxt
                if nxt == b".\r\n":
                    break
        self.transcript.append(reply)
        return reply

    def starttls(self) -> None:
        import ssl

        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.file.close()
        self.sock = ctx.wrap_socket(self.sock)
        self.file = self.sock.makefile("rb")

    def close(self) -> bytes:
        self.file.close()
        self.sock.close()
        return b"".join(self.transcript)


def _cram_challenge_normal(data: bytes) -> bytes:
    return re.sub(rb"(?m)^\+ P[A-Za-z0-9+/=]{20,}\r$", b"+ <challenge>\r", data)


def _same(chain: Chain, steps: list[bytes], *, tls_after: int | None = None,
          sides: tuple[str, str] = ("courier", "ours")) -> bytes:
    outs = []
    for which in sides:
        c = Conversation(chain.ports[which])
        for i, step in enumerate(steps):
            c.ask(step)
            if tls_after is not None and i == tls_after:
                c.starttls()
        outs.append(norm(_cram_challenge_normal(c.close())))
    assert outs[1].split(b"\r\n") == outs[0].split(b"\r\n")
    return outs[0]


def test_login_stage_identical(chain: Chain) -> None:
    got = _same(chain, [b"CAPA", b"NOOP", b"STAT", b"USER", b"PASS x", b"APOP erin 0123",
                        b"AUTH", b"AUTH XYZ", b"AUTH PLAIN", b"*", b"AUTH LOGIN", b"*",
                        b"AUTH CRAM-MD5", b"*", b"AUTH PLAIN !!!", b"UTF8", b"XYZ", b"",
                        b"USER erin", b"QUIT"])
    assert b"SASL PLAIN LOGIN CRAM-MD5\r\nSTLS\r\n" in got


@pytest.mark.parametrize("steps", [
    [b"USER erin", b"PASS erinpw", b"CAPA", b"STAT", b"LIST", b"UIDL", b"RETR 2", b"TOP 3 1",
     b"RETR 6", b"DELE 1", b"QUIT"],
    [b"USER carol", b"PASS carolpw"],
    [b"USER dave", b"PASS davepw"],
    [b"AUTH PLAIN " + __import__("base64").b64encode(b"x\0erin\0erinpw"), b"STAT", b"QUIT"],
    [b"AUTH LOGIN", __import__("base64").b64encode(b"erin"),
     __import__("base64").b64encode(b"erinpw"), b"UIDL", b"QUIT"],
], ids=["userpass", "disablepop3", "disableinsecure", "plain", "login"])
def test_logins_identical(chain: Chain, steps: list[bytes]) -> None:
    _same(chain, steps)


@pytest.mark.parametrize("steps", [
    [b"USER erin", b"PASS erinpw", b"CAPA", b"STAT", b"LIST", b"UIDL", b"RETR 2", b"TOP 3 1",
     b"RETR 6", b"DELE 1", b"QUIT"],
    [b"USER dave", b"PASS davepw"],
], ids=["userpass", "disableinsecure"])
def test_real_courierpop3login_hands_over_to_ours(chain: Chain, steps: list[bytes]) -> None:
    """couriertcpd → Courier's courierpop3login → OUR pop3d (pre-authenticated hand-over).

    Compared with the same dialogue on Courier's own chain, each in its own copy of the
    account (``hNAME``, ``gNAME``: same messages, password ``<login>pw``); user names never
    appear in the replies.
    """
    require("/usr/bin/python3")
    if not (REPO / ".venv" / "lib" / "python3.11").is_dir():
        pytest.skip("the venv is not Python 3.11 like the system's python3")
    outs = []
    for which, prefix in (("courier", b"h"), ("handover", b"g")):
        c = Conversation(chain.ports[which])
        for step in steps:
            if step.startswith(b"USER "):
                step = b"USER " + prefix + step[5:]
            elif step.startswith(b"PASS "):
                step = b"PASS " + prefix + step[5:]
            c.ask(step)
        outs.append(norm(c.close()).split(b"\r\n"))
    assert outs[1] == outs[0]


def test_failed_logins_identical(chain: Chain) -> None:
    import base64

    _same(chain, [b"USER erin", b"PASS wrong",
                  b"AUTH PLAIN " + base64.b64encode(b"\0erin\0bad"), b"QUIT"])


def test_stls_identical(chain: Chain) -> None:
    got = _same(chain, [b"CAPA", b"STLS", b"CAPA", b"STLS", b"USER dave", b"PASS davepw",
                        b"STAT", b"QUIT"], tls_after=1)
    assert b"+OK Begin SSL/TLS negotiation now." in got
    assert got.count(b"STLS\r\n") == 1  # not offered again once TLS is up


def test_log_lines_identical(chain: Chain) -> None:
    import time

    time.sleep(0.3)  # the previous tests' sessions log their LOGOUT after the last reply
    for which in ("courier", "ours"):
        (chain.root / f"{which}.log").write_text("")
    _same(chain, [b"AUTH XYZ", b"USER erin", b"PASS erinpw", b"RETR 1", b"QUIT"])
    _same(chain, [b"QUIT"])
    time.sleep(0.3)
    logs = []
    for which in ("courier", "ours"):
        text = (chain.root / f"{which}.log").read_text()
        text = re.sub(r"port=\[\d+\]", "port=[P]", text)
        text = re.sub(r"(rcvd|sent|top|retr|time)=\d+", r"\1=N", text)
        logs.append([ln for ln in text.splitlines() if ln.startswith("INFO:")])
    assert logs[1] == logs[0]


@pytest.mark.parametrize("damage", ["no-maildir", "no-cur", "sticky-home"])
def test_broken_homes_identical(tmp_path: Path, damage: str) -> None:
    require(COURIER_POP3D)
    outs = []
    for which, prog in (("courier", COURIER_POP3D), ("ours", OUR_POP3D)):
        home = make_home(tmp_path / which)
        md = home / "Maildir"
        if damage == "no-maildir":
            shutil.rmtree(md)
        elif damage == "no-cur":
            shutil.rmtree(md / "cur")
        else:
            home.chmod(0o1755)
        environ = {"PATH": "/usr/bin:/bin", "AUTHENTICATED": "erin",
                   "TCPREMOTEIP": "127.0.0.1", "TCPREMOTEPORT": "1"}
        args = [prog, "Maildir"] if prog == COURIER_POP3D else [
            prog, "--config-dir", "/nonexistent", "Maildir"]
        proc = subprocess.run(args, input=b"STAT\r\nQUIT\r\n", cwd=home, env=environ,
                              capture_output=True, timeout=30, check=False)
        info = [ln for ln in proc.stderr.decode().splitlines() if ln.startswith("INFO:")]
        info = [re.sub(r", (top|retr|rcvd|sent|time)=\d+", "", ln) for ln in info]
        outs.append((UIDV_RE.sub(rb"\1UIDV", proc.stdout), proc.returncode, info))
        home.chmod(0o755)
    assert outs[1] == outs[0]


def test_deletion_log_identical(homes: tuple[Path, Path]) -> None:
    """POP3_LOG_DELETIONS: one DELETED line per removed file, as Courier's."""
    logs = []
    for prog, home in ((COURIER_POP3D, homes[0]), (OUR_POP3D, homes[1])):
        environ = {"PATH": "/usr/bin:/bin", "AUTHENTICATED": "erin", "TCPREMOTEIP": "::1",
                   "TCPREMOTEPORT": "7", "POP3_LOG_DELETIONS": "1"}
        args = [prog, "Maildir"] if prog == COURIER_POP3D else [
            prog, "--config-dir", "/nonexistent", "Maildir"]
        proc = subprocess.run(args, input=b"DELE 2\r\nDELE 4\r\nRETR 1\r\nQUIT\r\n", cwd=home,
                              env=environ, capture_output=True, timeout=30, check=False)
        lines = proc.stderr.decode().splitlines()
        logs.append([re.sub(r", (rcvd|sent|time|top|retr)=\d+", "", ln) for ln in lines
                     if ln.startswith("INFO:")])
    assert sum("INFO: DELETED, user=erin, ip=[::1], port=[7], filename=cur/" in ln
               for ln in logs[0]) == 2
    assert logs[1] == logs[0]


class _Piped:
    """An interactive pre-authenticated session over pipes (single-line replies only)."""

    def __init__(self, prog: str, home: Path) -> None:
        args = [prog, "Maildir"] if prog == COURIER_POP3D else [
            prog, "--config-dir", "/nonexistent", "Maildir"]
        self.proc = subprocess.Popen(args, cwd=home, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env={"PATH": "/usr/bin:/bin", "AUTHENTICATED": "erin"})
        assert self.proc.stdout is not None
        self.greeting = self.proc.stdout.readline()

    def ask(self, line: bytes) -> bytes:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + b"\r\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline()

    def end(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=10)


def test_two_sessions_identical(homes: tuple[Path, Path]) -> None:
    """Two sessions on one Maildir: no lock; a message the other removed is skipped."""
    outs = []
    for prog, home in ((COURIER_POP3D, homes[0]), (OUR_POP3D, homes[1])):
        a, b = _Piped(prog, home), _Piped(prog, home)
        got = [a.greeting, b.greeting, a.ask(b"STAT"), b.ask(b"STAT"), a.ask(b"DELE 1"),
               a.ask(b"DELE 2"), a.ask(b"QUIT")]
        # Courier's pop3d may answer QUIT before its deletions are done: wait for the end
        a.end()
        got += [b.ask(b"DELE 1"), b.ask(b"DELE 3"), b.ask(b"RETR 2"), b.ask(b"LIST 2"),
                b.ask(b"QUIT")]
        b.end()
        outs.append((got, state(home)))
    assert outs[0][0][6] == b"+OK Bye-bye.\r\n" and outs[0][0][-1] == b"+OK Bye-bye.\r\n"
    assert outs[1] == outs[0]


def test_log_without_tcpd_environment_identical(homes: tuple[Path, Path]) -> None:
    """Started without couriertcpd's TCPREMOTEIP/PORT, both log Courier's defaults."""
    logs = []
    for prog, home in ((COURIER_POP3D, homes[0]), (OUR_POP3D, homes[1])):
        args = [prog, "Maildir"] if prog == COURIER_POP3D else [
            prog, "--config-dir", "/nonexistent", "Maildir"]
        proc = subprocess.run(args, input=b"STAT\r\nQUIT\r\n", cwd=home, capture_output=True,
                              env={"PATH": "/usr/bin:/bin", "AUTHENTICATED": "erin"},
                              timeout=30, check=False)
        logs.append([re.sub(r", (rcvd|sent|time|top|retr)=\d+", "", ln)
                     for ln in proc.stderr.decode().splitlines() if ln.startswith("INFO:")])
    assert logs[0] and logs[1] == logs[0]


def test_overgrown_maildirsize_identical(homes: tuple[Path, Path]) -> None:
    """A maildirsize of 5120 bytes or more is recounted at QUIT, as Courier does."""
    for home in homes:
        (home / "Maildir/maildirsize").write_bytes(
            b"100000S,100C\n" + b"         300           10\n" * 250)
    theirs, ours = both(homes, b"DELE 1\r\nDELE 4\r\nQUIT\r\n")
    assert ours == theirs
    got = state(homes[1])
    assert got == state(homes[0])
    assert len(got["maildirsize"]) < 200  # recounted
