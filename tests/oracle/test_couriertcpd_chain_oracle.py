"""Courier's own login stage and TLS wrapper run under OUR couriertcpd.

imaplogin reads the connection from fds 0/1 and TCPREMOTEIP/TCPREMOTEPORT from the
environment; its dialogue and its log lines must be the same under our couriertcpd
as under Courier's.  The implicit-TLS chain of Courier's imapd-ssl
(``couriertcpd ... couriertls -server -tcpd imaplogin imapd``) must work with a
certificate made by our mkimapdcert.
"""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from tests.oracle.tcpd_harness import implementations, read_all, running
from tests.support import require

pytestmark = pytest.mark.oracle

IMAPLOGIN = "/usr/lib/courier/courier/imaplogin"


def imapd_env() -> dict[str, str]:
    """The variables of the system's /etc/courier/imapd, as its start script exports them."""
    out = subprocess.run(["sh", "-c", "set -a; . /etc/courier/imapd; env -0"],
                         capture_output=True, env={"PATH": "/usr/bin:/bin"}, check=True).stdout
    env = dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
    env.pop("PWD", None)
    env.pop("SHLVL", None)
    return env


def test_imaplogin_under_our_couriertcpd(tmp_path: Path) -> None:
    require(IMAPLOGIN)
    imapd = require("/usr/bin/imapd")
    require("/etc/courier/imapd")
    results = {}
    for name, exe in implementations().items():
        with running(exe, ["-nodnslookup", "-noidentlookup"], [IMAPLOGIN, imapd, "Maildir"],
                     tmp_path, env=imapd_env()) as t:
            s = socket.create_connection(("127.0.0.1", t.port), timeout=10)
            s.sendall(b"a1 CAPABILITY\r\na2 LOGOUT\r\n")
            dialogue = read_all(s, 10)
            s.close()
            log = [re.sub(r"port=\[\d+\]", "port=[N]", line) for line in t.log()]
        results[name] = (dialogue, log)
    assert results["ours"] == results["courier"]
    assert results["ours"][1][0] == "DEBUG: Connection, ip=[::ffff:127.0.0.1], port=[N]"


def test_couriertls_implicit_tls_with_our_certificate(tmp_path: Path) -> None:
    couriertls = require("/usr/bin/couriertls")
    require(IMAPLOGIN)
    imapd = require("/usr/bin/imapd")
    ours = implementations()["ours"]
    mkcert = str(Path(sys.executable).parent / "mkimapdcert")
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "imapd.cnf").write_text('cn = "localhost"\norganization = "Test"\n')
    subprocess.run([mkcert, "--config-dir", str(conf), str(tmp_path / "imapd")], check=True,
                   env={"BITS": "medium", "PATH": "/usr/bin:/bin"}, timeout=60)
    env = {**imapd_env(), "IMAP_TLS": "1", "TLS_CERTFILE": str(tmp_path / "imapd.pem"),
           "TLS_VERIFYPEER": "NONE", "TLS_PROTOCOL": "TLS1_2PLUS"}
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with running(ours, ["-nodnslookup", "-noidentlookup"],
                 [couriertls, "-server", "-tcpd", IMAPLOGIN, imapd, "Maildir"],
                 tmp_path, env=env) as t:
        with socket.create_connection(("127.0.0.1", t.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                greeting = tls.recv(1024)
                version = tls.version()
                tls.sendall(b"a1 LOGOUT\r\n")
                rest = b""
                while b"a1 OK" not in rest:
                    chunk = tls.recv(1024)
                    if not chunk:
                        break
                    rest += chunk
    assert greeting.startswith(b"* OK [CAPABILITY IMAP4rev1")
    assert version in ("TLSv1.2", "TLSv1.3")
    assert b"a1 OK LOGOUT completed" in rest
