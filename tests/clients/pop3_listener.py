"""A tiny inetd for tests: each accepted connection runs our pop3d on the socket.

    with Pop3Listener(instance) as port:
        poplib.POP3("127.0.0.1", port)

The child gets the socket as stdin/stdout and the TCP* variables couriertcpd
would set; it authenticates through the instance's authdaemond by itself.
Every child is waited for (killed after a grace time) when the block ends.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from pathlib import Path

from tests.instance import Instance
from tests.support import REPO

POP3D = str(REPO / ".venv" / "bin" / "pop3d")


class Pop3Listener:
    def __init__(self, instance: Instance, *, fail_delay: float = 0.2, **env: str) -> None:
        self.instance = instance
        self.env = instance.env(COURIERPY_LOGIN_FAIL_DELAY=str(fail_delay), **env)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)  # so that the accept thread notices the end quickly
        self.port = self.sock.getsockname()[1]
        self.children: list[subprocess.Popen[bytes]] = []
        self.log_path = Path(instance.root) / "pop3d.log"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, (ip, port) = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            env = dict(self.env, TCPREMOTEIP=ip, TCPREMOTEPORT=str(port),
                       TCPLOCALIP="127.0.0.1", TCPLOCALPORT=str(self.port))
            with conn, self.log_path.open("ab") as log:
                self.children.append(subprocess.Popen(
                    [POP3D, "--config-dir", str(self.instance.confdir), "Maildir"],
                    stdin=conn, stdout=conn, stderr=log, env=env, cwd="/"))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __enter__(self) -> int:
        self._thread.start()
        return self.port

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
        for child in self.children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def wait_children(listener: Pop3Listener, timeout: float = 10) -> None:
    """Wait until every session so far has ended (its deletions are on disk)."""
    for child in list(listener.children):
        child.wait(timeout=timeout)


__all__ = ["POP3D", "Pop3Listener", "wait_children", "os"]
