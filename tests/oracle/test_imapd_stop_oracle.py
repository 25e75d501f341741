"""SIGTERM to a pre-authenticated imapd session: Courier's /usr/bin/imapd and ours side by side.

Between commands and in IDLE both say ``* BYE Courier-IMAP server shut down by signal.`` and
log ``NOTICE: Disconnected during shutdown by signal, ...``.  Mid-APPEND Courier's says BYE at
once and the message is lost (its partial file stays in tmp/); ours stores and answers the
APPEND first (docs/differences.md, "Stopping the servers")."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.oracle.courier_imapd import IMAPD, courier_env
from tests.support import require

pytestmark = pytest.mark.oracle

OURS = str(Path(sys.executable).parent / "imapd")
BYE = b"* BYE Courier-IMAP server shut down by signal.\r\n"
GRACE = 3.0


class Session:
    def __init__(self, exe: str, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(Path(sys.executable).parent / "maildirmake"), str(home / "Maildir")],
                       check=True)
        self.home = home
        self.sock, theirs = socket.socketpair()
        env = courier_env(COURIERPY_STOP_GRACE=str(GRACE))
        self.proc = subprocess.Popen([exe, "Maildir"], cwd=home, env=env, stdin=theirs,
                                     stdout=theirs, stderr=subprocess.PIPE,
                                     start_new_session=True)
        theirs.close()
        self.sock.settimeout(15)
        self.buf = b""
        assert self.line().startswith(b"* PREAUTH")

    def line(self) -> bytes:
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError(self.buf)
            self.buf += data
        ln, self.buf = self.buf.split(b"\n", 1)
        return ln + b"\n"

    def command(self, tag: str, text: str) -> list[bytes]:
        self.sock.sendall(f"{tag} {text}\r\n".encode())
        out = [self.line()]
        while not out[-1].startswith(tag.encode() + b" "):
            out.append(self.line())
        return out

    def rest(self) -> bytes:
        """Everything until the server closes the connection."""
        out = self.buf
        while data := self.sock.recv(65536):
            out += data
        self.buf = b""
        return out

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def finish(self) -> str:
        self.sock.close()
        try:
            _, err = self.proc.communicate(timeout=15)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return err.decode()

    def files(self, sub: str) -> list[str]:
        return os.listdir(self.home / "Maildir" / sub)


def _notice(log: str) -> str:
    """The NOTICE line with its numbers blanked."""
    line = next(ln for ln in log.splitlines() if ln.startswith("NOTICE:"))
    return re.sub(r"=\d+", "=N", line)


def _both(tmp_path: Path) -> dict[str, tuple[str, Path]]:
    require(IMAPD, "the real Courier imapd is the oracle")
    out = {}
    for name, exe in (("courier", IMAPD), ("ours", OURS)):
        home = tmp_path / name
        home.mkdir()
        out[name] = (exe, home)
    return out


def test_sigterm_between_commands_and_in_idle(tmp_path: Path) -> None:
    results = {}
    for name, (exe, home) in _both(tmp_path).items():
        got = []
        for idle in (False, True):
            s = Session(exe, home / str(idle))
            assert s.command("a1", "NOOP")[-1].startswith(b"a1 OK")  # past start-up
            if idle:
                s.command("a2", "SELECT INBOX")
                s.sock.sendall(b"a3 IDLE\r\n")
                assert s.line().startswith(b"+ ")
            s.stop()
            got.append((s.rest(), _notice(s.finish())))
        results[name] = got
    assert results["ours"] == results["courier"]
    for bye, notice in results["ours"]:
        assert bye == BYE
        assert notice == ("NOTICE: Disconnected during shutdown by signal, user=user, "
                          "ip=[127.0.0.1], port=[0], headers=N, body=N, rcvd=N, sent=N, time=N")


def test_sigterm_mid_append(tmp_path: Path) -> None:
    message = b"Subject: stop\n\n" + b"".join(b"line %06d\n" % n for n in range(20000))
    half = len(message) // 2
    results = {}
    for name, (exe, home) in _both(tmp_path).items():
        s = Session(exe, home)
        s.sock.sendall(f"a1 APPEND INBOX {{{len(message)}}}\r\n".encode())
        assert s.line().startswith(b"+ ")
        s.sock.sendall(message[:half])
        time.sleep(0.3)
        s.stop()
        time.sleep(0.5)
        try:
            s.sock.sendall(message[half:] + b"\r\n")
        except OSError:  # Courier's may be gone already
            pass
        answer = s.rest()
        s.finish()
        stored = [(home / "Maildir" / d / f).read_bytes()
                  for d in ("new", "cur") for f in s.files(d)]
        results[name] = (answer, stored, len(s.files("tmp")))
    answer, stored, tmp_left = results["courier"]
    assert answer == BYE and stored == [] and tmp_left == 1  # Courier's loses the message
    answer, stored, tmp_left = results["ours"]
    assert re.fullmatch(rb"a1 OK \[APPENDUID \d+ 1\] APPEND Ok\.\r\n" + re.escape(BYE), answer)
    assert stored == [message] and tmp_left == 0


def test_sigterm_mid_append_stalled(tmp_path: Path) -> None:
    """Ours: the client does not send the rest within the grace period."""
    home = tmp_path / "ours"
    home.mkdir()
    s = Session(OURS, home)
    s.sock.sendall(b"a1 APPEND INBOX {100000}\r\n")
    assert s.line().startswith(b"+ ")
    s.sock.sendall(b"Subject: x\n\n" + b"y" * 5000)
    time.sleep(0.3)
    assert len(s.files("tmp")) == 1
    t0 = time.monotonic()
    s.stop()
    assert s.rest() == BYE
    assert time.monotonic() - t0 >= GRACE - 0.5
    s.finish()
    assert s.files("tmp") == s.files("new") == s.files("cur") == []
