"""Processes kept for the next connection: the fast path's answer to a fork per connection.

Forking a loaded CPython interpreter costs milliseconds of kernel time (page
tables, then a copy of each page its reference counts touch), several times
what Courier's C processes cost.  So courierpy.login.fasttcpd keeps the
processes it forks, as Dovecot does:

- **login workers** run as the server (root), one connection's login stage at
  a time: the greeting, CAPABILITY, STARTTLS, LOGIN/AUTHENTICATE through
  authdaemond.  When a plain-text login succeeds they pass the connection, with
  the session's environment and account (a :class:`~courierpy.login.handoff.Handover`),
  back to couriertcpd and are ready for the next connection.
- **session workers** have become one account's uid/gid (with no supplementary
  groups, as Courier's login stage leaves it) and serve sessions of accounts
  with those ids only, one at a time; as the exec'd program would, each session
  starts with the account's environment, home as cwd and umask.

couriertcpd owns the bookkeeping (:class:`Pool`): which worker is idle, which
holds which connection (a connection's ``-maxprocs``/``-maxperip`` slot is
given back when its last holder says it ended, or dies).  A worker that was
idle for :data:`IDLE_LIFETIME` seconds (``COURIERPY_WORKER_IDLE``), that served
:data:`MAX_JOBS` jobs, or whose job left it with more open descriptors or much
more memory than its first one (:class:`Usage`), ends.

What stays a process per connection, as before: the implicit-TLS ports (not
served by workers at all), a session after STARTTLS (the login stage holds the
TLS state, so its login worker becomes the account and relays, see
courierpy.login.handoff, and ends with the session), and a session program
that is not ours (exec'd by the login worker).

The two sides talk over a ``SOCK_SEQPACKET`` socket pair: one JSON object per
message, with the connection's descriptor attached where it moves.  couriertcpd
reads only the two small messages below from a worker, never objects, and takes a
hand-off only from a login worker (a session worker runs as an account).

couriertcpd → worker: ``{"job": "login", "conn": N, "env": {...}}`` + fd,
``{"job": "session", "conn": N, "hand": {...}}`` + fd; the pair closed: end.
worker → couriertcpd: ``{"handoff": N, "key": K, "hand": {...}}`` + fd (a login
succeeded: route the session), ``{"end": N, "held": bool, "last": bool}`` (the
job is over; *held*: the connection ended with it; *last*: the worker ends too).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["IDLE_LIFETIME", "LOGIN", "MAX_JOBS", "SAME", "Pool", "Usage", "WorkerRef",
           "account_key", "identity", "idle_lifetime", "receive", "send"]

#: the pool of login workers
LOGIN = "login"
#: sessions that keep the login stage's ids (no uid given, or couriertcpd is not root)
SAME = "same"
#: seconds an idle worker is kept (``COURIERPY_WORKER_IDLE`` in couriertcpd's environment)
IDLE_LIFETIME = 60.0
#: jobs a worker serves before it ends (bounds what one process can accumulate)
MAX_JOBS = 1000
#: the largest message (a whole environment fits many times over)
_MAX_MESSAGE = 1 << 20


def idle_lifetime(environ: Mapping[str, str]) -> float:
    """``COURIERPY_WORKER_IDLE`` seconds, or :data:`IDLE_LIFETIME`."""
    try:
        return max(0.0, float(environ.get("COURIERPY_WORKER_IDLE") or IDLE_LIFETIME))
    except ValueError:
        return IDLE_LIFETIME


def account_key(uid: int | None, gid: int) -> str | None:
    """The pool of the sessions of an account with these ids, as a login stage of this
    process would enter it; None when it cannot be entered from here."""
    if uid is None:
        return SAME
    if os.geteuid() == 0:
        return f"{uid}:{gid}"
    return SAME if uid == os.geteuid() else None


def identity() -> tuple[object, ...]:
    """This process's ids and groups (a login worker must end its job with them unchanged)."""
    return os.getresuid(), os.getresgid(), tuple(sorted(os.getgroups()))


@dataclass(frozen=True)
class Usage:
    """Open descriptors and resident memory of this process, between two jobs."""

    fds: int
    rss: int

    #: bytes of memory a worker may have grown by since its first job before it ends
    SLACK = 64 << 20

    @classmethod
    def now(cls) -> Usage:
        try:
            fds = len(os.listdir("/proc/self/fd"))
            with open("/proc/self/statm", "rb") as f:
                rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return cls(0, 0)
        return cls(fds, rss)

    def outgrew(self, first: Usage) -> bool:
        """True when a job left descriptors open or memory held: the worker should end
        rather than carry them into the next ones."""
        return self.fds > first.fds or self.rss > first.rss + self.SLACK


def send(sock: socket.socket, message: dict[str, object], fd: int | None = None) -> None:
    data = json.dumps(message, separators=(",", ":")).encode()
    if fd is None:
        sock.send(data)
    else:
        socket.send_fds(sock, [data], [fd])


def receive(sock: socket.socket) -> tuple[dict[str, object], int | None] | None:
    """The next message and the descriptor that came with it; None at end of file;
    :class:`ValueError` for anything but a JSON object."""
    data, fds, _flags, _addr = socket.recv_fds(sock, _MAX_MESSAGE, 1)
    if not data:
        for fd in fds:
            os.close(fd)
        return None
    try:
        message = json.loads(data)
    except RecursionError:
        message = None
    if not isinstance(message, dict):
        for fd in fds:
            os.close(fd)
        raise ValueError("not a message")
    return message, (fds[0] if fds else None)


@dataclass
class WorkerRef:
    """couriertcpd's view of one worker."""

    pid: int
    sock: socket.socket
    key: str
    #: the connection it serves, if any
    conn: int | None = None
    idle_since: float = 0.0
    #: it said its job was its last (or its pair failed): no more jobs
    ending: bool = False


@dataclass
class Pool:
    """Which workers exist, which are idle, which connection each holds.

    *fork* starts a worker of a key with a first job (the message and the
    descriptor) and returns it; *release* gives back the slot of a remote
    address.  Every descriptor passed in is closed here.
    """

    fork: Callable[[str, dict[str, object], int], WorkerRef | None]
    release: Callable[[str], None]
    idle_lifetime: float = IDLE_LIFETIME
    workers: dict[int, WorkerRef] = field(default_factory=dict)
    by_fd: dict[int, WorkerRef] = field(default_factory=dict)
    idle: dict[str, list[WorkerRef]] = field(default_factory=dict)
    #: connection number → remote address
    conns: dict[int, str] = field(default_factory=dict)
    _next: int = 0

    # -- jobs --------------------------------------------------------------------------

    def start_login(self, fd: int, env: dict[str, str], remote_ip: str) -> None:
        """A new connection (its slot taken): a login worker gets it."""
        self._next += 1
        conn = self._next
        self.conns[conn] = remote_ip
        self._give(LOGIN, {"job": "login", "conn": conn, "env": env}, fd, conn)

    def _give(self, key: str, message: dict[str, object], fd: int, conn: int) -> None:
        try:
            idle = self.idle.get(key, [])
            while idle:
                w = idle.pop()  # the most recently used: its pages are likeliest in memory
                try:
                    send(w.sock, message, fd)
                except OSError:
                    self._lost(w)
                    continue
                w.conn = conn
                return
            w = self.fork(key, message, fd)
            if w is None:
                self._drop(conn)
                return
            w.conn = conn
            self.workers[w.pid] = w
            self.by_fd[w.sock.fileno()] = w
        finally:
            os.close(fd)

    # -- what the workers say ------------------------------------------------------------

    def readable(self, fds: list[int]) -> None:
        """Take a message from each worker of *fds*: the ends of jobs first (a worker
        that just became free is then used rather than a new one forked), then the rest."""
        got: list[tuple[WorkerRef, dict[str, object], int | None]] = []
        for fd in fds:
            w = self.by_fd.get(fd)
            if w is None:
                continue
            try:
                one = receive(w.sock)
            except (OSError, ValueError):
                one = None
            if one is None:  # it is ending (reaped later)
                self._lost(w)
                continue
            got.append((w, *one))
        got.sort(key=lambda item: "end" not in item[1])
        for w, message, passed in got:
            self._message(w, message, passed)

    def _message(self, w: WorkerRef, message: dict[str, object], passed: int | None) -> None:
        if "handoff" in message and w.key != LOGIN:
            # only a login worker (running as couriertcpd) may say who a connection is:
            # a session worker that tries is not trusted with another job
            if passed is not None:
                os.close(passed)
            self._lost(w)
            return
        if "handoff" in message and passed is not None:
            conn, w.conn = w.conn, None
            if conn is None or not isinstance(message.get("key"), str):
                os.close(passed)
                if conn is not None:
                    self._drop(conn)
                return
            self._give(str(message["key"]), {"job": "session", "conn": conn,
                                             "hand": message.get("hand")}, passed, conn)
            return
        if passed is not None:
            os.close(passed)
        if "end" in message:
            if message.get("held") and w.conn is not None:
                self._drop(w.conn)
            w.conn = None
            if message.get("last") or w.ending:
                self._lost(w)
            else:
                w.idle_since = time.monotonic()
                self.idle.setdefault(w.key, []).append(w)

    def _drop(self, conn: int) -> None:
        ip = self.conns.pop(conn, None)
        if ip is not None:
            self.release(ip)

    def _lost(self, w: WorkerRef) -> None:
        """No more jobs for *w*: close its pair (an idle worker then ends)."""
        w.ending = True
        idle = self.idle.get(w.key, [])
        if w in idle:
            idle.remove(w)
        if w.sock.fileno() >= 0:
            self.by_fd.pop(w.sock.fileno(), None)
            w.sock.close()

    # -- the processes -------------------------------------------------------------------

    def ended(self, pid: int) -> bool:
        """Process *pid* was reaped; False when it was not a worker."""
        w = self.workers.pop(pid, None)
        if w is None:
            return False
        self._lost(w)
        if w.conn is not None:
            self._drop(w.conn)
            w.conn = None
        return True

    def retire_idle(self, now: float) -> None:
        for idle in self.idle.values():
            for w in [w for w in idle if now - w.idle_since >= self.idle_lifetime]:
                self._lost(w)

    def close_all(self) -> None:
        """Stopping: every worker ends after its job."""
        for w in list(self.workers.values()):
            self._lost(w)

    def pids(self) -> list[int]:
        return list(self.workers)

    def fds(self) -> set[int]:
        return set(self.by_fd)
