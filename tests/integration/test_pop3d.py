"""pop3d over real sockets: every command in every state, self-authenticating.

Each connection runs our pop3d (tests/clients/pop3_listener.py) behind a
loopback listener; it logs in through our authdaemond on a throwaway
instance. Expected replies are Courier's texts (see the oracle test for the
byte-for-byte comparison of the TRANSACTION state with the real server).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients.pop3_listener import Pop3Listener, wait_children
from tests.instance import Instance
from tests.support import require

M1 = b"From: a@b\nSubject: one\n\nline1\n.dot\nline3\n"
M2 = b"Subject: two\n\nshort\n"


@pytest.fixture
def inst(instance: Instance) -> Iterator[Instance]:
    erin = instance.add_user("erin", "erinpw")
    instance.add_user("carol", "carolpw", options="disablepop3=1")
    instance.add_user("dave", "davepw", options="disableinsecurepop3=1")
    # fixed names: the message order (delivery time, then name) is known
    (erin.maildir / "new" / f"1700000000.M1P1.test,S={len(M1)}").write_bytes(M1)
    (erin.maildir / "new" / f"1700000001.M1P1.test,S={len(M2)}").write_bytes(M2)
    instance.make_userdb()
    instance.set_config("pop3d-ssl", POP3_STARTTLS="NO")  # STLS only where a test asks
    with instance.start_authdaemond():
        yield instance


def talk(port: int, script: bytes, *, timeout: float = 10, hangup: bool = True) -> bytes:
    """Send *script* in one packet (pipelining), hang up, read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(script)
        if hangup:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def lines(data: bytes) -> list[str]:
    assert data.endswith(b"\r\n")
    return data[:-2].decode().split("\r\n")


CAPA = ["+OK Here's what I can do:", "TOP", "USER", "LOGIN-DELAY 10", "PIPELINING", "UIDL",
        "UTF8 USER", "IMPLEMENTATION Courier Mail Server", "."]


def test_authorization_state(inst: Instance) -> None:
    with Pop3Listener(inst) as port:
        got = talk(port, b"CAPA\r\nSTAT\r\nLIST\r\nPASS x\r\nUSER erin\r\nPASS wrong\r\n"
                         b"APOP erin 0123456789abcdef0123456789abcdef\r\nAUTH\r\nSTLS\r\n"
                         b"NOOP\r\nDELE 1\r\n\r\nQUIT\r\n")
    assert lines(got) == ["+OK Hello there.", *CAPA, "-ERR Invalid command.",
                          "-ERR Invalid command.", "-ERR USER/PASS required.",
                          "+OK Password required.", "-ERR Login failed.",
                          "-ERR Invalid command.", "-ERR Invalid command.",
                          "-ERR TLS support not available.", "-ERR Invalid command.",
                          "-ERR Invalid command.", "-ERR Invalid command.",
                          "+OK Better luck next time."]


def test_transaction_and_update(inst: Instance) -> None:
    md = inst.users["erin"].maildir
    with Pop3Listener(inst) as listener_port:
        got = talk(listener_port, b"USER erin\r\nPASS erinpw\r\nSTAT\r\nLIST\r\nLIST 2\r\n"
                   b"LIST 3\r\nUIDL\r\nUIDL 1\r\nTOP 1 0\r\nTOP 1 1\r\nRETR 1\r\nDELE 1\r\n"
                   b"DELE 1\r\nRETR 1\r\nSTAT\r\nRSET\r\nSTAT\r\nDELE 2\r\nNOOP\r\nUSER x\r\n"
                   b"STLS\r\nUTF8\r\nCAPA\r\nQUIT\r\n")
    out = lines(got)
    uidv = out[11].split("-")[1]
    assert out == [
        "+OK Hello there.", "+OK Password required.", "+OK logged in.", "+OK 2 70",
        "+OK POP3 clients that break here, they violate STD53.", "1 47", "2 23", ".",
        "+OK 2 23", "-ERR Invalid message number.", "+OK", f"1 UID1-{uidv}",
        f"2 UID2-{uidv}", ".", f"+OK 1 UID1-{uidv}",
        "+OK headers follow.", "From: a@b", "Subject: one", "", ".",
        "+OK headers follow.", "From: a@b", "Subject: one", "", "line1", ".",
        "+OK 47 octets follow.", "From: a@b", "Subject: one", "", "line1", "..dot", "line3",
        ".", "+OK Deleted.", "-ERR Invalid message number.", "-ERR Invalid message number.",
        "+OK 1 23", "+OK Resurrected.", "+OK 2 70", "+OK Deleted.", "+OK Yup.",
        "-ERR Invalid command.", "-ERR Invalid command.", "+OK UTF8 enabled", *CAPA,
        "+OK Bye-bye."]
    cur = sorted(os.listdir(md / "cur"))
    assert len(cur) == 1 and cur[0].endswith(":2,S")  # RETR marked it seen; DELE 2 applied
    assert os.listdir(md / "new") == []
    sizelist = (md / "courierpop3dsizelist").read_text()
    assert sizelist.startswith(f"/3 3 {uidv}\n")


def test_disconnect_deletes_nothing(inst: Instance) -> None:
    md = inst.users["erin"].maildir
    with Pop3Listener(inst) as port:
        listener_out = talk(port, b"USER erin\r\nPASS erinpw\r\nDELE 1\r\nDELE 2\r\n")
        assert lines(listener_out)[-1] == "+OK Deleted."
    assert len(os.listdir(md / "cur")) == 2


def test_failed_login_delay_and_logs(inst: Instance) -> None:
    with Pop3Listener(inst, fail_delay=0.5) as port:
        t0 = time.monotonic()
        got = talk(port, b"USER erin\r\nPASS nope\r\nUSER erin\r\nPASS erinpw\r\nQUIT\r\n")
        elapsed = time.monotonic() - t0
    assert 0.5 <= elapsed < 5
    assert lines(got)[2:] == ["-ERR Login failed.", "+OK Password required.",
                              "+OK logged in.", "+OK Bye-bye."]


def test_log_lines(inst: Instance) -> None:
    lst = Pop3Listener(inst)
    with lst as port:
        talk(port, b"USER erin\r\nPASS nope\r\nUSER erin\r\nPASS erinpw\r\nQUIT\r\n")
        talk(port, b"USER erin\r\nPASS erinpw\r\n")
        wait_children(lst)
    log = lst.log()
    assert "INFO: LOGIN FAILED, user=erin, ip=[127.0.0.1], port=[" in log
    assert "INFO: LOGIN, user=erin, ip=[127.0.0.1], port=[" in log
    assert "INFO: LOGOUT, user=erin, ip=[127.0.0.1]" in log
    assert "INFO: DISCONNECTED, user=erin, ip=[127.0.0.1]" in log


def test_disabled_accounts(inst: Instance) -> None:
    with Pop3Listener(inst) as port:
        carol = talk(port, b"USER carol\r\nPASS carolpw\r\nSTAT\r\n")
        dave = talk(port, b"USER dave\r\nPASS davepw\r\nSTAT\r\n")
    assert lines(carol)[-1] == "-ERR POP3 access disabled for this account."
    assert lines(dave)[-1] == "-ERR POP3 access disabled via insecure connection."


def test_bad_input(inst: Instance) -> None:
    with Pop3Listener(inst) as port:
        got = talk(port, b"USER erin\r\nPASS erinpw\r\nNOOP " + b"x" * 20000 + b"\r\n"
                   b"LIST 0\r\nLIST -1\r\nLIST 99999999999999999999\r\nTOP 1\r\nXYZ\r\n"
                   b"\xff\xfe\r\nSTAT\r\nQUIT\r\n")
    assert lines(got)[3:] == ["-ERR Invalid command.", "-ERR Invalid message number.",
                              "-ERR Invalid message number.", "-ERR Invalid message number.",
                              "-ERR Invalid command.", "-ERR Invalid command.",
                              "-ERR Invalid command.", "+OK 2 70", "+OK Bye-bye."]


def test_autologout(inst: Instance) -> None:
    lst = Pop3Listener(inst, COURIERPY_POP3_TIMEOUT="0.5")
    with lst as port:
        t0 = time.monotonic()
        got = talk(port, b"USER erin\r\nPASS erinpw\r\nDELE 1\r\n",
                   hangup=False)
        assert time.monotonic() - t0 < 5
    assert lines(got)[-1] == "+OK Deleted."
    assert len(os.listdir(inst.users["erin"].maildir / "cur")) == 2
    wait_children(lst)
    assert "INFO: TIMEOUT, user=erin, ip=[127.0.0.1]" in lst.log()


def test_two_sessions_one_mailbox(inst: Instance) -> None:
    md = inst.users["erin"].maildir
    with Pop3Listener(inst) as port:
        a = socket.create_connection(("127.0.0.1", port), timeout=10)
        b = socket.create_connection(("127.0.0.1", port), timeout=10)
        for s in (a, b):
            s.sendall(b"USER erin\r\nPASS erinpw\r\nSTAT\r\n")
        for s in (a, b):  # both logged in, each with its snapshot
            got = b""
            while not got.endswith(b"\r\n+OK 2 70\r\n") and (chunk := s.recv(4096)):
                got += chunk
            assert got.endswith(b"+OK logged in.\r\n+OK 2 70\r\n")
        a.sendall(b"DELE 1\r\nQUIT\r\n")
        assert a.recv(4096).endswith(b"Bye-bye.\r\n")
        time.sleep(0.3)
        b.sendall(b"DELE 1\r\nDELE 2\r\nQUIT\r\n")  # message 1 is already gone: skipped
        data = b""
        while chunk := b.recv(4096):
            data += chunk
        assert data.endswith(b"+OK Bye-bye.\r\n")
        a.close()
        b.close()
    assert os.listdir(md / "cur") == []


def _cert(tmp: Path) -> Path:
    openssl = require("openssl")
    pem = tmp / "pop3d.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", str(pem), "-out", str(pem)],
                   check=True, capture_output=True)
    return pem


def test_stls_sasl_and_tls_required(inst: Instance, tmp_path: Path) -> None:
    pem = _cert(tmp_path)
    inst.set_config("pop3d", POP3AUTH="LOGIN CRAM-MD5", POP3AUTH_TLS="PLAIN LOGIN")
    inst.set_config("pop3d-ssl", POP3_STARTTLS="YES", TLS_CERTFILE=str(pem),
                    POP3_TLS_REQUIRED="1")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with Pop3Listener(inst) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            f = raw.makefile("rb")
            assert f.readline() == b"+OK Hello there.\r\n"
            raw.sendall(b"CAPA\r\nUSER erin\r\nSTLS\r\n")
            capa = [f.readline() for _ in range(11)]
            assert capa[1:3] == [b"SASL LOGIN CRAM-MD5\r\n", b"STLS\r\n"]
            assert f.readline() == b"-ERR TLS required to log in.\r\n"
            assert f.readline() == b"+OK Begin SSL/TLS negotiation now.\r\n"
            with ctx.wrap_socket(raw) as tls:
                g = tls.makefile("rb")
                tls.sendall(b"CAPA\r\n")
                capa = [g.readline() for _ in range(10)]
                assert capa[1] == b"SASL PLAIN LOGIN\r\n" and b"STLS\r\n" not in capa
                token = base64.b64encode(b"\0erin\0erinpw")
                tls.sendall(b"AUTH PLAIN " + token + b"\r\nSTAT\r\nQUIT\r\n")
                assert g.readline() == b"+OK logged in.\r\n"
                assert g.readline() == b"+OK 2 70\r\n"
                assert g.readline() == b"+OK Bye-bye.\r\n"


def test_sasl_login_without_tls(inst: Instance) -> None:
    inst.set_config("pop3d", POP3AUTH="LOGIN PLAIN")
    with Pop3Listener(inst) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            f = s.makefile("rb")
            f.readline()
            s.sendall(b"AUTH LOGIN\r\n")
            assert f.readline() == b"+ " + base64.b64encode(b"Username:") + b"\r\n"
            s.sendall(base64.b64encode(b"erin") + b"\r\n")
            assert f.readline() == b"+ " + base64.b64encode(b"Password:") + b"\r\n"
            s.sendall(base64.b64encode(b"erinpw") + b"\r\nSTAT\r\nQUIT\r\n")
            assert f.readline() == b"+OK logged in.\r\n"
            assert f.readline() == b"+OK 2 70\r\n"
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            f = s.makefile("rb")
            f.readline()
            s.sendall(b"AUTH PLAIN\r\n")
            assert f.readline() == b"+ \r\n"
            s.sendall(b"*\r\nAUTH CRAM-MD5\r\nAUTH\r\n")
            assert f.readline() == b"-ERR Authentication aborted.\r\n"
            assert f.readline() == b"-ERR Authentication failed.\r\n"  # not offered
            assert f.readline() == b"-ERR Invalid command.\r\n"  # AUTH without a mechanism
            s.sendall(b"AUTH PLAIN " + base64.b64encode(b"\0erin\0bad") + b"\r\n")
            assert f.readline() == b"-ERR Authentication failed.\r\n"
            s.sendall(b"QUIT\r\n")
            assert f.readline() == b"+OK Better luck next time.\r\n"


def test_cram_md5(instance: Instance) -> None:
    from authdaemon.passwords import hmac_secret

    instance.add_user("erin", "erinpw", **{"hmac-md5pw": hmac_secret("erincram", "md5")})
    instance.make_userdb()
    instance.set_config("pop3d", POP3AUTH="CRAM-MD5")
    with instance.start_authdaemond(), Pop3Listener(instance) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            f = s.makefile("rb")
            f.readline()
            s.sendall(b"AUTH CRAM-MD5\r\n")
            line = f.readline()
            assert line.startswith(b"+ ")
            challenge = base64.b64decode(line[2:].strip())
            digest = hmac.new(b"erincram", challenge, hashlib.md5).hexdigest()
            s.sendall(base64.b64encode(b"erin " + digest.encode()) + b"\r\nSTAT\r\nQUIT\r\n")
            assert f.readline() == b"+OK logged in.\r\n"
            assert f.readline() == b"+OK 0 0\r\n"


def test_client_that_stops_reading(inst: Instance) -> None:
    """Replies pile up unread: after the autologout time the session ends, nothing deleted."""
    md = inst.users["erin"].maildir
    big = b"Subject: big\n\n" + (b"x" * 99 + b"\n") * 40000  # 4 MB on the wire
    (md / "new" / f"1700000005.M1P1.test,S={len(big)}").write_bytes(big)
    lst = Pop3Listener(inst, COURIERPY_POP3_TIMEOUT="0.5")
    with lst as port:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"USER erin\r\nPASS erinpw\r\nDELE 1\r\n" + b"RETR 3\r\n" * 20)
        t0 = time.monotonic()
        while not lst.children and time.monotonic() - t0 < 5:
            time.sleep(0.01)
        wait_children(lst, timeout=15)
        assert time.monotonic() - t0 < 10
        s.close()
    assert "INFO: TIMEOUT, user=erin" in lst.log()
    assert len(os.listdir(md / "cur")) == 3
