"""bin/imapd, bin/imapd-ssl, bin/pop3d, bin/pop3d-ssl on real ports: our couriertcpd, our login
stage (imaplogin / courierpop3login), our session programs and our authdaemond.

Covers issue 7's "Done when": TLS 1.2 and 1.3 on the implicit and STARTTLS/STLS ports (Python
ssl and openssl s_client), IMAP_TLS_REQUIRED, a bad certificate refused at start, failed
logins logged in Courier's format and delayed (more when they repeat), the session process
running as the account (from /proc), disableimap, and a clean stop."""

from __future__ import annotations

import base64
import os
import re
import select
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.instance import Instance, deliver
from tests.integration.imapd_support import LineConn
from tests.support import REPO, free_port, require

BIN = REPO / "bin"
VMAIL = 5000


#: the stop grace period the site's servers get (COURIERPY_STOP_GRACE, seconds)
GRACE = 4.0


@dataclass
class Site:
    inst: Instance
    ports: dict[str, int]
    log: Path
    env: dict[str, str]
    rundir: Path

    def service(self, name: str, action: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / name), "--config-dir", str(self.inst.confdir), action],
                              env=self.env, capture_output=True, text=True, timeout=30)

    def log_lines(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


def _cert(path: Path) -> None:
    openssl = require("openssl")
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", str(path), "-out", str(path) + ".crt"],
                   check=True, capture_output=True)
    with path.open("a") as f:
        f.write(Path(str(path) + ".crt").read_text())


def _wait(port: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


@pytest.fixture
def site(instance: Instance, tmp_path: Path) -> Iterator[Site]:
    require("openssl")
    instance.add_user("erin", "erinpw")
    instance.add_user("dave", "davepw", options="disableimap=1")
    deliver(instance.users["erin"].maildir, b"Subject: hi\n\nhello\n")
    instance.make_userdb()
    cert = instance.confdir / "server.pem"
    _cert(cert)
    ports = {name: free_port() for name in ("imap", "imaps", "pop3", "pop3s")}
    run = tmp_path / "run"
    common = dict(ADDRESS="127.0.0.1", SSLADDRESS="127.0.0.1", TLS_CERTFILE=str(cert),
                  TLS_CACHEFILE="", IMAPACCESSFILE=str(tmp_path / "imapaccess"))
    instance.set_config("imapd", PORT=str(ports["imap"]), PIDFILE=str(run / "imapd.pid"),
                        IMAP_EMPTYTRASH="")
    instance.set_config("imapd-ssl", SSLPORT=str(ports["imaps"]),
                        SSLPIDFILE=str(run / "imapd-ssl.pid"), IMAPDSTARTTLS="YES", **common)
    instance.set_config("pop3d", PORT=str(ports["pop3"]), PIDFILE=str(run / "pop3d.pid"))
    instance.set_config("pop3d-ssl", SSLPORT=str(ports["pop3s"]),
                        SSLPIDFILE=str(run / "pop3d-ssl.pid"), POP3_STARTTLS="YES", **common)
    log = tmp_path / "servers.log"
    env = dict(os.environ, COURIERPY_LOGFILE=str(log), COURIERPY_LOGIN_FAIL_DELAY="0.3",
               COURIERPY_LOGIN_FAIL_GROWTH="0.6", COURIERPY_LOGIN_FAIL_MAX="2",
               COURIERPY_STOP_GRACE=str(GRACE))
    s = Site(instance, ports, log, env, run)
    with instance.start_authdaemond():
        started = []
        try:
            for name, port in (("imapd", "imap"), ("imapd-ssl", "imaps"), ("pop3d", "pop3"),
                               ("pop3d-ssl", "pop3s")):
                r = s.service(name, "start")
                assert r.returncode == 0, r.stderr
                started.append(name)
                _wait(ports[port])
            yield s
        finally:
            for name in started:
                s.service(name, "stop")


def _ctx(version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


Conn = LineConn.to


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_imap_tls_implicit_and_starttls(site: Site, version: ssl.TLSVersion) -> None:
    c = Conn(site.ports["imaps"], _ctx(version))
    assert c.sock.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
    assert b"AUTH=PLAIN" in c.line() and True
    assert c.imap("a1", "LOGIN erin erinpw")[-1] == b"a1 OK LOGIN Ok."
    assert c.imap("a2", "SELECT INBOX")[-1].startswith(b"a2 OK")
    assert b"hello" in c.imap("a3", "FETCH 1 BODY[]")
    assert c.imap("a4", "LOGOUT")[-1] == b"a4 OK LOGOUT completed"
    c.close()
    c = Conn(site.ports["imap"])
    assert b" STARTTLS " in c.line()
    assert c.imap("b1", "STARTTLS") == [b"b1 OK Begin SSL/TLS negotiation now."]
    c.starttls(_ctx(version))
    caps = c.imap("b2", "CAPABILITY")
    assert b"STARTTLS" not in caps[0] and b"AUTH=PLAIN" in caps[0]
    assert c.imap("b3", "LOGIN erin erinpw")[-1] == b"b3 OK LOGIN Ok."
    assert c.imap("b4", "SELECT INBOX")[-1].startswith(b"b4 OK")
    assert c.imap("b5", "LOGOUT")[-1] == b"b5 OK LOGOUT completed"
    c.close()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_pop3_tls_implicit_and_stls(site: Site, version: ssl.TLSVersion) -> None:
    c = Conn(site.ports["pop3s"], _ctx(version))
    assert c.line() == b"+OK Hello there."
    assert c.pop("USER erin") == b"+OK Password required."
    assert c.pop("PASS erinpw") == b"+OK logged in."
    assert c.pop("STAT") == b"+OK 1 22"
    assert c.pop("QUIT") == b"+OK Bye-bye."
    c.close()
    c = Conn(site.ports["pop3"])
    c.line()
    assert c.pop("STLS") == b"+OK Begin SSL/TLS negotiation now."
    c.starttls(_ctx(version))
    assert c.pop("USER erin") == b"+OK Password required."
    assert c.pop("PASS erinpw") == b"+OK logged in."
    assert c.pop("STAT") == b"+OK 1 22"
    assert c.pop("QUIT") == b"+OK Bye-bye."
    c.close()


@pytest.mark.parametrize("flag", ["-tls1_2", "-tls1_3"])
def test_openssl_s_client(site: Site, flag: str) -> None:
    openssl = require("openssl")
    for port, extra, line, want in (
            (site.ports["imaps"], [], b"a1 LOGIN erin erinpw\n", b"a1 OK LOGIN Ok."),
            (site.ports["imap"], ["-starttls", "imap"], b"a1 LOGIN erin erinpw\n",
             b"a1 OK LOGIN Ok."),
            (site.ports["pop3s"], [], b"USER erin\n", b"+OK Password required."),
            (site.ports["pop3"], ["-starttls", "pop3"], b"USER erin\n",
             b"+OK Password required.")):
        p = subprocess.Popen([openssl, "s_client", "-connect", f"127.0.0.1:{port}", flag,
                              "-crlf", "-quiet", *extra], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert p.stdin is not None and p.stdout is not None
            time.sleep(0.3)  # the handshake (and STARTTLS) first, then the command
            p.stdin.write(line)
            p.stdin.flush()
            got = b""
            deadline = time.monotonic() + 15
            while want not in got and time.monotonic() < deadline:
                if select.select([p.stdout], [], [], 0.2)[0]:
                    chunk = os.read(p.stdout.fileno(), 4096)
                    if not chunk:
                        break
                    got += chunk
            assert want in got, (port, got)
        finally:
            p.kill()
            p.communicate()
        protocol = {"-tls1_2": b"TLSv1.2", "-tls1_3": b"TLSv1.3"}[flag]
        assert protocol in subprocess.run(
            [openssl, "s_client", "-connect", f"127.0.0.1:{port}", flag, "-brief", *extra],
            input=b"", capture_output=True, timeout=20).stderr


def test_tls_required(site: Site) -> None:
    site.service("imapd", "stop")
    site.service("pop3d", "stop")
    site.inst.set_config("imapd-ssl", IMAP_TLS_REQUIRED="1")
    site.inst.set_config("pop3d-ssl", POP3_TLS_REQUIRED="1")
    assert site.service("imapd", "start").returncode == 0
    assert site.service("pop3d", "start").returncode == 0
    _wait(site.ports["imap"])
    _wait(site.ports["pop3"])
    c = Conn(site.ports["imap"])
    assert b"STARTTLS LOGINDISABLED" in c.line()
    assert b"LOGINDISABLED" in c.imap("a1", "CAPABILITY")[0]
    assert c.imap("a2", "LOGIN erin erinpw") == [b"a2 NO STARTTLS required"]
    ir = base64.b64encode(b"\0erin\0erinpw").decode()
    assert c.imap("a3", f"AUTHENTICATE PLAIN {ir}") == [b"a3 NO STARTTLS required"]
    c.imap("a4", "STARTTLS")
    c.starttls(_ctx())
    assert b"LOGINDISABLED" not in c.imap("a5", "CAPABILITY")[0]
    assert c.imap("a6", "LOGIN erin erinpw")[-1] == b"a6 OK LOGIN Ok."
    c.close()
    c = Conn(site.ports["pop3"])
    c.line()
    assert c.pop("USER erin").startswith(b"-ERR")
    assert c.pop("STLS") == b"+OK Begin SSL/TLS negotiation now."
    c.starttls(_ctx())
    assert c.pop("USER erin") == b"+OK Password required."
    assert c.pop("PASS erinpw") == b"+OK logged in."
    c.close()


def test_bad_certificate_fails_at_start(site: Site) -> None:
    site.service("imapd-ssl", "stop")
    bad = site.inst.confdir / "bad.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    site.inst.set_config("imapd-ssl", TLS_CERTFILE=str(bad))
    r = site.service("imapd-ssl", "start")
    assert r.returncode == 78
    assert "imapd-ssl: cannot start" in r.stderr and str(bad) in r.stderr
    site.inst.set_config("imapd-ssl", TLS_CERTFILE=str(site.inst.confdir / "missing.pem"))
    r = site.service("imapd-ssl", "start")
    assert r.returncode == 78 and "missing.pem" in r.stderr
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", site.ports["imaps"]), timeout=1)


FAIL2BAN = re.compile(r"^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ (?:pop3d|imapd)(?:-ssl)?(?:\[\d+\])?: "
                      r"LOGIN FAILED, (?:user|method)=.*, ip=\[(?P<host>[^\]]+)\]"
                      r"(?:, port=\[\d+\])?$")


def test_failed_logins_logged_and_delayed(site: Site) -> None:
    from courierpy.login.syslogger import split_level

    times = []
    for _ in range(3):
        c = Conn(site.ports["imap"])
        c.line()
        t0 = time.monotonic()
        assert c.imap("a1", "LOGIN erin wrong") == [b"a1 NO Login failed."]
        times.append(time.monotonic() - t0)
        c.close()
    # base 0.3 s; then + 0.6, + 1.2 (growth doubling, per address and account)
    assert 0.3 <= times[0] < 0.8
    assert times[1] >= 0.85 and times[2] >= 1.45, times
    c = Conn(site.ports["pop3"])
    c.line()
    c.pop("USER nosuch")
    t0 = time.monotonic()
    assert c.pop("PASS x") == b"-ERR Login failed."
    assert time.monotonic() - t0 >= 2.0  # the address keeps failing: capped extra 2 s
    c.close()
    time.sleep(0.2)
    lines = [ln for ln in site.log_lines() if "LOGIN FAILED" in ln]
    assert "INFO: LOGIN FAILED, user=erin, ip=[::ffff:127.0.0.1], port=[" in lines[0]
    assert any("user=nosuch" in ln for ln in lines)
    for ln in lines:
        _, text = split_level(ln)
        syslog_line = f"Nov 25 17:00:00 mailhost imapd: {text}"
        m = FAIL2BAN.match(syslog_line)
        assert m and m.group("host") == "::ffff:127.0.0.1", syslog_line
    table = (site.inst.authdaemonvar / "loginfailures").read_text()
    assert "ip:::ffff:127.0.0.1\t" in table and "user:erin\t" in table


def test_disableimap_refused(site: Site) -> None:
    c = Conn(site.ports["imap"])
    c.line()
    assert c.imap("a1", "LOGIN dave davepw") == [b"a1 OK LOGIN Ok."]
    assert c.line() == b"* BYE IMAP access disabled for this account."
    with pytest.raises(EOFError):
        c.line()
    c.close()


def _gone(pid: int) -> bool:
    try:  # gone, or a zombie nobody reaps (pid 1 of a container may not)
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1] == "Z"
    except FileNotFoundError:
        return True


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def test_stop_and_restart(site: Site) -> None:
    pidfile = site.rundir / "imapd.pid"
    pid = int(pidfile.read_text().split()[0])
    assert site.service("imapd", "restart").returncode == 0  # stop, then start afresh
    new_pid = int(pidfile.read_text().split()[0])
    assert new_pid != pid and _gone(pid)
    c = Conn(site.ports["imap"])
    assert c.line().startswith(b"* OK")
    c.close()
    assert site.service("imapd", "stop").returncode == 0
    assert _gone(new_pid)
    assert not pidfile.exists()  # removed by the listener on its way out
    assert _refused(site.ports["imap"])
    assert site.service("imapd", "stop").returncode == 0  # not running: nothing to do


def _login(site: Site, port: str = "imap", tls: ssl.SSLContext | None = None) -> Conn:
    c = Conn(site.ports[port], tls)
    c.line()
    assert c.imap("a1", "LOGIN erin erinpw")[-1] == b"a1 OK LOGIN Ok."
    return c


def _stop_in_background(site: Site, name: str = "imapd") -> subprocess.Popen[str]:
    """``bin/imapd stop`` (it returns when the listener has ended), and wait until it has
    stopped listening: the sessions have had their SIGTERM then."""
    p = subprocess.Popen([str(BIN / name), "--config-dir", str(site.inst.confdir), "stop"],
                         env=site.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    port = {"imapd": "imap", "imapd-ssl": "imaps"}[name]
    deadline = time.monotonic() + 15
    while not _refused(site.ports[port]):
        assert time.monotonic() < deadline, "still listening"
        time.sleep(0.02)
    time.sleep(0.2)  # the signal is sent right after the sockets close
    return p


def _finished(p: subprocess.Popen[str]) -> int:
    _, err = p.communicate(timeout=GRACE + 20)
    assert p.returncode == 0, err
    return p.returncode


BYE = b"* BYE Courier-IMAP server shut down by signal."


def _maildir_files(site: Site) -> dict[str, list[str]]:
    md = site.inst.users["erin"].maildir
    return {d: sorted(os.listdir(md / d)) for d in ("tmp", "new", "cur")}


def _message(size: int) -> bytes:
    lines = []
    n = 0
    while sum(len(x) for x in lines) < size:
        lines.append(f"line {n:07d} {'x' * (n % 61)}\n".encode())
        n += 1
    return b"Subject: big\n\n" + b"".join(lines)


def _append_started(site: Site, size: int) -> tuple[LineConn, dict[str, list[str]], bytes]:
    """A logged-in session that began an APPEND of *size* bytes (nothing of it sent yet);
    the Maildir's files before, and the message."""
    c = _login(site)
    before = _maildir_files(site)
    msg = _message(size)
    c.sock.sendall(f"a2 APPEND INBOX {{{len(msg)}}}\r\n".encode())
    assert c.line() == b"+ OK"
    return c, before, msg


def test_stop_lets_an_append_in_progress_finish(site: Site) -> None:
    c, before, msg = _append_started(site, 400_000)
    half = len(msg) // 2
    c.sock.sendall(msg[:half])
    stopper = _stop_in_background(site)
    assert stopper.poll() is None  # waiting for the session
    c.sock.sendall(msg[half:] + b"\r\n")
    answer = c.line()
    assert re.fullmatch(rb"a2 OK \[APPENDUID \d+ \d+\] APPEND Ok\.", answer), answer
    assert c.line() == BYE
    with pytest.raises(EOFError):
        c.line()
    c.close()
    _finished(stopper)
    after = _maildir_files(site)
    assert after["tmp"] == []
    known = {f.split(":")[0] for f in before["new"] + before["cur"]}
    added = [f for f in after["new"] + after["cur"] if f.split(":")[0] not in known]
    assert len(added) == 1
    md = site.inst.users["erin"].maildir
    stored = next(p for d in ("new", "cur") if (p := md / d / added[0]).exists())
    assert stored.read_bytes() == msg
    assert any("NOTICE: Disconnected during shutdown by signal, user=erin" in ln
               for ln in site.log_lines()), site.log_lines()


def test_stop_says_bye_to_idle_sessions(site: Site) -> None:
    between = _login(site)
    idling = _login(site)
    assert idling.imap("a2", "SELECT INBOX")[-1].startswith(b"a2 OK")
    idling.sock.sendall(b"a3 IDLE\r\n")
    assert idling.line() == b"+ entering idle mode"
    tls = _login(site, "imaps", _ctx())  # through the TLS relay process
    t0 = time.monotonic()
    stopper = _stop_in_background(site)
    stopper_ssl = _stop_in_background(site, "imapd-ssl")
    for c in (between, idling, tls):
        assert c.line() == BYE
        with pytest.raises(EOFError):
            c.line()
        c.close()
    _finished(stopper)
    _finished(stopper_ssl)
    assert time.monotonic() - t0 < GRACE  # not held up by the grace period


def test_stop_drops_a_stalled_append(site: Site) -> None:
    c, before, msg = _append_started(site, 100_000)
    c.sock.sendall(msg[:1000])
    time.sleep(0.2)
    assert len(_maildir_files(site)["tmp"]) == 1  # the upload being written
    stopper = _stop_in_background(site)
    t0 = time.monotonic()
    assert c.line() == BYE  # after the grace period, the command unanswered
    assert time.monotonic() - t0 >= GRACE - 1
    with pytest.raises(EOFError):
        c.line()
    c.close()
    _finished(stopper)
    after = _maildir_files(site)  # nothing half-written, tmp/ cleaned
    assert after["tmp"] == []
    assert ({f.split(":")[0] for f in after["new"] + after["cur"]}
            == {f.split(":")[0] for f in before["new"] + before["cur"]})


def test_restart_with_sessions_open(site: Site) -> None:
    old = _login(site)
    assert old.imap("a2", "SELECT INBOX")[-1].startswith(b"a2 OK")
    r = site.service("imapd", "restart")
    assert r.returncode == 0, r.stderr
    assert old.line() == BYE
    old.close()
    _wait(site.ports["imap"])
    c = _login(site)
    assert c.imap("a2", "SELECT INBOX")[-1].startswith(b"a2 OK")
    assert c.imap("a3", "LOGOUT")[-1] == b"a3 OK LOGOUT completed"
    c.close()


def test_start_switch_off(site: Site) -> None:
    site.service("pop3d", "stop")
    site.inst.set_config("pop3d", POP3DSTART="NO")
    assert site.service("pop3d", "start").returncode == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", site.ports["pop3"]), timeout=1)
