"""The fast path's kept processes (courierpy.login.workers) on a real port.

Once warm, fasttcpd forks nothing for a plain-text connection: a kept login
worker runs the login stage and a kept session worker the session.  These
tests check that no process is forked per connection, that a kept process
carries nothing from one session to the next, that the ``-maxprocs`` slot of a
connection is given back however its session ends (LOGOUT, a killed process),
that idle workers end, that POP3 goes the same way, and, as root, that each
session runs with its own account's ids while accounts with other ids never
share a process.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.instance import Instance, deliver
from tests.integration.imapd_support import LineConn, Tcpd, start_fasttcpd
from tests.support import REPO, require_root

VENV_BIN = Path(sys.executable).parent


def _start(instance: Instance, tmp_path: Path, program: list[str], *opts: str,
           python: str = sys.executable, env_extra: dict[str, str] | None = None) -> Tcpd:
    return start_fasttcpd(instance.confdir, tmp_path, program, *opts, python=python,
                          env_extra=env_extra)


@pytest.fixture
def running(instance: Instance, tmp_path: Path) -> Iterator[list[Tcpd]]:
    """Start servers with ``_start`` and append them; all are stopped afterwards."""
    servers: list[Tcpd] = []
    with instance.start_authdaemond():
        try:
            yield servers
        finally:
            for s in servers:
                s.proc.terminate()
                s.proc.wait(timeout=30)


def _imap(port: int, user: str, password: str, *commands: str) -> list[list[bytes]]:
    """One session: LOGIN, *commands*, LOGOUT; the answer lines of each command."""
    c = LineConn.to(port)
    try:
        assert c.line().startswith(b"* OK")
        assert c.imap("a", f"LOGIN {user} {password}")[-1] == b"a OK LOGIN Ok."
        out = [c.imap(f"c{i}", cmd) for i, cmd in enumerate(commands)]
        assert c.imap("z", "LOGOUT")[-1].startswith(b"z OK")
        assert c.file.read() == b""  # closed: no kept process holds a copy of it
        return out
    finally:
        c.close()


def _settle(tcpd: Tcpd, seconds: float = 0.3) -> set[int]:
    time.sleep(seconds)
    return tcpd.kids()


def _imap_tcpd(instance: Instance, tmp_path: Path, running: list[Tcpd], *opts: str,
               **env: str) -> Tcpd:
    instance.set_config("imapd", IMAP_EMPTYTRASH="")
    instance.set_config("imapd-ssl", IMAPDSTARTTLS="NO")
    t = _start(instance, tmp_path, [str(VENV_BIN / "imaplogin"), str(VENV_BIN / "imapd")],
               *opts, env_extra=env)
    running.append(t)
    return t


def test_no_fork_per_connection_once_warm(instance: Instance, tmp_path: Path,
                                          running: list[Tcpd]) -> None:
    instance.add_user("erin", "erinpw")
    instance.make_userdb()
    t = _imap_tcpd(instance, tmp_path, running)
    for _ in range(2):
        _imap(t.port, "erin", "erinpw", "SELECT INBOX")
    warm = _settle(t)
    assert len(warm) >= 2  # login workers (one more if it was busy) and a session worker
    for _ in range(5):
        _imap(t.port, "erin", "erinpw", "SELECT INBOX")
    # (a login worker still finishing its last job when the next client came, on a busy
    # machine, makes one more: a fork per connection would make five)
    assert len(_settle(t) - warm) <= 1


def _session_pid(t: Tcpd, home: Path) -> int:
    """The process serving a logged-in session of the account with *home*."""
    deadline = time.monotonic() + 5
    while True:
        pids = []
        for p in t.kids():
            try:
                if os.readlink(f"/proc/{p}/cwd") == str(home):
                    pids.append(p)
            except OSError:
                continue
        if pids or time.monotonic() > deadline:
            assert len(pids) == 1, pids
            return pids[0]
        time.sleep(0.02)


def test_a_kept_session_process_carries_nothing_over(instance: Instance, tmp_path: Path,
                                                     running: list[Tcpd]) -> None:
    erin = instance.add_user("erin", "erinpw")
    fred = instance.add_user("fred", "fredpw")
    for i in range(3):
        deliver(erin.maildir, f"Subject: {i}\n\nbody\n".encode(), seq=i)
    instance.make_userdb()
    t = _imap_tcpd(instance, tmp_path, running)
    _imap(t.port, "fred", "fredpw")  # warm
    served: dict[str, int] = {}
    selected: dict[str, list[bytes]] = {}
    for user in (erin, fred):
        c = LineConn.to(t.port)
        try:
            c.line()
            assert c.imap("a", f"LOGIN {user.name} {user.password}")[-1] == b"a OK LOGIN Ok."
            served[user.name] = _session_pid(t, user.home)  # (it sits in this home only)
            selected[user.name] = c.imap("b", "SELECT INBOX")
            assert c.imap("z", "LOGOUT")[-1].startswith(b"z OK")
            assert c.file.read() == b""
        finally:
            c.close()
    assert served["erin"] == served["fred"]  # one kept process, one account after the other
    assert b"* 3 EXISTS" in selected["erin"]
    assert b"* 0 EXISTS" in selected["fred"] and b"* 3 EXISTS" not in selected["fred"]
    logins = [ln for ln in t.log.read_text().splitlines() if ln.startswith("INFO: LOGIN,")]
    assert [ln.split(",")[1].strip() for ln in logins] == ["user=fred", "user=erin",
                                                          "user=fred"]


def test_slot_given_back_when_a_session_process_dies(instance: Instance, tmp_path: Path,
                                                      running: list[Tcpd]) -> None:
    erin = instance.add_user("erin", "erinpw")
    instance.make_userdb()
    t = _imap_tcpd(instance, tmp_path, running, "-maxprocs=1")
    c = LineConn.to(t.port)
    c.line()
    assert c.imap("a", "LOGIN erin erinpw")[-1] == b"a OK LOGIN Ok."
    # the one slot is taken: the next connection is not greeted
    d = LineConn.to(t.port)
    assert not select.select([d.sock], [], [], 1.0)[0]
    session = [p for p in t.kids() if os.readlink(f"/proc/{p}/cwd") == str(erin.home)]
    assert len(session) == 1
    os.kill(session[0], signal.SIGKILL)
    assert d.line().startswith(b"* OK")  # the dead process's slot went to the waiting one
    assert d.imap("a", "LOGIN erin erinpw")[-1] == b"a OK LOGIN Ok."
    c.close()
    d.close()


def test_maxprocs_and_maxperip_hold(instance: Instance, tmp_path: Path,
                                    running: list[Tcpd]) -> None:
    instance.add_user("erin", "erinpw")
    instance.make_userdb()
    t = _imap_tcpd(instance, tmp_path, running, "-maxprocs=3", "-maxperip=2")
    conns = []
    for _ in range(2):
        c = LineConn.to(t.port)
        assert c.line().startswith(b"* OK")
        assert c.imap("a", "LOGIN erin erinpw")[-1] == b"a OK LOGIN Ok."
        conns.append(c)
    third = LineConn.to(t.port)  # over -maxperip: closed at once, as Courier's does
    with pytest.raises(EOFError):
        third.line()
    third.close()
    assert conns[0].imap("z", "LOGOUT")[-1].startswith(b"z OK")
    assert conns[0].file.read() == b""  # closed: couriertcpd was told before
    conns[0].close()
    again = LineConn.to(t.port)  # the LOGOUT gave its slot back
    assert again.line().startswith(b"* OK")
    again.close()
    conns[1].close()


def test_maxprocs_holds_exactly_under_a_burst(instance: Instance, tmp_path: Path,
                                              running: list[Tcpd]) -> None:
    instance.add_user("erin", "erinpw")
    instance.make_userdb()
    t = _imap_tcpd(instance, tmp_path, running, "-maxprocs=4")
    conns = [LineConn.to(t.port) for _ in range(12)]

    def greeted(cs: list[LineConn], at_least: int = 0) -> list[LineConn]:
        """Those greeted (waiting up to 10 s for *at_least*, then 0.5 s for more)."""
        deadline = time.monotonic() + 10
        while True:
            out = [c for c in cs if select.select([c.sock], [], [], 0)[0]]
            if len(out) >= at_least or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        time.sleep(0.5)
        return [c for c in cs if select.select([c.sock], [], [], 0)[0]]

    try:
        first = greeted(conns, 4)
        assert len(first) == 4
        for c in first:  # logged in, each keeps its slot in a session process
            assert c.line().startswith(b"* OK")
            assert c.imap("a", "LOGIN erin erinpw")[-1] == b"a OK LOGIN Ok."
        waiting = [c for c in conns if c not in first]
        assert greeted(waiting) == []
        assert first[0].imap("z", "LOGOUT")[-1].startswith(b"z OK")
        assert len(greeted(waiting, 1)) == 1  # exactly the one slot given back
    finally:
        for c in conns:
            c.close()


def test_idle_workers_end(instance: Instance, tmp_path: Path, running: list[Tcpd]) -> None:
    instance.add_user("erin", "erinpw")
    instance.make_userdb()
    t = _imap_tcpd(instance, tmp_path, running, COURIERPY_WORKER_IDLE="0.5")
    _imap(t.port, "erin", "erinpw")
    assert _settle(t, 0.1)
    deadline = time.monotonic() + 10
    while t.kids():
        assert time.monotonic() < deadline, t.kids()
        time.sleep(0.1)
    _imap(t.port, "erin", "erinpw", "SELECT INBOX")  # and new ones start when needed


def test_pop3_sessions_reuse_processes(instance: Instance, tmp_path: Path,
                                       running: list[Tcpd]) -> None:
    erin = instance.add_user("erin", "erinpw")
    instance.add_user("fred", "fredpw")
    deliver(erin.maildir, b"Subject: x\n\nhello\n")
    instance.make_userdb()
    instance.set_config("pop3d-ssl", POP3_STARTTLS="NO")
    t = _start(instance, tmp_path, [str(VENV_BIN / "courierpop3login"),
                                    str(VENV_BIN / "courierpop3d")])
    running.append(t)

    def stat(user: str) -> bytes:
        c = LineConn.to(t.port)
        try:
            assert c.line().startswith(b"+OK")
            assert c.pop(f"USER {user}").startswith(b"+OK")
            assert c.pop(f"PASS {user}pw").startswith(b"+OK")
            answer = c.pop("STAT")
            assert c.pop("QUIT").startswith(b"+OK")
            return answer
        finally:
            c.close()

    assert stat("fred") == b"+OK 0 0"
    assert stat("erin") == b"+OK 1 21"
    warm = _settle(t)
    for _ in range(2):
        assert stat("fred") == b"+OK 0 0"
        assert stat("erin") == b"+OK 1 21"
    assert len(_settle(t) - warm) <= 1  # (see test_no_fork_per_connection_once_warm)


def _ids(pid: int) -> tuple[list[str], list[str], list[str]]:
    status = {ln.split(":", 1)[0]: ln.split()[1:]
              for ln in Path(f"/proc/{pid}/status").read_text().splitlines()}
    return status["Uid"], status["Gid"], status["Groups"]


def test_accounts_with_other_ids_never_share_a_process(instance: Instance, tmp_path: Path,
                                                       running: list[Tcpd]) -> None:
    """As root: each session has its account's uid/gid and no groups (from /proc); a kept
    session process serves its own ids' accounts only."""
    require_root("sessions become other uids")
    accounts = {"uma": 5101, "vic": 5102}
    for d in (tmp_path, *tmp_path.parents):  # the homes must be reachable for those uids
        if d == Path("/tmp") or d == d.parent:
            break
        d.chmod(d.stat().st_mode | 0o111)
    for name, uid in accounts.items():
        user = instance.add_user(name, f"{name}pw", uid=str(uid), gid=str(uid))
        for path in (user.home, *user.home.rglob("*")):
            os.chown(path, uid, uid)
    instance.make_userdb()
    # a system Python (the venv's lives under /root, closed to other uids), as a venv
    # would lay it out: the interpreter beside the console scripts
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python3").symlink_to("/usr/bin/python3")
    site = REPO / ".venv" / "lib" / "python3.11" / "site-packages"
    for name, module in (("imaplogin", "courierpy.cli.imaplogin"),
                         ("imapd", "courierpy.cli.imapd")):
        script = bindir / name
        script.write_text(f"#!/bin/sh\nPYTHONPATH={REPO}:{site} exec {bindir}/python3 -m "
                          f"{module} \"$@\"\n")
        script.chmod(0o755)
    instance.set_config("imapd", IMAP_EMPTYTRASH="")
    instance.set_config("imapd-ssl", IMAPDSTARTTLS="NO")
    port_env = {"PYTHONPATH": f"{REPO}:{site}"}
    t = _start(instance, tmp_path, [str(bindir / "imaplogin"), str(bindir / "imapd")],
               python=str(bindir / "python3"), env_extra=port_env)
    running.append(t)
    served: dict[str, set[int]] = {name: set() for name in accounts}
    for _round in range(2):
        for name, uid in accounts.items():
            c = LineConn.to(t.port)
            try:
                c.line()
                assert c.imap("a", f"LOGIN {name} {name}pw")[-1] == b"a OK LOGIN Ok."
                assert c.imap("b", "SELECT INBOX")[-1].startswith(b"b OK")
                home = str(instance.users[name].home)
                pids = [p for p in t.kids() if os.readlink(f"/proc/{p}/cwd") == home]
                assert len(pids) == 1
                assert _ids(pids[0]) == ([str(uid)] * 4, [str(uid)] * 4, [])
                served[name].add(pids[0])
                c.imap("z", "LOGOUT")
            finally:
                c.close()
            time.sleep(0.2)
    assert len(served["uma"]) == len(served["vic"]) == 1  # kept, once per account's ids
    assert not served["uma"] & served["vic"]


def test_stop_says_bye_before_and_after_the_login(instance: Instance, tmp_path: Path,
                                                  running: list[Tcpd]) -> None:
    instance.add_user("erin", "erinpw")
    instance.make_userdb()
    t = _imap_tcpd(instance, tmp_path, running)
    _imap(t.port, "erin", "erinpw")  # warm: kept processes exist, idle
    before = LineConn.to(t.port)
    assert before.line().startswith(b"* OK")
    after = LineConn.to(t.port)
    after.line()
    assert after.imap("a", "LOGIN erin erinpw")[-1] == b"a OK LOGIN Ok."
    t.proc.send_signal(signal.SIGTERM)
    for c in (before, after):
        assert c.line() == b"* BYE Courier-IMAP server shut down by signal."
        assert c.file.read() == b""
        c.close()
    assert t.proc.wait(timeout=30) == 0
    assert not t.kids()


def test_no_slot_leaks_when_clients_leave_at_any_point(instance: Instance, tmp_path: Path,
                                                        running: list[Tcpd]) -> None:
    """Clients that vanish before the greeting, during the login, right after it or in
    the middle of a session: afterwards all -maxprocs slots are free again."""
    instance.add_user("erin", "erinpw")
    instance.make_userdb()
    t = _imap_tcpd(instance, tmp_path, running, "-maxprocs=3")
    steps = [b"", b"a LOGIN erin", b"a LOGIN erin erinpw\r\n",
             b"a LOGIN erin erinpw\r\nb SELECT INBOX\r\n", b"a LOGIN erin wrong\r\n",
             b"a LOGIN erin erinpw\r\nb APPEND INBOX {100}\r\n"]
    for round_ in range(4):
        for data in steps:
            s = socket.create_connection(("127.0.0.1", t.port), timeout=15)
            if round_ % 2:
                s.recv(1024)  # the greeting, sometimes
            if data:
                s.sendall(data)
                time.sleep(0.02)
            s.close()
    time.sleep(0.5)
    held = []
    try:
        for _ in range(3):
            c = LineConn.to(t.port)
            assert c.line().startswith(b"* OK")
            assert c.imap("a", "LOGIN erin erinpw")[-1] == b"a OK LOGIN Ok."
            held.append(c)
    finally:
        for c in held:
            c.close()


def test_an_account_that_cannot_be_entered_is_refused_and_its_slot_freed(
        instance: Instance, tmp_path: Path, running: list[Tcpd]) -> None:
    """A home that is gone: the session process answers the login stage's refusal, logs
    why, ends (it may be half-way into the account) and gives the slot back."""
    instance.add_user("erin", "erinpw")
    instance.add_user("gone", "gonepw", home=str(tmp_path / "no-such-home"))
    instance.make_userdb()
    t = _imap_tcpd(instance, tmp_path, running, "-maxprocs=1")
    for _ in range(2):
        c = LineConn.to(t.port)
        try:
            c.line()
            c.sock.sendall(b"a LOGIN gone gonepw\r\n")
            assert c.line() == b"* BYE Temporary problem, please try again later"
            assert c.file.read() == b""
        finally:
            c.close()
    assert any("ERR:" in ln and "no-such-home" in ln for ln in t.log_lines())
    _imap(t.port, "erin", "erinpw", "SELECT INBOX")  # the one slot is free again
