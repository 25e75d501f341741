"""couriertcpd's bookkeeping of its kept processes (courierpy.login.workers.Pool).

The workers here are the far ends of real socket pairs, driven by the test as a
worker would talk; the connections are real sockets.  What is checked: who gets
a connection, when a slot is given back, and that a session worker (running as
an account) cannot route a connection anywhere.
"""

from __future__ import annotations

import os
import socket

import pytest

from courierpy.login import workers
from courierpy.login.workers import LOGIN, Pool, WorkerRef


class Harness:
    def __init__(self) -> None:
        self.released: list[str] = []
        self.forked: list[tuple[str, dict[str, object]]] = []
        #: pid → the worker's own end of its pair
        self.far: dict[int, socket.socket] = {}
        self.pool = Pool(fork=self.fork, release=self.released.append, idle_lifetime=5.0)
        self._pid = 1000
        #: the client ends of the connections
        self.open: list[socket.socket] = []

    def fork(self, key: str, message: dict[str, object], fd: int) -> WorkerRef:
        self._pid += 1
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.forked.append((key, message))
        self.far[self._pid] = theirs
        return WorkerRef(self._pid, mine, key)

    def worker(self, key: str) -> WorkerRef:
        return next(w for w in self.pool.workers.values() if w.key == key and not w.ending)

    def say(self, w: WorkerRef, message: dict[str, object], fd: int | None = None) -> None:
        workers.send(self.far[w.pid], message, fd)
        self.pool.readable([w.sock.fileno()])

    def connect(self, ip: str, env: dict[str, str] | None = None) -> None:
        """A client connects (its slot taken): couriertcpd gives it to a login worker."""
        fd, client = _connection()
        self.open.append(client)
        self.pool.start_login(fd, env or {}, ip)

    def job(self, w: WorkerRef) -> dict[str, object]:
        """The job *w* was sent (its descriptor closed)."""
        got = workers.receive(self.far[w.pid])
        assert got is not None and got[1] is not None
        os.close(got[1])
        return got[0]

    def hand_off(self, w: WorkerRef, conn: int, key: str, *, send: bool = True,
                 **hand: object) -> None:
        """*w* passes connection *conn* on for a session of *key* (*send* only: unread)."""
        passed, peer = _connection()
        self.open.append(peer)
        message = {"handoff": conn, "key": key, "hand": hand}
        if send:
            self.say(w, message, passed)
        else:
            workers.send(self.far[w.pid], message, passed)
        os.close(passed)

    def close(self) -> None:
        for s in [*self.far.values(), *self.open]:
            s.close()


@pytest.fixture
def h() -> Harness:
    harness = Harness()
    yield harness
    harness.close()


def _connection() -> tuple[int, socket.socket]:
    a, b = socket.socketpair()
    return a.detach(), b


def test_a_login_then_a_session_then_reuse(h: Harness) -> None:
    h.connect("192.0.2.1", {"TCPREMOTEIP": "192.0.2.1"})
    assert [k for k, _ in h.forked] == [LOGIN]
    assert h.forked[0][1]["env"] == {"TCPREMOTEIP": "192.0.2.1"}
    login = h.worker(LOGIN)
    # the login succeeded: the connection goes to a new session worker of the account's ids
    h.hand_off(login, 1, "5000:5000", argv=["imapd"])
    assert h.forked[-1] == ("5000:5000", {"job": "session", "conn": 1,
                                          "hand": {"argv": ["imapd"]}})
    h.say(login, {"end": 1, "held": False, "last": False})
    assert h.released == []  # the session holds it now
    session = h.worker("5000:5000")
    h.say(session, {"end": 1, "held": True, "last": False})
    assert h.released == ["192.0.2.1"]
    # the next connection of that account: both workers are reused, nothing forked
    h.connect("192.0.2.2")
    assert h.job(login)["job"] == "login"
    h.hand_off(login, 2, "5000:5000")
    assert h.job(session) == {"job": "session", "conn": 2, "hand": {}}
    assert len(h.forked) == 2


def test_other_ids_get_their_own_worker(h: Harness) -> None:
    for n, key in enumerate(("5000:5000", "5001:5001"), 1):
        h.connect("192.0.2.1")
        login = h.worker(LOGIN)
        if n == 2:  # the login worker is reused; the first job came with the fork
            h.job(login)
        h.hand_off(login, n, key)
        h.say(login, {"end": n, "held": False, "last": False})
        h.say(h.worker(key), {"end": n, "held": True, "last": False})
    assert [k for k, _ in h.forked] == [LOGIN, "5000:5000", "5001:5001"]


def test_a_session_worker_cannot_hand_a_connection_on(h: Harness) -> None:
    h.connect("192.0.2.1")
    h.hand_off(h.worker(LOGIN), 1, "5000:5000")
    session = h.worker("5000:5000")
    h.hand_off(session, 1, "0:0", uid=0)
    assert [k for k, _ in h.forked] == [LOGIN, "5000:5000"]  # nothing routed as root
    assert session.ending and session.sock.fileno() == -1  # and no more jobs for it
    assert h.released == []
    assert h.pool.ended(session.pid)  # when it ends, its connection's slot comes back
    assert h.released == ["192.0.2.1"]


def test_a_dying_worker_gives_its_slot_back(h: Harness) -> None:
    h.connect("192.0.2.9")
    login = h.worker(LOGIN)
    assert h.pool.ended(login.pid)
    assert h.released == ["192.0.2.9"]
    assert not h.pool.ended(login.pid) and not h.pool.ended(4242)  # once; not a worker


def test_last_job_and_idle_lifetime(h: Harness) -> None:
    h.connect("192.0.2.1")
    h.say(h.worker(LOGIN), {"end": 1, "held": True, "last": True})  # it ends: no more jobs
    h.connect("192.0.2.1")
    assert len(h.forked) == 2
    second = h.worker(LOGIN)
    h.say(second, {"end": 2, "held": True, "last": False})
    assert second in h.pool.idle[LOGIN]
    h.pool.retire_idle(second.idle_since + 4.0)
    assert second in h.pool.idle[LOGIN]
    h.pool.retire_idle(second.idle_since + 5.0)
    assert h.pool.idle[LOGIN] == [] and second.sock.fileno() == -1
    assert h.far[second.pid].recv(10) == b""  # the worker sees the end of its pair
    assert h.released == ["192.0.2.1", "192.0.2.1"]


def test_a_session_ending_meanwhile_is_used_rather_than_a_new_one(h: Harness) -> None:
    """couriertcpd reads the end of a session and a login's hand-off in one turn: the
    end is taken first, so the hand-off goes to that now idle worker."""
    h.connect("192.0.2.1")
    login = h.worker(LOGIN)
    h.hand_off(login, 1, "5000:5000")
    h.say(login, {"end": 1, "held": False, "last": False})
    session = h.worker("5000:5000")
    h.connect("192.0.2.2")
    h.job(login)
    h.hand_off(login, 2, "5000:5000", send=False)
    workers.send(h.far[session.pid], {"end": 1, "held": True, "last": False})
    h.pool.readable([login.sock.fileno(), session.sock.fileno()])
    assert len(h.forked) == 2
    assert h.job(session)["conn"] == 2


def test_usage_sees_a_descriptor_left_open() -> None:
    first = workers.Usage.now()
    assert first.fds > 0 and first.rss > 0
    assert not workers.Usage.now().outgrew(first)
    r, w = os.pipe()
    try:
        assert workers.Usage.now().outgrew(first)
    finally:
        os.close(r)
        os.close(w)
    assert not workers.Usage.now().outgrew(first)



@pytest.mark.parametrize("garbage", [b"[1, 2]", b"[" * 100000, b"\xff\xfe", b"42"])
def test_garbage_from_a_worker_ends_only_that_worker(h: Harness, garbage: bytes) -> None:
    h.connect("192.0.2.1")
    login = h.worker(LOGIN)
    h.far[login.pid].send(garbage)
    h.pool.readable([login.sock.fileno()])
    assert login.ending and h.pool.ended(login.pid)
    assert h.released == ["192.0.2.1"]
