"""Differential: our authdaemond and authtest against Courier's, on the same userdb.

Two copies of one userdb text file: Courier's makeuserdb compiles one and the
real authdaemond serves it in a private mount namespace; our makeuserdb
compiles the other and our authdaemond serves it. Then:

- the REAL /usr/sbin/authtest is run against each daemon (ours reached by
  bind-mounting our socket directory over /run/courier/authdaemon): stdout,
  stderr and exit status must be identical;
- our authtest is run against the real daemon and compared with the real one;
- raw socket replies (PRE, AUTH login and CRAM-MD5, ENUMERATE sorted, garbage)
  must be byte-identical;
- password changes through PASSWD must have the same effect on both sides.

Hashes in the userdb come from both sides: Courier's userdbpw (DES, MD5-crypt,
HMAC-MD5) and ours (MD5-crypt, SHA-512-crypt, HMAC-MD5), so each side verifies
the other's.
"""

from __future__ import annotations

import base64
import hmac
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from authdaemon.passwords import hash_password, hmac_secret, verify
from authdaemon.userdb.makeuserdb import build
from tests.oracle.courier_auth import (
    CourierNamespace,
    courier_namespace,
    real_authdaemond,
    write_authdaemonrc,
)
from tests.support import REPO, require

pytestmark = pytest.mark.oracle

BIN = REPO / ".venv" / "bin"
CHALLENGE = b"<1234.5678@vm>"


def real_userdbpw(password: str, *flags: str) -> str:
    out = subprocess.run(
        [require("userdbpw"), *flags], input=password + "\n", capture_output=True, text=True,
        check=True,
    )
    return out.stdout.strip()


def userdb_text() -> str:
    users = [
        # our MD5-crypt
        ("alice", f"uid=5000|gid=5000|home=/srv/vmail/alice|mail=/srv/vmail/alice/Maildir"
                  f"|systempw={hash_password('alicepw', 'md5-crypt')}"),
        # quota, options, gecos with a comma, service password, CRAM secrets from both sides
        ("carol", "uid=5000|gid=5001|home=/srv/vmail/carol|mail=/srv/vmail/carol/Maildir"
                  "|quota=5000000S|options=disablepop3=1,group=staff|gecos=Carol Example,Room 1"
                  f"|systempw={real_userdbpw('carolpw', '-md5')}"
                  f"|imappw={hash_password('carolimap', 'md5-crypt')}"
                  f"|hmac-md5pw={hmac_secret('carolimap', 'md5')}"),
        # Courier's MD5-crypt; options only
        ("dave", f"uid=5002|gid=5002|home=/srv/vmail/dave|options=disableimap=1"
                 f"|systempw={real_userdbpw('davepw', '-md5')}"
                 f"|imap-hmac-md5pw={real_userdbpw('davecram', '-hmac-md5')}"),
        # Courier's DES crypt, no mail field
        ("erin", f"uid=5003|gid=5003|home=/srv/vmail/erin|systempw={real_userdbpw('erinpw')}"),
        # our SHA-512-crypt, handed to crypt(3) by Courier
        ("frank", f"uid=5004|gid=5004|home=/srv/vmail/frank|mail=./Maildir"
                  f"|systempw={hash_password('frankpw', 'sha512-crypt')}"),
        # a cleartext "hash": Courier does not accept it
        ("gina", "uid=5005|gid=5005|home=/srv/vmail/gina|systempw=ginapw"),
        # no password at all
        ("hank", "uid=5006|gid=5006|home=/srv/vmail/hank"),
        # no home: not an account
        ("ivan", f"uid=5007|gid=5007|systempw={hash_password('ivanpw', 'md5-crypt')}"),
    ]
    # home but no uid/gid
    jack_pw, kim_pw = hash_password("jackpw", "md5-crypt"), hash_password("kimpw", "md5-crypt")
    users.append(("jack", f"home=/srv/vmail/jack|systempw={jack_pw}"))
    users.append(("kim", f"uid=77|home=/srv/vmail/kim|systempw={kim_pw}"))  # no gid
    users += [
        ("lena", f"uid=abc|gid=5|home=/srv/vmail/lena|systempw={jack_pw}"),
        ("mona", f"uid=5008|gid=5008|home=/srv/vmail/mona|mail=|quota=|gecos=Mona"
                 f"|loginpw={hash_password('monalogin', 'md5-crypt')}|systempw={kim_pw}"),
        ("nina", f"uid=5009|gid=5009|home=/srv/vmail/nina"
                 f"|hmac-sha1pw={real_userdbpw('ninacram', '-hmac-sha1')}"
                 f"|hmac-sha256pw={hmac_secret('ninacram', 'sha256')}"),
        ("jörg", f"uid=5010|gid=5010|home=/srv/vmail/jörg|gecos=Jörg Ü|systempw={jack_pw}"),
        # Latin-1 bytes (not UTF-8) in a value
        ("zoe", f"uid=5011|gid=5011|home=/srv/vmail/z\udce9|gecos=Zo\udce9|systempw={jack_pw}"),
    ]
    lines = [f"{name}\t{fields}\n" for name, fields in users]
    lines.append("5000=\talice\n")  # a reverse record, never an account
    return "".join(lines)


def write_userdb(etc: Path, text: str) -> None:
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "userdb").write_bytes(text.encode("utf-8", "surrogateescape"))
    (etc / "userdb").chmod(0o600)


def wait_socket(path: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert proc.poll() is None, "our authdaemond exited"
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(str(path))
                return
            except OSError:
                time.sleep(0.02)
    raise AssertionError("our authdaemond did not start")


@dataclass
class Pair:
    real: CourierNamespace  # the real daemon's namespace (real authtest runs here)
    ours_ns: CourierNamespace  # our socket dir mounted at Courier's path
    real_socket: Path
    ours_socket: Path
    real_etc: Path
    ours_etc: Path
    client_etc: Path  # a config dir whose authdaemonvar is the real daemon's run dir


@contextmanager
def make_pair(tmp_path: Path, default_options: str = "") -> Iterator[Pair]:
    """Both daemons on copies of one userdb.

    *default_options* goes into our authdaemonrc, and into the environment of
    the real daemon, which (unlike its start script) reads it only from there.
    """
    require("/usr/lib/courier/courier-authlib/authdaemond")
    text = userdb_text()
    real_etc, ours_etc = tmp_path / "real" / "etc", tmp_path / "ours" / "etc"
    real_run, ours_run = tmp_path / "real" / "run", tmp_path / "ours" / "run"
    write_userdb(real_etc, text)
    write_userdb(ours_etc, text)
    write_authdaemonrc(real_etc)
    write_authdaemonrc(ours_etc, authdaemonvar=str(ours_run), DEFAULTOPTIONS=default_options)
    client_etc = tmp_path / "client"
    write_authdaemonrc(client_etc, authdaemonvar=str(real_run))
    with courier_namespace(real_etc, real_run) as ns:
        ns.run([require("makeuserdb")], check=True)
    build(ours_etc / "userdb")
    ours_run.mkdir(mode=0o750)
    log = (tmp_path / "ours.log").open("wb")
    proc = subprocess.Popen(
        [BIN / "authdaemond", "--config-dir", ours_etc], stdout=log, stderr=log,
        stdin=subprocess.DEVNULL,
    )
    saved = os.environ.get("DEFAULTOPTIONS")
    try:
        wait_socket(ours_run / "socket", proc)
        os.environ["DEFAULTOPTIONS"] = default_options  # inherited by the real daemon
        with real_authdaemond(real_etc, real_run) as real, courier_namespace(
            ours_etc, ours_run
        ) as ours_ns:
            yield Pair(real, ours_ns, real_run / "socket", ours_run / "socket",
                       real_etc, ours_etc, client_etc)
    finally:
        if saved is None:
            os.environ.pop("DEFAULTOPTIONS", None)
        else:
            os.environ["DEFAULTOPTIONS"] = saved
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    with make_pair(tmp_path) as p:
        yield p


def raw(path: Path, data: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(15)
        s.connect(str(path))
        try:
            s.sendall(data)
            out = b""
            while chunk := s.recv(65536):
                out += chunk
        except (BrokenPipeError, ConnectionResetError):
            return b"<reset>"
        return out


def result(p: subprocess.CompletedProcess[Any]) -> tuple[int, Any, Any]:
    return p.returncode, p.stdout, p.stderr


def run_bytes(argv: list[str | Path], **kwargs: object) -> tuple[int, bytes, bytes]:
    p = subprocess.run(argv, capture_output=True, timeout=30, **kwargs)  # type: ignore[call-overload]
    return p.returncode, p.stdout, p.stderr


AUTHTEST_CASES = [
    ("alice",),
    ("alice", "alicepw"),
    ("alice", "wrong"),
    ("ALICE", "alicepw"),
    ("nosuch",),
    ("nosuch", "x"),
    ("carol",),
    ("carol", "carolpw"),
    ("-s", "imap", "carol"),
    ("-s", "imap", "carol", "carolimap"),
    ("-s", "imap", "carol", "carolpw"),
    ("-s", "pop3", "carol", "carolimap"),
    ("dave", "davepw"),
    ("erin", "erinpw"),
    ("erin",),
    ("frank", "frankpw"),
    ("frank", "frankpx"),
    ("gina", "ginapw"),
    ("gina",),
    ("hank",),
    ("hank", "x"),
    ("ivan", "ivanpw"),
    ("5000=",),
    ("jack",),
    ("jack", "jackpw"),
    ("kim", "kimpw"),
    ("lena", "jackpw"),
    ("mona",),
    ("mona", "monalogin"),
    ("mona", "kimpw"),
    ("-s", "imap", "mona", "kimpw"),
    ("nina",),
    ("jörg", "jackpw"),
    ("zoe", "jackpw"),
    (),
    ("-x",),
]


def test_real_authtest_same_against_both_daemons(pair: Pair) -> None:
    authtest = require("authtest")
    for args in AUTHTEST_CASES:
        theirs = result(pair.real.run([authtest, *args]))
        mine = result(pair.ours_ns.run([authtest, *args]))
        assert mine == theirs, args
    # the cases above are not all alike
    assert result(pair.real.run([authtest, "-s", "imap", "carol", "carolimap"], text=True))[0] == 0


def test_our_authtest_same_as_real_authtest(pair: Pair) -> None:
    authtest = require("authtest")
    for args in AUTHTEST_CASES:
        theirs = result(pair.real.run([authtest, *args]))
        mine = run_bytes([BIN / "authtest", "--config-dir", pair.client_etc, *args])
        assert mine == theirs, args
    # the client's own debugging output (stderr) at each DEBUG_LOGIN level
    for level in ("1", "2"):
        env = {**os.environ, "DEBUG_LOGIN": level}
        for args in (("alice", "alicepw"), ("alice", "wrong"), ("alice",), ("carol", "a", "b")):
            theirs = result(pair.real.run(["env", f"DEBUG_LOGIN={level}", authtest, *args]))
            mine = run_bytes([BIN / "authtest", "--config-dir", pair.client_etc, *args], env=env)
            assert mine == theirs, (level, args)
    theirs = result(pair.real.run(["env", "DEBUG_LOGIN=2", authtest, "alice", "wrong"]))
    assert theirs[2].startswith(b"DEBUG: LOGIN: ip=[::1], username=alice\n")


def cram(user: str, secret: str, algo: str = "md5") -> bytes:
    digest = hmac.new(secret.encode(), CHALLENGE, algo).hexdigest()
    data = (base64.b64encode(CHALLENGE) + b"\n"
            + base64.b64encode(f"{user} {digest}".encode()) + b"\n")
    body = f"imap\ncram-{algo}\n".encode() + data
    return b"AUTH %d\n" % len(body) + body


def auth(service: str, user: str, pw: str) -> bytes:
    body = f"{service}\nlogin\n{user}\n{pw}\n".encode()
    return b"AUTH %d\n" % len(body) + body


RAW_CASES = [
    b"PRE . imap alice\n",
    b"PRE . imap carol\n",
    b"PRE . login carol\n",
    b"PRE authuserdb imap dave\n",
    b"PRE authpam imap dave\n",
    b"PRE . imap nosuch\n",
    b"PRE . imap 5000=\n",
    b"PRE . imap ivan\n",
    b"PRE . imap hank\n",
    b"PRE . imap jack\n",
    b"PRE . imap kim\n",
    b"TCPREMOTEIP=10.0.0.1\nPRE . imap erin\n",
    b"PRE  . imap alice extra\n",
    auth("imap", "alice", "alicepw"),
    auth("imap", "carol", "carolimap"),
    auth("pop3", "carol", "carolpw"),
    auth("imap", "frank", "frankpw"),
    auth("imap", "dave", "davepw"),
    auth("imap", "gina", "ginapw"),
    auth("imap", "alice", "wrong"),
    b"AUTH 24\nimap\nlogin\nalice\nalicepw",  # no final LF: still accepted
    cram("carol", "carolimap"),
    cram("carol", "wrong"),
    cram("dave", "davecram"),
    cram("alice", "alicepw"),
    cram("nina", "ninacram", "sha1"),
    cram("nina", "ninacram", "sha256"),
    cram("nina", "wrong", "sha256"),
    cram("nina", "ninacram", "md5"),
    cram("jörg", "x"),
    b"PRE . imap j\xc3\xb6rg\n",
    b"PRE . imap lena\n",
    b"PRE . imap mona\n",
    b"AUTH 19\nimap\nbogus\ncarol\nxx\n",
    b"AUTH 11\nimap\nlogin\n",
    b"AUTH 27x\nimap\nlogin\ncarol\ncarolimap\n",
    b"AUTH abc\n",
    b"BOGUS x\n",
    b"pre . imap alice\n",
    b"PRE . imap\n",
    b"PASSWD imap\tcarol\tcarolimap\n",
    b"PASSWD imap\tcarol\tx\x01\tnew\n",
    b"PASSWD imap\tcarol\twrong\tnew\n",
    b"PRE . imap " + b"a" * 8179 + b"\n",
    b"PRE . imap " + b"a" * 8180 + b"\n",
    b"AUTH 8191\nimap\nlogin\nalice\n" + b"p" * (8191 - 17),
    b"AUTH 8192\nimap\nlogin\nalice\n" + b"p" * (8192 - 17),
]


def test_raw_replies_identical(pair: Pair) -> None:
    def closed_alike(reply: bytes) -> bytes:
        # a hang-up with unread input may reach the client as a reset: same thing
        return b"" if reply == b"<reset>" else reply

    for request in RAW_CASES:
        mine, theirs = raw(pair.ours_socket, request), raw(pair.real_socket, request)
        assert closed_alike(mine) == closed_alike(theirs), request
    assert raw(pair.real_socket, cram("carol", "carolimap")).startswith(b"UID=5000\n")


def test_enumerate_identical_when_sorted(pair: Pair) -> None:
    def sorted_reply(path: Path) -> tuple[bytes, list[bytes], bytes]:
        reply = raw(path, b"ENUMERATE\n")
        head, body = reply[: len(b"# authuserdb\n\n")], reply[len(b"# authuserdb\n\n") :]
        lines = body.split(b"\n")
        assert lines[-2:] == [b".", b""]
        return head, sorted(lines[:-2]), b".\n"

    mine, theirs = sorted_reply(pair.ours_socket), sorted_reply(pair.real_socket)
    assert mine == theirs
    assert len(theirs[1]) >= 5
    args = [["-o"], ["-s"], []]
    for a in args:
        # the real authenumerate against our daemon, and ours against the real one
        on_ours = pair.ours_ns.run([require("authenumerate"), *a])
        on_real = pair.real.run([require("authenumerate"), *a])
        assert (on_ours.returncode, sorted(on_ours.stdout.splitlines()), on_ours.stderr) == (
            on_real.returncode, sorted(on_real.stdout.splitlines()), on_real.stderr), a
        ours = subprocess.run([BIN / "authenumerate", "--config-dir", pair.client_etc, *a],
                              capture_output=True, timeout=30)
        real = pair.real.run([require("authenumerate"), *a])
        assert (ours.returncode, sorted(ours.stdout.splitlines()), ours.stderr) == (
            real.returncode, sorted(real.stdout.splitlines()), real.stderr), a


def fields_of(etc: Path, name: str) -> dict[str, str]:
    for line in (etc / "userdb").read_text(errors="surrogateescape").splitlines():
        if line.startswith(name + "\t"):
            return dict(f.split("=", 1) for f in line.split("\t", 1)[1].split("|"))
    raise KeyError(name)


def test_password_change_same_effect(pair: Pair) -> None:
    authtest = require("authtest")
    before = {side: fields_of(etc, "carol") for side, etc in
              (("real", pair.real_etc), ("ours", pair.ours_etc))}
    # through the real authtest (PASSWD on the socket)
    for ns in (pair.real, pair.ours_ns):
        r = ns.run([authtest, "-s", "imap", "carol", "carolimap", "carolnew"], text=True)
        assert result(r) == (0, "", "Password change succeeded.\n")
        r = ns.run([authtest, "-s", "imap", "carol", "wrongold", "x"], text=True)
        assert result(r) == (1, "", "Authentication FAILED: Operation not permitted\n")
    # the same fields changed, with hashes of the same kinds
    after = {side: fields_of(etc, "carol") for side, etc in
             (("real", pair.real_etc), ("ours", pair.ours_etc))}
    changed = {side: {k for k in after[side] if after[side][k] != before[side].get(k)}
               for side in after}
    assert changed["ours"] == changed["real"]
    assert "imappw" in changed["real"]
    assert after["ours"]["imappw"].startswith("$1$") and after["real"]["imappw"].startswith("$1$")
    assert after["ours"]["hmac-md5pw"] == after["real"]["hmac-md5pw"]
    # and both daemons now take the new password (login and CRAM), not the old one
    for request in (auth("imap", "carol", "carolnew"), auth("imap", "carol", "carolimap"),
                    cram("carol", "carolnew"), cram("carol", "carolimap")):
        mine, theirs = raw(pair.ours_socket, request), raw(pair.real_socket, request)
        if b"PASSWD=" in theirs:  # the hash's salt differs between the two sides
            theirs = theirs.replace(after["real"]["imappw"].encode(),
                                    after["ours"]["imappw"].encode())
        assert mine == theirs, request
    # a raw PASSWD of systempw under service login
    req = b"PASSWD login\tcarol\tcarolpw\tcarolpw2\n"
    assert raw(pair.ours_socket, req) == raw(pair.real_socket, req) == b"OK\n"
    req = b"PASSWD login\tnosuch\tx\ty\n"
    assert raw(pair.ours_socket, req) == raw(pair.real_socket, req) == b"FAIL\n"



@pytest.mark.parametrize(
    "stdin", ["secret\nsecret\n", "secret\n", "a\nb\n", "\n\n", "", "pässwörd\n"]
)
def test_authpasswd_same_as_courier(stdin: str) -> None:
    real_prog = require("authpasswd")
    for method in ("md5", "md5raw", "sha256", "sha512", "MD5", "sha2569", None, "ssha", "crypt",
                   "sha1", "bogus"):
        argv = [] if method is None else [method]
        theirs = subprocess.run([real_prog, *argv], input=stdin, capture_output=True, text=True,
                                timeout=30)
        mine = subprocess.run([BIN / "authpasswd", *argv], input=stdin, capture_output=True,
                              text=True, timeout=30)
        assert (mine.returncode, mine.stderr) == (theirs.returncode, theirs.stderr), method
        if theirs.stdout.startswith(("{SSHA}", "$1$")):
            # salted: same scheme and shape, and both verify (by our checker)
            cut = 6 if theirs.stdout.startswith("{SSHA}") else 3
            assert mine.stdout[:cut] == theirs.stdout[:cut], method
            assert len(mine.stdout) == len(theirs.stdout), method
            password = stdin.split("\n")[0]
            assert verify(password, theirs.stdout.strip()) and verify(password, mine.stdout.strip())
        else:
            assert mine.stdout == theirs.stdout, method


def test_defaultoptions_same_as_courier(tmp_path: Path) -> None:
    with make_pair(tmp_path, "disablewebmail=1,disablepop3=0,group=all") as pair:
        for request in (b"PRE . imap alice\n", b"PRE . imap carol\n", b"PRE . imap dave\n",
                        auth("imap", "carol", "carolimap"), cram("carol", "carolimap")):
            mine, theirs = raw(pair.ours_socket, request), raw(pair.real_socket, request)
            assert mine == theirs, request
            assert b"disablewebmail=1" in theirs
        mine = sorted(raw(pair.ours_socket, b"ENUMERATE\n").split(b"\n"))
        assert mine == sorted(raw(pair.real_socket, b"ENUMERATE\n").split(b"\n"))


def test_ours_refuses_to_take_over_a_running_courier_daemon(pair: Pair) -> None:
    etc = pair.client_etc  # its authdaemonvar is the real daemon's directory
    r = subprocess.run([BIN / "authdaemond", "--config-dir", etc], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode != 0 and "already running" in r.stderr
    assert raw(pair.real_socket, b"PRE . imap alice\n").startswith(b"UID=5000\n")
    assert not (pair.real_socket.parent / "pid").exists()


DEBUG_REQUESTS = [
    b"PRE . imap alice\n",
    b"PRE . imap hank\n",
    b"PRE . imap ivan\n",
    b"PRE . imap nosuch\n",
    auth("imap", "carol", "carolimap"),
    auth("imap", "carol", "bad"),
    auth("imap", "zoe", "jackpw"),
    cram("carol", "carolimap"),
    cram("carol", "bad"),
    cram("nosuch", "x"),
    cram("alice", "alicepw"),
    b"PASSWD imap\tcarol\tbad\tnew\n",
    b"PASSWD imap\talice\tbad\tnew\n",
    b"PASSWD imap\tnosuch\tbad\tnew\n",
    b"PRE . imap kim\n",
]


def _debug_log(argv: list[str], socket_path: Path, log_path: Path, level: str,
               ns: CourierNamespace | None = None) -> list[bytes]:
    env = {**os.environ, "DEBUG_LOGIN": level}
    with log_path.open("wb") as log:
        if ns is not None:
            proc = ns.popen(argv, stdout=log, stderr=log, env=env)
        else:
            proc = subprocess.Popen(argv, stdout=log, stderr=log, env=env,
                                    start_new_session=True)
        try:
            wait_socket(socket_path, proc)
            for request in DEBUG_REQUESTS:
                raw(socket_path, request)
            time.sleep(0.3)
        finally:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=15)
    # Courier logs "opened" whenever a worker opens the database, and (seen
    # only sometimes, depending on the worker) "userdbshadow: entry not found"
    skip = (b"INFO: ", b"DEBUG: userdb: opened ", b"DEBUG: userdbshadow: entry not found")
    return [line for line in log_path.read_bytes().splitlines() if not line.startswith(skip)]


@pytest.mark.parametrize("level", ["1", "2"])
def test_debug_login_log_same_as_courier(tmp_path: Path, level: str) -> None:
    """With DEBUG_LOGIN our daemon logs what Courier's logs (minus its "opened" lines)."""
    text = userdb_text()
    real_etc, ours_etc = tmp_path / "real" / "etc", tmp_path / "ours" / "etc"
    real_run, ours_run = tmp_path / "real" / "run", tmp_path / "ours" / "run"
    write_userdb(real_etc, text)
    write_userdb(ours_etc, text)
    write_authdaemonrc(real_etc)
    write_authdaemonrc(ours_etc, authdaemonvar=str(ours_run), DEBUG_LOGIN=level)
    build(ours_etc / "userdb")
    with courier_namespace(real_etc, real_run) as ns:
        ns.run([require("makeuserdb")], check=True)
        theirs = _debug_log([require("/usr/lib/courier/courier-authlib/authdaemond")],
                            real_run / "socket", tmp_path / "real.log", level, ns)
    mine = _debug_log([str(BIN / "authdaemond"), "--config-dir", str(ours_etc)],
                      ours_run / "socket", tmp_path / "ours.log", level)
    assert mine == theirs
    assert (b"DEBUG: supplied password 'bad' does not match" in b"\n".join(mine)) == (
        level == "2"
    )
