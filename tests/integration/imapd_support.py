"""Run our imapd on a loopback socket for tests (inetd style: socket = stdin/stdout).

``ImapdListener`` accepts connections in a thread and starts one
``.venv/bin/imapd`` per connection with the socket as fd 0 and 1; every
process is killed when the listener closes.  ``RawClient`` speaks raw bytes
with a timeout on every read.  ``start_fasttcpd`` runs our couriertcpd fast
path (courierpy.login.fasttcpd) on a port, ``children_of`` lists a process's
living children.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support import REPO

IMAPD = str(REPO / ".venv" / "bin" / "imapd")
_LITERAL = re.compile(rb"\{(\d+)\}$")


def base_env(**extra: str) -> dict[str, str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "IMAP_EMPTYTRASH": "",
        "COURIERPY_LOGIN_FAIL_DELAY": "0",
        "IMAP_MAILBOX_SANITY_CHECK": "0",
    }
    env.update(extra)
    return env


class ImapdListener:
    """``with ImapdListener(args, env, cwd) as port:`` — our imapd per connection."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path | None = None) -> None:
        self.args = args
        self.env = env
        self.cwd = cwd
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.procs: list[subprocess.Popen[bytes]] = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                p = subprocess.Popen([IMAPD, *self.args], stdin=conn.fileno(),
                                     stdout=conn.fileno(), stderr=subprocess.PIPE,
                                     env=self.env, cwd=self.cwd, start_new_session=True)
            self.procs.append(p)

    def __enter__(self) -> int:
        self._thread.start()
        return self.port

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self.sock.close()
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)
            if p.stderr:
                p.stderr.close()


class RawClient:
    """A raw IMAP client: send lines, read lines (literals inlined) with timeouts."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.timeout = timeout

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError(f"server closed; buffer {self.buf!r}")
        self.buf += chunk

    def line(self) -> bytes:
        out = b""
        while True:
            while b"\r\n" not in self.buf:
                self._fill()
            part, self.buf = self.buf.split(b"\r\n", 1)
            out += part
            m = _LITERAL.search(part)
            if not m:
                return out
            n = int(m.group(1))
            while len(self.buf) < n:
                self._fill()
            out += b"\r\n" + self.buf[:n]
            self.buf = self.buf[n:]

    def command(self, tag: str, text: str | bytes) -> list[bytes]:
        """Send ``tag text``; return every line up to and including the tagged one."""
        data = text.encode() if isinstance(text, str) else text
        self.send(tag.encode() + b" " + data + b"\r\n")
        lines = []
        while True:
            ln = self.line()
            lines.append(ln)
            if ln.startswith(tag.encode() + b" "):
                return lines

    def at_eof(self, wait: float = 5.0) -> bool:
        self.sock.settimeout(wait)
        deadline = time.monotonic() + wait
        try:
            while time.monotonic() < deadline:
                if not self.sock.recv(65536):
                    return True
        except ConnectionResetError:
            return True  # closed with our unread input pending
        except TimeoutError:
            return False
        return False


def shipped_keys() -> dict[str, str]:
    """The imapd keys of our shipped etc/courier/imapd (what the start-up script exports)."""
    from courierpy.config import read_shell_vars

    return {k: v for k, v in read_shell_vars(REPO / "etc" / "courier" / "imapd").items()
            if k.startswith(("IMAP_", "MAILDIRPATH"))}


def preauth_env(user: str = "user", **extra: str) -> dict[str, str]:
    """The environment a login stage hands over: the shipped keys, the account, *extra*."""
    return base_env(**{**shipped_keys(), "IMAP_EMPTYTRASH": "", "AUTHENTICATED": user,
                       "IMAP_MAILBOX_SANITY_CHECK": "0", **extra})


def make_maildir(path: Path) -> Path:
    for sub in ("", "tmp", "new", "cur"):
        (path / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def put_new(maildir: Path, message: bytes, n: int = 0) -> Path:
    now = time.time()
    base = f"{int(now)}.M{int(now % 1 * 1e6):06d}P{os.getpid()}_{n:04d}.test,S={len(message)}"
    tmp = maildir / "tmp" / base
    tmp.write_bytes(message)
    final = maildir / "new" / base
    os.rename(tmp, final)
    return final


class LineConn:
    """A line-at-a-time client on a connected socket: IMAP commands, POP3 lines, STARTTLS."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file = sock.makefile("rb")

    @classmethod
    def to(cls, port: int, tls: ssl.SSLContext | None = None) -> LineConn:
        sock = socket.create_connection(("127.0.0.1", port), timeout=15)
        return cls(tls.wrap_socket(sock) if tls is not None else sock)

    def line(self) -> bytes:
        ln = self.file.readline()
        if not ln:
            raise EOFError
        return ln.rstrip(b"\r\n")

    def imap(self, tag: str, text: str) -> list[bytes]:
        """Send ``tag text``; every line up to and including the tagged one."""
        self.sock.sendall(f"{tag} {text}\r\n".encode())
        out = [self.line()]
        while not out[-1].startswith(tag.encode() + b" "):
            out.append(self.line())
        return out

    def pop(self, text: str) -> bytes:
        self.sock.sendall(text.encode() + b"\r\n")
        return self.line()

    def starttls(self, ctx: ssl.SSLContext | None = None) -> None:
        """Wrap the connection in TLS (after the server's go-ahead); no verification by default."""
        if ctx is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        self.file.close()
        self.sock = ctx.wrap_socket(self.sock)
        self.file = self.sock.makefile("rb")

    def close(self) -> None:
        self.file.close()
        self.sock.close()



@dataclass
class Tcpd:
    """A running ``python -m courierpy.login.fasttcpd`` and the file its programs log to."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def kids(self) -> set[int]:
        return set(children_of(self.proc.pid))

    def log_lines(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


def children_of(pid: int) -> list[int]:
    """The living (not zombie) children of *pid*."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(entry))
    return out


def start_fasttcpd(confdir: Path, logdir: Path, program: list[str], *opts: str,
                   python: str = sys.executable, env_extra: dict[str, str] | None = None
                   ) -> Tcpd:
    """couriertcpd's fast path on a free loopback port running *program* ``Maildir``, as
    Courier's couriertcpd is run by hand: the config in COURIER_CONFDIR's files, the
    programs' log in ``logdir/tcpd-PORT.log``; returns once it accepts connections."""
    from tests.support import free_port

    port = free_port()
    log = logdir / f"tcpd-{port}.log"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "COURIER_CONFDIR": str(confdir),
           "COURIERPY_LOGIN_FAIL_DELAY": "0.1", "COURIERPY_LOGIN_FAIL_TABLE": "none",
           **(env_extra or {})}
    proc = subprocess.Popen(
        [python, "-m", "courierpy.login.fasttcpd", "-address=127.0.0.1", "-nodnslookup",
         "-noidentlookup", f"-stderr={log}", *opts, str(port), *program, "Maildir"],
        env=env, cwd=REPO, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return Tcpd(proc, port, log)
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError("fasttcpd did not start") from None
            time.sleep(0.05)
