"""Our imapd's login stage against Courier's (couriertcpd → imaplogin → imapd), both
authenticating through the same authdaemond: the same pre-auth dialogues must give
the same bytes (BAD where Courier says NO for commands it does not accept is the one
deliberate difference, see docs/differences.md)."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from authdaemon.passwords import hash_password
from authdaemon.userdb.makeuserdb import build
from tests.integration.imapd_support import ImapdListener, RawClient, base_env
from tests.oracle.courier_auth import courier_namespace, write_authdaemonrc
from tests.oracle.test_authdaemon_courier_chain import (
    COURIER_LIB,
    start_server,
    stop_group,
    wait_port,
)
from tests.support import REPO, free_port, require

pytestmark = pytest.mark.oracle

VMAIL = 5000

DIALOGUES: list[list[bytes]] = [
    [b"a1 CAPABILITY", b"a2 NOOP", b"a3 FOO", b"a4 SELECT INBOX", b"a5 STARTTLS",
     b"a6 LOGOUT"],
    [b'a1 LOGIN "alice" "alicepw"', b"a2 CAPABILITY", b"a3 SELECT INBOX", b"a4 LOGOUT"],
    [b"a1 AUTHENTICATE PLAIN " + base64.b64encode(b"\0alice\0alicepw"), b"a2 NAMESPACE",
     b"a3 LOGOUT"],
    [b"a1 AUTHENTICATE LOGIN", base64.b64encode(b"alice"), base64.b64encode(b"alicepw"),
     b"a2 LOGOUT"],
    [b"a1 LOGIN dave davepw"],
    [b"a1 LOGIN alice wrong", b"a2 LOGOUT"],
]


@pytest.fixture(scope="module")
def servers():
    """(Courier's port, our port), both over our authdaemond and the same accounts."""
    tcpd = require("couriertcpd")
    imaplogin = require(f"{COURIER_LIB}/imaplogin")
    imapd = require("/usr/bin/imapd")
    maildirmake = require("maildirmake")
    root = Path(tempfile.mkdtemp(prefix="imaplogin-"))
    root.chmod(0o755)
    etc, run = root / "etc", root / "run"
    etc.mkdir()
    for name in ("imapd", "imapd-ssl"):
        shutil.copy(f"/etc/courier/{name}", etc / name)
    write_authdaemonrc(etc, authdaemonvar=str(run))
    lines = []
    for user, extra in (("alice", ""), ("dave", "|options=disableimap=1")):
        home = root / "vmail" / user
        home.mkdir(parents=True)
        subprocess.run([maildirmake, str(home / "Maildir")], check=True)
        subprocess.run(["chown", "-R", f"{VMAIL}:{VMAIL}", str(home)], check=True)
        lines.append(f"{user}\tuid={VMAIL}|gid={VMAIL}|home={home}|mail={home}/Maildir"
                     f"|systempw={hash_password(user + 'pw', 'md5-crypt')}{extra}\n")
    (root / "vmail").chmod(0o755)
    (etc / "userdb").write_text("".join(lines))
    (etc / "userdb").chmod(0o600)
    build(etc / "userdb")
    daemon = subprocess.Popen([REPO / ".venv" / "bin" / "authdaemond", "--config-dir", etc],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    procs = []
    try:
        deadline = time.monotonic() + 15
        while not (run / "socket").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        with courier_namespace(etc, run) as ns:
            port = free_port()
            procs.append(start_server(ns, "imapd", tcpd, port, imaplogin, imapd))
            wait_port(port, procs[-1])
            env = base_env(COURIERPY_LOGIN_FAIL_DELAY="0", IMAP_MAILBOX_SANITY_CHECK="1")
            with ImapdListener(["--config-dir", str(etc), "Maildir"], env) as ours:
                yield port, ours
    finally:
        for p in procs:
            stop_group(p)
        daemon.terminate()
        daemon.wait(timeout=15)
        shutil.rmtree(root, ignore_errors=True)


def _dialogue(port: int, lines: list[bytes]) -> list[bytes]:
    out = []
    with RawClient(port, timeout=15) as c:
        out.append(c.line())
        for ln in lines:
            c.send(ln + b"\r\n")
            while True:
                try:
                    resp = c.line()
                except EOFError:
                    return out
                if b"Filesystem notification initialization error" in resp:
                    continue  # Courier's imapd finds no FAM/Gamin in this container
                out.append(re.sub(rb"^(a\d+) BAD Error in IMAP", rb"\1 NO Error in IMAP", resp))
                if resp[:1] in (b"+",) or re.match(rb"^a\d+ ", resp):
                    break
                if resp.startswith(b"* BYE") and not ln.endswith(b"LOGOUT"):
                    return out
    return out


@pytest.mark.parametrize("n", range(len(DIALOGUES)))
def test_login_stage_matches_courier(servers, n):
    courier, ours = servers
    assert _dialogue(ours, DIALOGUES[n]) == _dialogue(courier, DIALOGUES[n])
