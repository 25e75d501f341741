"""After a login: become the account and start the session program, as Courier does.

Courier's imaplogin and courierpop3login switch to the account's uid/gid,
``chdir`` to its home, add ``AUTHENTICATED`` (and ``IMAPLOGINTAG``,
``OPTIONS``, ...) to the environment and exec the program named on their
command line with the Maildir as its argument.  We do the same, so either
side of the chain may be the real Courier's.

TLS: Courier keeps TLS out of the login programs (couriertls runs in front,
or is started by STARTTLS as a separate relay process).  Our login stage
holds the TLS session in-process, so when TLS is active the process forks
first: the child (the session, exec'd) talks plain text over a socket pair,
and the parent, already running as the account too, relays between that
pair and the encrypted client connection until either side ends.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from courierpy.proc import become_account

__all__ = ["Handover", "TlsState", "Transfer", "hand_over", "own_program", "relay",
           "run_session", "set_environ"]

_BUF = 65536


class TlsState:
    """A server-side TLS session over memory BIOs, on the client fd *netfd*."""

    def __init__(self, obj: ssl.SSLObject, incoming: ssl.MemoryBIO,
                 outgoing: ssl.MemoryBIO) -> None:
        self.obj, self.incoming, self.outgoing = obj, incoming, outgoing


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def relay(tls: TlsState, netfd: int, localfd: int) -> None:
    """Relay between the TLS client on *netfd* and the plain *localfd* until one side ends."""

    def flush() -> None:
        out = tls.outgoing.read()
        if out:
            _write_all(netfd, out)

    try:
        while True:
            if tls.obj.pending():
                ready = [netfd]
            else:
                ready, _, _ = select.select([netfd, localfd], [], [])
            if localfd in ready:
                data = os.read(localfd, _BUF)
                if not data:
                    try:
                        tls.obj.unwrap()
                    except ssl.SSLError:
                        pass
                    flush()
                    return
                tls.obj.write(data)
                flush()
            if netfd in ready:
                if not tls.obj.pending():
                    raw = os.read(netfd, _BUF)
                    if not raw:
                        return
                    tls.incoming.write(raw)
                while True:
                    try:
                        plain = tls.obj.read(_BUF)
                    except ssl.SSLWantReadError:
                        break
                    except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                        return
                    if not plain:
                        return
                    _write_all(localfd, plain)
                flush()
    except (OSError, ssl.SSLError):
        return


def _forward(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def set_environ(env: Mapping[str, str]) -> None:
    """Make ``os.environ`` exactly *env*, as an exec with *env* would.

    Only the differences are applied: clearing and refilling it costs a
    ``putenv`` per variable (a millisecond for Courier's ~120 keys).
    """
    current = os.environ
    for key in [k for k in current if k not in env]:
        del current[key]
    for key, value in env.items():
        if current.get(key) != value:
            current[key] = value


#: our own session programs, run in this process instead of a new interpreter
_OWN = {"imapd": "courierpy.cli.imapd", "pop3d": "courierpy.cli.pop3d",
        "courierpop3d": "courierpy.cli.pop3d"}


def own_program(path: str) -> str | None:
    """The module of *path* when it is our own imapd/pop3d console script, else None."""
    import sys

    name = os.path.basename(path)
    if name not in _OWN:
        return None
    mine = os.path.join(os.path.dirname(sys.executable), name)
    try:
        return _OWN[name] if os.path.samefile(path, mine) else None
    except OSError:
        return None


def run_session(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """Run our own session program *argv* (see :func:`own_program`) in this process, on
    fds 0/1, with the environment *env*; its exit status."""
    import importlib
    import sys

    module = own_program(argv[0])
    assert module is not None
    set_environ(env)
    sys.argv = list(argv)
    mod = importlib.import_module(module)
    try:
        plain = getattr(mod, "run_argv", None)  # no click for the usual ``PROGRAM MAILDIR``
        if plain is None or not plain(list(argv[1:])):
            mod.main(args=list(argv[1:]), prog_name=os.path.basename(argv[0]))
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


def _exec(argv: Sequence[str], env: Mapping[str, str]) -> None:
    """execve, or, for our own session program, the same in this process (no new interpreter).

    The environment, argv, cwd, ids and descriptors are what the exec would
    give; only Python's start-up is saved.
    """
    if own_program(argv[0]) is None:
        os.execve(argv[0], list(argv), dict(env))
    import sys

    sys.exit(run_session(argv, env))


@dataclass(frozen=True)
class Handover:
    """What a login stage hands the session: the program with its arguments, the
    whole environment, the account (ids, home, umask) and, should the account
    turn out not to be enterable, the protocol's answer (a line ending in CRLF)."""

    argv: list[str]
    env: dict[str, str]
    uid: int | None
    gid: int
    home: str | None
    umask: int | None
    refusal: str

    def to_json(self) -> dict[str, object]:
        return {"argv": self.argv, "env": self.env, "uid": self.uid, "gid": self.gid,
                "home": self.home, "umask": self.umask, "refusal": self.refusal}

    @classmethod
    def from_json(cls, d: Mapping[str, object]) -> Handover:
        return cls(list(d["argv"]), dict(d["env"]),  # type: ignore[call-overload]
                   d["uid"], d["gid"], d["home"], d["umask"], d["refusal"])  # type: ignore[arg-type]


#: a login stage's way to pass a plain-text connection on (courierpy.login.workers): True
#: when it took the connection, False to hand over in this process (:func:`hand_over`)
Transfer = Callable[[Handover], bool]


def hand_over(argv: Sequence[str], env_add: Mapping[str, str], *, uid: int | None, gid: int,
              home: str | None, umask: int | None, tls: TlsState | None = None,
              netfd: int = 0) -> None:
    """Become the account, set the environment and exec *argv* (never returns normally).

    Raises :class:`courierpy.proc.PrivilegeError` when the account cannot be
    entered (the caller answers the client), :class:`OSError` when the
    program cannot be started.
    """
    become_account(uid, gid, home, umask=umask)
    env = dict(os.environ)
    env.update(env_add)
    if tls is None:
        _exec(argv, env)
    mine, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the session side, exec'd
        try:
            mine.close()
            os.dup2(theirs.fileno(), 0)
            os.dup2(theirs.fileno(), 1)
            theirs.close()
            _exec(argv, env)
        except SystemExit as e:
            os._exit(e.code if isinstance(e.code, int) else (0 if e.code is None else 1))
        finally:
            os._exit(127)
    theirs.close()
    # stopped (couriertcpd SIGTERMs its children): pass it on to the session, which
    # finishes its command and says BYE; the relay carries that and ends with it
    signal.signal(signal.SIGTERM, lambda *_: _forward(pid, signal.SIGTERM))
    try:
        relay(tls, netfd, mine.fileno())
    finally:
        mine.shutdown(socket.SHUT_RDWR)
        mine.close()
        os.waitpid(pid, 0)
    os._exit(0)
