"""Run Courier's couriertcpd and ours side by side on loopback ports.

A :class:`Tcpd` is one running instance (its stderr goes to a file); the
helpers connect from chosen 127.0.0.x source addresses and say what the
client saw: the program's output, an immediate close with nothing sent, or
no answer at all (the connection waits in the listen queue).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support import free_port, require

REAL = "/usr/sbin/couriertcpd"
OURS = str(Path(sys.executable).parent / "couriertcpd")
BASE_ENV = {"PATH": "/usr/bin:/bin", "ORACLE_MARK": "kept"}


def implementations() -> dict[str, str]:
    """``{"courier": path, "ours": path}``, skipping (failing under CI) if one is missing."""
    return {"courier": require(REAL), "ours": require(OURS, "pip install -e .")}


def _listening_ports() -> set[int]:
    """Local ports in LISTEN state (from /proc/net/tcp and tcp6)."""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A":
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            continue
    return ports


def wait_listening(port: int, proc: subprocess.Popen[bytes] | None, timeout: float = 10) -> None:
    """Wait until something listens on *port*, without connecting to it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"couriertcpd exited with {proc.returncode}")
        if port in _listening_ports():
            return
        time.sleep(0.02)
    raise AssertionError(f"nothing listens on {port}")


class Tcpd:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc, self.port, self.log_path = proc, port, log

    def log(self) -> list[str]:
        return self.log_path.read_text().splitlines()


@contextmanager
def running(exe: str, options: list[str], program: list[str], tmp: Path,
            portlist: str | None = None, env: dict[str, str] | None = None,
            port: int | None = None) -> Iterator[Tcpd]:
    """Run *exe*; *portlist* defaults to *port* (a free one if not given).

    When the port was picked here, another process on the machine may take it
    between the pick and the bind; the start is then retried on a new port.
    """
    tries = 1 if (port or portlist) else 3
    for attempt in range(tries):
        chosen = port or free_port()
        log = tmp / f"tcpd-{os.path.basename(exe)}-{chosen}.log"
        proc = subprocess.Popen(
            [exe, *options, portlist or str(chosen), *program],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(log, "wb"),
            env=env if env is not None else BASE_ENV, start_new_session=True, cwd=tmp,
        )
        try:
            wait_listening(chosen, proc)
            break
        except AssertionError:
            _kill(proc)
            if attempt == tries - 1:
                raise
    try:
        yield Tcpd(proc, chosen, log)
    finally:
        _kill(proc)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def connect(port: int, source: str = "127.0.0.1", host: str | None = None) -> socket.socket:
    family = socket.AF_INET6 if ":" in source else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.connect((host or ("::1" if family == socket.AF_INET6 else "127.0.0.1"), port))
    return s


def read_all(s: socket.socket, timeout: float = 5.0) -> bytes:
    s.settimeout(timeout)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk


def first_reply(s: socket.socket, timeout: float = 1.0) -> str:
    """``'closed'`` (EOF, nothing sent), ``'waiting'`` (no answer yet) or the text read."""
    s.settimeout(timeout)
    try:
        data = s.recv(100)
    except TimeoutError:
        return "waiting"
    except ConnectionResetError:
        return "closed"
    return data.decode() if data else "closed"


def env_lines(output: bytes) -> list[str]:
    """``env`` output, sorted, the ephemeral ports replaced."""
    out = []
    for line in output.decode().splitlines():
        name = line.split("=", 1)[0]
        if name in ("TCPREMOTEPORT", "TCPLOCALPORT"):
            line = f"{name}=<port>"
        out.append(line)
    return sorted(out)
