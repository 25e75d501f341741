"""Courier's own login chain (couriertcpd → imaplogin/courierpop3login → imapd/pop3d)
authenticating through OUR authdaemond.

The real programs reach the socket at their compiled-in path; a private mount
namespace puts our socket directory there. Nothing else of ours is involved,
so this shows that Courier's client library accepts our replies: the account
record (uid, gid, home, maildir), options (``disableimap``) and CRAM.
"""

from __future__ import annotations

import hashlib
import hmac
import imaplib
import os
import poplib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from authdaemon.passwords import hash_password, hmac_secret
from authdaemon.userdb.makeuserdb import build
from tests.oracle.courier_auth import CourierNamespace, courier_namespace, write_authdaemonrc
from tests.support import REPO, free_port, require

pytestmark = pytest.mark.oracle

VMAIL = 5000
COURIER_LIB = "/usr/lib/courier/courier"


def wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert proc.poll() is None, "couriertcpd exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


@pytest.fixture
def chain() -> Iterator[tuple[int, int]]:
    """(imap port, pop3 port) of Courier's servers, authenticating through our daemon."""
    tcpd = require("couriertcpd")
    imaplogin = require(f"{COURIER_LIB}/imaplogin")
    pop3login = require(f"{COURIER_LIB}/courierpop3login")
    imapd = require("/usr/bin/imapd")
    pop3d = require(f"{COURIER_LIB}/courierpop3d")
    maildirmake = require("maildirmake")
    # homes must be reachable by uid 5000, which pytest's 0700 tmp_path is not
    root = Path(tempfile.mkdtemp(prefix="authchain-"))
    root.chmod(0o755)
    etc, run = root / "etc", root / "run"
    etc.mkdir()
    for name in ("imapd", "imapd-ssl", "pop3d", "pop3d-ssl"):
        shutil.copy(f"/etc/courier/{name}", etc / name)
    write_authdaemonrc(etc, authdaemonvar=str(run))
    lines = []
    for user, extra in (
        ("alice", ""),
        ("dave", "|options=disableimap=1"),
        ("carol", f"|hmac-md5pw={hmac_secret('carolcram', 'md5')}"),
    ):
        home = root / "vmail" / user
        home.mkdir(parents=True)
        subprocess.run([maildirmake, str(home / "Maildir")], check=True)
        subprocess.run(["chown", "-R", f"{VMAIL}:{VMAIL}", str(home)], check=True)
        lines.append(
            f"{user}\tuid={VMAIL}|gid={VMAIL}|home={home}|mail={home}/Maildir"
            f"|systempw={hash_password(user + 'pw', 'md5-crypt')}{extra}\n"
        )
    (root / "vmail").chmod(0o755)
    (etc / "userdb").write_text("".join(lines))
    (etc / "userdb").chmod(0o600)
    build(etc / "userdb")
    daemon = subprocess.Popen(
        [REPO / ".venv" / "bin" / "authdaemond", "--config-dir", etc],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    servers: list[subprocess.Popen[bytes]] = []
    try:
        deadline = time.monotonic() + 15
        while not (run / "socket").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        with courier_namespace(etc, run) as ns:
            ports = []
            for config, login, server in (("imapd", imaplogin, imapd), ("pop3d", pop3login, pop3d)):
                port = free_port()
                servers.append(start_server(ns, config, tcpd, port, login, server))
                wait_port(port, servers[-1])
                ports.append(port)
            yield ports[0], ports[1]
    finally:
        for proc in servers:
            stop_group(proc)
        daemon.terminate()
        daemon.wait(timeout=15)
        shutil.rmtree(root, ignore_errors=True)


def start_server(
    ns: CourierNamespace, config: str, tcpd: str, port: int, login: str, server: str
) -> subprocess.Popen[bytes]:
    script = (
        f"set -a; . /etc/courier/{config}; exec {tcpd} -address=127.0.0.1 -nodnslookup "
        f"-noidentlookup {port} {login} {server} Maildir"
    )
    return ns.popen(
        ["env", "-i", "PATH=/usr/bin:/bin:/usr/sbin:/usr/lib/courier", "sh", "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
        proc.wait()


def test_real_imaplogin_and_imapd_through_our_daemon(chain: tuple[int, int]) -> None:
    imap_port, _ = chain
    m = imaplib.IMAP4("127.0.0.1", imap_port)
    assert m.login("alice", "alicepw") == ("OK", [b"LOGIN Ok."])
    assert m.select("INBOX")[0] == "OK"
    m.logout()
    # options reach imapd: LOGIN OK, then BYE (as captured from Courier for dave)
    m = imaplib.IMAP4("127.0.0.1", imap_port)
    with pytest.raises(imaplib.IMAP4.abort, match="IMAP access disabled for this account"):
        m.login("dave", "davepw")
        m.select("INBOX")


def test_real_imaplogin_cram_md5_through_our_daemon(chain: tuple[int, int]) -> None:
    imap_port, _ = chain
    m = imaplib.IMAP4("127.0.0.1", imap_port)

    def respond(challenge: bytes) -> bytes:
        digest = hmac.new(b"carolcram", challenge, hashlib.md5).hexdigest()
        return f"carol {digest}".encode()

    typ, _ = m.authenticate("CRAM-MD5", respond)
    assert typ == "OK"
    assert m.select("INBOX")[0] == "OK"
    m.logout()


def test_real_pop3_through_our_daemon(chain: tuple[int, int]) -> None:
    _, pop3_port = chain
    p = poplib.POP3("127.0.0.1", pop3_port)
    p.user("alice")
    assert p.pass_("alicepw").startswith(b"+OK")
    assert p.stat() == (0, 0)
    p.quit()
