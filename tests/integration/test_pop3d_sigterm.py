"""pop3d and SIGTERM, with a real pop3d process (pre-authenticated over pipes, as
courierpop3login starts it): the session ends at once with nothing deleted, except
while QUIT is deleting, which finishes first (see courierpy/pop3/server.py)."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from pathlib import Path

from tests.support import REPO

POP3D = str(REPO / ".venv" / "bin" / "pop3d")


def make_maildir(home: Path, count: int) -> Path:
    md = home / "Maildir"
    for sub in ("tmp", "new", "cur"):
        (md / sub).mkdir(parents=True)
    for i in range(count):
        (md / "cur" / f"{1700000000 + i}.M{i}P1.host,S=12:2,").write_bytes(b"Subject: x\n\n")
    (md / "maildirsize").write_bytes(b"0S\n%12d %12d\n" % (12 * count, count))
    return md


def start(home: Path) -> subprocess.Popen[bytes]:
    env = {"PATH": "/usr/bin:/bin", "AUTHENTICATED": "erin", "TCPREMOTEIP": "127.0.0.1",
           "TCPREMOTEPORT": "1"}
    return subprocess.Popen([POP3D, "--config-dir", "/nonexistent", "Maildir"], cwd=home,
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def read_until(proc: subprocess.Popen[bytes], end: bytes, timeout: float = 60) -> bytes:
    assert proc.stdout is not None
    got = b""
    deadline = time.monotonic() + timeout
    while not got.endswith(end):
        ready, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
        assert ready, got[-200:]
        chunk = os.read(proc.stdout.fileno(), 65536)
        assert chunk, got[-200:]
        got += chunk
    return got


def test_sigterm_in_transaction_deletes_nothing(tmp_path: Path) -> None:
    md = make_maildir(tmp_path, 5)
    before = sorted(os.listdir(md / "cur"))
    proc = start(tmp_path)
    assert proc.stdin is not None
    proc.stdin.write(b"STAT\r\nDELE 1\r\nDELE 2\r\nRETR 3\r\n")
    proc.stdin.flush()
    read_until(proc, b"Subject: x\r\n\r\n.\r\n")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM  # as Courier's pop3d: killed by it
    assert err.decode().splitlines() == ["INFO: LOGIN, user=erin, ip=[127.0.0.1], port=[1]"]
    after = sorted(os.listdir(md / "cur"))
    assert [n.split(":")[0] for n in after] == [n.split(":")[0] for n in before]
    assert sum(n.endswith(":2,S") for n in after) == 1  # RETR's mark stays
    assert (md / "maildirsize").read_bytes().count(b"\n") == 2


def test_sigterm_while_idle_before_any_command(tmp_path: Path) -> None:
    make_maildir(tmp_path, 1)
    proc = start(tmp_path)
    read_until(proc, b"+OK logged in.\r\n")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM


def _quit_then_sigterm(home: Path, count: int) -> int:
    """DELE every message, QUIT, SIGTERM as soon as the first file (deleted first) is
    gone (the UPDATE state has begun); the number of files left at the signal."""
    md = make_maildir(home, count)
    first = md / "cur" / "1700000000.M0P1.host,S=12:2,"
    proc = start(home)
    assert proc.stdin is not None
    proc.stdin.write(b"".join(b"DELE %d\r\n" % i for i in range(1, count + 1)))
    proc.stdin.flush()
    got = read_until(proc, b"+OK Deleted.\r\n")
    while got.count(b"+OK Deleted.\r\n") < count:
        got += read_until(proc, b"+OK Deleted.\r\n")
    proc.stdin.write(b"QUIT\r\n")
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    while first.exists():
        assert time.monotonic() < deadline
    proc.send_signal(signal.SIGTERM)
    left_at_signal = len(os.listdir(md / "cur"))
    proc.communicate(timeout=60)
    assert os.listdir(md / "cur") == []
    size_lines = (md / "maildirsize").read_bytes().splitlines()
    assert size_lines[-1].split() == [b"%d" % (-12 * count), b"%d" % -count]
    return left_at_signal


def test_sigterm_during_quit_lets_the_deletions_finish(tmp_path: Path) -> None:
    # a test process held up right after seeing QUIT begin could signal too late: then
    # again with more to delete
    for attempt, count in enumerate((4000, 8000, 16000)):
        if _quit_then_sigterm(tmp_path / str(attempt), count) > 0:
            return
    raise AssertionError("the deletions always ended before the signal: nothing was tested")
