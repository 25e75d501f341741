"""couriertcpd with the fast path: our login stages start without a new interpreter.

    python -m courierpy.login.fasttcpd [couriertcpd options] PORT PROGRAM [ARGS...]

The same command as couriertcpd (courierpy.cli.couriertcpd), except that when
PROGRAM is our own ``imaplogin`` or ``courierpop3login`` the forked child does
not exec it: this process imported the login stage and the session code
before serving, so the child sets the environment and argv the exec would
have given and calls the command directly.  Any other program is exec'd as
Courier's couriertcpd does.  The login stage in turn runs our imapd/pop3d
in-process after its privilege drop (courierpy.login.handoff), so a
connection costs a fork instead of two Python start-ups.

What a login stage derives from files (the parsed config files, the TLS
contexts) is prepared here too, in a :class:`~courierpy.login.startup.StartupCache`
that each child checks against the files' current bytes before use; the
parent refreshes it at most once a second, after a fork, so a changed file
costs only the first connections after the change a parse of their own.
The arguments are parsed once; a child whose ``COURIER_CONFDIR`` differs from
the one they were parsed with parses them itself.  The heap is frozen
(``gc.freeze``) before serving so that a child's collections never visit,
and so never copy, the parent's objects.

A fork is still milliseconds of kernel time for an interpreter this size, so
plain-text connections are not forked at all once the server is warm: they go
to processes kept from earlier connections (courierpy.login.workers: login
workers as root, session workers as an account's ids).  Implicit TLS, and the
options that need code between fork and exec (DNS and ident look-ups, ``-block``,
``-allow``, ``-drop``, ``-stderr=socket``), keep a fork per connection.
(A spare process forked ahead of each connection was tried first: no shorter
greeting, 1.5-2 ms more CPU per session.)
"""

from __future__ import annotations

import gc
import importlib
import os
import socket
import sys
import time
from types import ModuleType
from typing import Any, NoReturn

from courierpy import proc
from courierpy.errors import CourierError
from courierpy.login import workers
from courierpy.login.handoff import Handover, own_program, run_session, set_environ
from courierpy.login.logline import log as log_line
from courierpy.login.startup import StartupCache
from courierpy.tcpd.server import TcpdServer

__all__ = ["FastTcpdServer", "main"]

_FAST = {"imaplogin": "courierpy.cli.imaplogin", "courierpop3login": "courierpy.cli.pop3login"}
#: imported before serving, so that each child finds them loaded (the other
#: protocol's modules are left out: each page of this process costs every fork)
_PRELOAD = {
    "courierpy.cli.imaplogin": ("courierpy.login.imap", "courierpy.cli.imapd",
                                "courierpy.imap.commands", "courierpy.imap.mailbox"),
    "courierpy.cli.pop3login": ("courierpy.login.pop3", "courierpy.cli.pop3d",
                                "courierpy.pop3.mailbox"),
}
#: seconds between two refreshes of the cache in the parent
REFRESH_INTERVAL = 1.0


def _fast_module(program: str) -> str | None:
    name = os.path.basename(program)
    if name not in _FAST:
        return None
    mine = os.path.join(os.path.dirname(sys.executable), name)
    try:
        return _FAST[name] if os.path.samefile(program, mine) else None
    except OSError:
        return None


class FastTcpdServer(TcpdServer):
    """A TcpdServer whose children run our login stages in the already-loaded interpreter."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._fast = _fast_module(self.opts.program)
        self._module: ModuleType | None = None
        #: the command's parsed arguments, and the COURIER_CONFDIR they were parsed with
        self._params: dict[str, Any] | None = None
        self._confdir_env: str | None = None
        self.cache = StartupCache()
        self._refreshed = 0.0
        if self._fast is None:
            return
        for module in _PRELOAD[self._fast]:
            try:
                importlib.import_module(module)
            except ImportError:
                pass
        try:
            self._module = importlib.import_module(self._fast)
        except ImportError:
            self._fast = None
            return
        self._params = self._parse_args()
        self._refresh()
        o = self.opts
        self.pool: workers.Pool | None = None
        if (self._params is not None and not self._params["implicit_tls"] and o.nodnslookup
                and o.noidentlookup and not o.block and not o.allow and not o.drop
                and o.stderr != "socket"):
            self.pool = workers.Pool(fork=self._fork_worker, release=self.slots.release,
                                     idle_lifetime=workers.idle_lifetime(self.environ))

    def _parse_args(self) -> dict[str, Any] | None:
        """The login command's parameters, as its click command would give them."""
        assert self._module is not None
        self._confdir_env = os.environ.get("COURIER_CONFDIR")
        try:
            ctx = self._module.main.make_context(os.path.basename(self.opts.program),
                                                 list(self.opts.args))
        except BaseException:  # noqa: BLE001 - --help, a usage error: each child says so
            return None
        return dict(ctx.params)

    def _refresh(self) -> None:
        """Bring the cache up to date with the files, then freeze the heap."""
        self._refreshed = time.monotonic()
        if self._module is not None and self._params is not None:
            fresh = StartupCache(previous=self.cache)
            self._module.warm(fresh, self._params["config_dir"],
                              self._params["implicit_tls"], self.environ)
            fresh.seal()
            self.cache = fresh
        gc.collect()
        gc.freeze()

    def _handle(self, conn) -> None:  # type: ignore[no-untyped-def]
        super()._handle(conn)
        if self._fast is not None and self.pool is None:
            self._refresh_if_stale()

    def _refresh_if_stale(self) -> None:
        if time.monotonic() - self._refreshed >= REFRESH_INTERVAL:
            self._refresh()

    # -- the kept processes (courierpy.login.workers) ----------------------------------

    def _start(self, conn, env: dict[str, str], remote_ip: str) -> None:  # type: ignore[no-untyped-def]
        if self.pool is None or env.get("COURIER_CONFDIR") != self._confdir_env:
            super()._start(conn, env, remote_ip)
            return
        # detached: the pool's is then the only descriptor of it in this process, so no
        # worker forked meanwhile inherits a copy that would keep the connection open
        self.pool.start_login(conn.detach(), env, remote_ip)

    def _fork_worker(self, key: str, message: dict[str, object],
                     fd: int) -> workers.WorkerRef | None:
        """A new worker of the pool *key*, given its first job."""
        assert self.pool is not None
        if key == workers.LOGIN:
            self._refresh_if_stale()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid = os.fork()
        except OSError as e:
            mine.close()
            theirs.close()
            self._say(f"fork: {e.strerror}")
            return None
        if pid == 0:  # pragma: no cover - the worker
            try:
                mine.close()
                for w in self.pool.workers.values():
                    if w.sock.fileno() >= 0:
                        w.sock.close()
                self._leave_parent()
                self._work(theirs, message, fd)
            except BaseException as e:  # noqa: BLE001 - nothing may escape a forked child
                try:
                    os.write(2, f"couriertcpd: worker: {e}\n".encode())
                except OSError:
                    pass
            os._exit(1)
        theirs.close()
        os.set_inheritable(mine.fileno(), False)
        return workers.WorkerRef(pid, mine, key)

    def _control_fds(self) -> set[int]:
        return self.pool.fds() if self.pool is not None else set()

    def _on_control(self, fds: list[int]) -> None:
        if self.pool is not None and fds:
            self.pool.readable(fds)

    def _poll_timeout(self) -> float:
        if self.pool is not None and self.pool.workers:  # idle ones must be retired in time
            return min(super()._poll_timeout(), max(0.1, self.pool.idle_lifetime / 2))
        return super()._poll_timeout()

    def _tick(self) -> None:
        if self.pool is not None:
            self.pool.retire_idle(time.monotonic())

    def _living(self) -> list[int]:
        return super()._living() + (self.pool.pids() if self.pool is not None else [])

    def _ended(self, pid: int) -> None:
        if self.pool is None or not self.pool.ended(pid):
            super()._ended(pid)

    def shutdown(self) -> None:
        if self.pool is not None:
            self.pool.close_all()  # idle workers end at once, busy ones after their job
        super().shutdown()

    # -- in a worker -------------------------------------------------------------------

    def _work(self, ctl: socket.socket, message: dict[str, object],
              fd: int) -> NoReturn:  # pragma: no cover - in the worker
        """Serve jobs until couriertcpd closes the pair, or the last one."""
        gc.freeze()
        null = os.open(os.devnull, os.O_RDWR)
        jobs = 0
        start = workers.identity()
        usage: workers.Usage | None = None
        while True:
            os.dup2(fd, 0)
            os.dup2(fd, 1)
            os.close(fd)
            conn = message["conn"]
            if message["job"] == "login":
                held = self._login_job(ctl, message)
                entered = True
            else:
                entered = self._session_job(message)
                held = True
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            jobs += 1
            now = workers.Usage.now()
            if usage is None:
                usage = now  # after a first job: what the process needs to serve
            last = (jobs >= workers.MAX_JOBS or not entered or now.outgrew(usage)
                    or (message["job"] == "login" and workers.identity() != start))
            # said before the connection closes, so that couriertcpd knows this process
            # is free before the client can be back with its next connection
            workers.send(ctl, {"end": conn, "held": held, "last": last})
            os.dup2(null, 0)
            os.dup2(null, 1)
            if last:
                os._exit(0)
            got = workers.receive(ctl)
            if got is None or got[1] is None:
                os._exit(0)
            message, fd = got

    def _login_job(self, ctl: socket.socket, message: dict[str, object]) -> bool:
        """The login stage on fds 0/1; False when the session went on elsewhere."""
        assert self._module is not None and self._params is not None
        set_environ(message["env"])  # type: ignore[arg-type]
        sys.argv = [self.opts.program, *self.opts.args]
        passed = False

        def transfer(hand: Handover) -> bool:
            nonlocal passed
            key = workers.account_key(hand.uid, hand.gid)
            if key is None or own_program(hand.argv[0]) is None:
                return False  # as before: this process becomes the account, or execs
            workers.send(ctl, {"handoff": message["conn"], "key": key,
                               "hand": hand.to_json()}, 0)
            passed = True
            return True

        try:
            self._module.run(**self._params, cache=self.cache, transfer=transfer)
        except SystemExit:
            pass
        return not passed

    def _session_job(self, message: dict[str, object]) -> bool:
        """A session handed over by a login worker, as the exec'd program would run it;
        False when the account could not be entered (this process may be half-way)."""
        hand = Handover.from_json(message["hand"])  # type: ignore[arg-type]
        try:
            proc.become_account(hand.uid, hand.gid, hand.home, umask=hand.umask)
        except (CourierError, OSError) as e:
            log_line(hand.env, f"ERR: {hand.argv[0]}: {e}")
            try:
                os.write(1, hand.refusal.encode())
            except OSError:
                pass
            return False
        run_session(hand.argv, hand.env)
        try:
            os.chdir("/")  # the home is the next session's to enter, not kept busy
        except OSError:
            pass
        return True

    def exec_program(self, env: dict[str, str]) -> None:  # pragma: no cover - in the child
        if self._fast is None or self._module is None:
            super().exec_program(env)
            return
        gc.freeze()
        o = self.opts
        set_environ(env)
        sys.argv = [o.program, *o.args]
        code = 0
        try:
            if self._params is not None and env.get("COURIER_CONFDIR") == self._confdir_env:
                self._module.run(**self._params, cache=self.cache)
            else:
                self._module.main(args=list(o.args), prog_name=os.path.basename(o.program))
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os._exit(code)


def main() -> None:
    from courierpy.cli.couriertcpd import run

    sys.exit(run("couriertcpd", sys.argv[1:], server_class=FastTcpdServer))


if __name__ == "__main__":
    main()
