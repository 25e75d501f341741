"""What fasttcpd keeps across connections must never be stale or shared.

courierpy.login.fasttcpd parses the login stage's config files and builds its
TLS contexts once (courierpy.login.startup.StartupCache).  These tests run it
on a real port, as Courier's couriertcpd is run by hand (``couriertcpd PORT imaplogin
imapd Maildir`` with the config in files, not in the environment), and check
that a changed config file or certificate takes effect for the very next
connection, that each connection sees its own peer (TCPREMOTEIP/PORT, failed
logins), and that stopping the server leaves no process behind.
"""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from courierpy.cli.mkimapdcert import make_certificate
from tests.instance import Instance
from tests.integration.imapd_support import LineConn, Tcpd, children_of, start_fasttcpd

VENV_BIN = Path(sys.executable).parent


@dataclass
class Server(Tcpd):
    cert: Path


def _pem(cn: str) -> bytes:
    return make_certificate({"cn": [cn], "organization": ["Test"], "serial": ["7"]}, bits=2048)


@pytest.fixture(scope="module")
def pems() -> dict[str, bytes]:
    return {cn: _pem(cn) for cn in ("first.example", "second.example")}


@pytest.fixture
def server(instance: Instance, tmp_path: Path, pems: dict[str, bytes]) -> Iterator[Server]:
    instance.add_user("erin", "erinpw")
    instance.make_userdb()
    cert = tmp_path / "server.pem"
    cert.write_bytes(pems["first.example"])
    instance.set_config("imapd", IMAP_EMPTYTRASH="")
    instance.set_config("imapd-ssl", IMAPDSTARTTLS="YES", TLS_CERTFILE=str(cert),
                        TLS_CACHEFILE="")
    with instance.start_authdaemond():
        tcpd = start_fasttcpd(instance.confdir, tmp_path,
                              [str(VENV_BIN / "imaplogin"), str(VENV_BIN / "imapd")])
        try:
            yield Server(tcpd.proc, tcpd.port, tcpd.log, cert)
        finally:
            tcpd.proc.terminate()
            tcpd.proc.wait(timeout=30)


class Conn(LineConn):
    """A connection with its greeting read; ``port`` is the client's own port."""

    def __init__(self, port: int) -> None:
        super().__init__(socket.create_connection(("127.0.0.1", port), timeout=15))
        self.port = self.sock.getsockname()[1]
        self.greeting = self.line()

    def starttls_cert(self) -> bytes:
        """STARTTLS; the server's certificate (DER)."""
        assert self.imap("t", "STARTTLS")[-1].startswith(b"t OK")
        self.starttls()
        der = self.sock.getpeercert(binary_form=True)
        assert der is not None
        return der


def _cn(der: bytes) -> str:
    pem = ssl.DER_cert_to_PEM_cert(der)
    out = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem.encode(),
                         capture_output=True, check=True).stdout.decode()
    return out.split("CN", 1)[1].lstrip(" =").strip()


def test_a_changed_config_file_counts_from_the_next_connection(server: Server,
                                                               instance: Instance) -> None:
    c = Conn(server.port)
    assert b"XMARK" not in c.greeting
    c.close()
    # back to back (the parent's copy is stale), then after the parent's
    # refresh: each connection reads what the file says now
    for n in range(4):
        instance.set_config("imapd", IMAP_CAPABILITY=f"IMAP4rev1 IDLE XMARK{n}")
        c = Conn(server.port)
        assert f"XMARK{n}".encode() in c.greeting.split(b"]")[0].split(), c.greeting
        assert f"XMARK{n - 1}".encode() not in c.greeting.split()
        c.close()
        if n == 1:
            time.sleep(1.5)


def test_a_changed_certificate_counts_from_the_next_connection(
        server: Server, pems: dict[str, bytes]) -> None:
    c = Conn(server.port)
    assert _cn(c.starttls_cert()) == "first.example"
    c.close()
    for n, name in enumerate(("second.example", "first.example", "second.example")):
        tmp = server.cert.with_suffix(".new")
        tmp.write_bytes(pems[name])
        tmp.replace(server.cert)
        c = Conn(server.port)
        assert _cn(c.starttls_cert()) == name
        assert c.imap("a", "LOGIN erin erinpw")[-1] == b"a OK LOGIN Ok."
        c.close()
        if n == 0:
            time.sleep(1.5)


def test_each_connection_sees_its_own_peer(server: Server) -> None:
    first, second = Conn(server.port), Conn(server.port)
    assert first.imap("a", "LOGIN erin wrong")[-1].startswith(b"a NO")
    assert second.imap("b", "LOGIN erin erinpw")[-1] == b"b OK LOGIN Ok."
    assert first.imap("c", "LOGIN erin erinpw")[-1] == b"c OK LOGIN Ok."
    for c in (first, second):
        c.imap("z", "LOGOUT")
        c.close()
    deadline = time.monotonic() + 10
    while sum("LOGOUT" in ln for ln in server.log_lines()) < 2:
        assert time.monotonic() < deadline, server.log_lines()
        time.sleep(0.05)
    lines = server.log_lines()
    failed = [ln for ln in lines if "LOGIN FAILED" in ln]
    assert len(failed) == 1 and f"port=[{first.port}]" in failed[0], lines
    for c in (first, second):
        mine = [ln for ln in lines if ln.startswith("INFO: LOGIN, user=erin")
                and f"port=[{c.port}]" in ln]
        assert len(mine) == 1, lines
    assert all("port=[]" not in ln for ln in lines)


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][:1] == "Z"
    except FileNotFoundError:
        return True


def test_stopping_leaves_no_process(server: Server) -> None:
    c = Conn(server.port)
    assert c.imap("a", "LOGIN erin erinpw")[-1] == b"a OK LOGIN Ok."
    kids = children_of(server.proc.pid)
    assert kids  # the session
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while not all(_gone(k) for k in kids):
        assert time.monotonic() < deadline, [k for k in kids if not _gone(k)]
        time.sleep(0.05)
    c.close()
