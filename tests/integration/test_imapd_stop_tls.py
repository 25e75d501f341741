"""SIGTERM to our imapd doing its own login and TLS (STARTTLS in the session's own loop):
an APPEND arriving over TLS is finished and answered, then BYE; an idle TLS session gets BYE."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.instance import Instance
from tests.integration.imapd_support import ImapdListener, LineConn, base_env
from tests.support import require

BYE = b"* BYE Courier-IMAP server shut down by signal."


class TlsClient(LineConn):
    """Connected, STARTTLS done."""

    def __init__(self, port: int) -> None:
        super().__init__(socket.create_connection(("127.0.0.1", port), timeout=15))
        assert self.line().startswith(b"* OK")
        assert self.imap("s1", "STARTTLS") == [b"s1 OK Begin SSL/TLS negotiation now."]
        self.starttls()


def _session_pid(listener: ImapdListener, count: int) -> int:
    deadline = time.monotonic() + 10
    while len(listener.procs) < count:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return listener.procs[count - 1].pid


def test_sigterm_over_starttls(instance: Instance, tmp_path: Path) -> None:
    openssl = require("openssl", "makes the test certificate")
    pem = tmp_path / "imapd.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", str(pem), "-out", str(pem)],
                   check=True, capture_output=True)
    user = instance.add_user("erin", "erinpw")
    instance.make_userdb()
    message = b"Subject: tls stop\n\n" + b"".join(b"row %06d\n" % n for n in range(30000))
    half = len(message) // 2
    with instance.start_authdaemond():
        env = base_env(COURIER_CONFDIR=str(instance.confdir), IMAP_STARTTLS="YES",
                       TLS_CERTFILE=str(pem), COURIERPY_STOP_GRACE="5")
        listener = ImapdListener([], env)
        with listener as port:
            idle = TlsClient(port)
            assert idle.imap("a1", "LOGIN erin erinpw")[-1] == b"a1 OK LOGIN Ok."
            busy = TlsClient(port)
            assert busy.imap("a1", "LOGIN erin erinpw")[-1] == b"a1 OK LOGIN Ok."
            busy.sock.sendall(f"a2 APPEND INBOX {{{len(message)}}}\r\n".encode())
            assert busy.line() == b"+ OK"
            busy.sock.sendall(message[:half])
            time.sleep(0.3)
            for n in (1, 2):
                os.kill(_session_pid(listener, n), signal.SIGTERM)
            assert idle.line() == BYE
            busy.sock.sendall(message[half:] + b"\r\n")
            assert re.fullmatch(rb"a2 OK \[APPENDUID \d+ 1\] APPEND Ok\.", busy.line())
            assert busy.line() == BYE
    stored = [p.read_bytes() for d in ("new", "cur") for p in (user.maildir / d).iterdir()]
    assert stored == [message]
    assert list((user.maildir / "tmp").iterdir()) == []
