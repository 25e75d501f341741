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

The spare: the process for the next connection is forked ahead of time, and
has already touched what the login stage needs (the cache check) when a
client connects.  Everything couriertcpd decides (access file, -maxprocs,
-maxperip, the environment) is still decided here at accept time; the
connection and its environment are then passed to the spare over a socket
pair (SCM_RIGHTS), which continues exactly as a child forked at that moment
would.  The spare counts toward no limit until it has a connection; it ends
when this process closes its end of the pair (stop, or this process dying).
"""

from __future__ import annotations

import array
import gc
import importlib
import os
import signal
import socket
import sys
import time
from types import ModuleType
from typing import Any

from courierpy.login.handoff import set_environ
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
#: the largest environment handed to the spare child (bytes)
_MAX_ENV = 1 << 18


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
        #: (pid, socket) of the process forked ahead for the next connection
        self._spare: tuple[int, socket.socket] | None = None
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
        if self._fast is None:
            return
        conn.close()  # before the next fork: no process but the connection's may hold it
        if time.monotonic() - self._refreshed >= REFRESH_INTERVAL:
            self._refresh()
        if self._spare is None and not self._stopping:
            self._fork_spare()

    # -- the spare child -----------------------------------------------------------

    def serve_forever(self) -> None:
        if self._fast is not None:
            self._fork_spare()
        super().serve_forever()

    def _spawnable(self) -> bool:
        """Our login stage is always started by :meth:`_spawn` (the spare, else a fork)."""
        return self._fast is not None or super()._spawnable()

    def _spawn(self, conn: socket.socket, env: dict[str, str]) -> int | None:
        if self._fast is None:  # pragma: no cover - _spawnable said so
            return super()._spawn(conn, env)
        pid = self._hand_to_spare(conn, env)
        if pid is not None:
            return pid
        try:
            pid = os.fork()
        except OSError as e:
            self._say(f"fork: {e.strerror}")
            return None
        if pid == 0:  # pragma: no cover - the child
            self._child(conn, env)
        return pid

    def _fork_spare(self) -> None:
        """Fork the next connection's process now, while no client waits for it."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid = os.fork()
        except OSError:
            mine.close()
            theirs.close()
            return
        if pid == 0:  # pragma: no cover - the spare
            mine.close()
            self._be_spare(theirs)
        theirs.close()
        self._spare = (pid, mine)

    def _be_spare(self, sock: socket.socket) -> None:  # pragma: no cover - in the spare
        """Wait for a connection and its environment, then be its child (never returns)."""
        try:
            gc.freeze()
            signal.set_wakeup_fd(-1)
            for sig in self._DEFAULT_SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            for s in self.listeners:
                s.close()
            # touch what the connection will need now, not while its client waits
            if self._module is not None and self._params is not None:
                self._module.warm(self.cache, self._params["config_dir"],
                                  self._params["implicit_tls"], self.environ)
            fds = array.array("i")
            msg, anc, flags, _addr = sock.recvmsg(_MAX_ENV, socket.CMSG_SPACE(fds.itemsize))
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
            sock.close()
            if not msg or len(fds) != 1 or flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                # the parent went away, or stops
                os._exit(0)
            env = _decode_env(msg)
            self._child(socket.socket(fileno=fds[0]), env)
        except BaseException:  # noqa: BLE001 - nothing may escape a forked child
            pass
        os._exit(1)

    def _hand_to_spare(self, conn: socket.socket, env: dict[str, str]) -> int | None:
        """Give *conn* and *env* to the spare; its pid, or None when there is none (any more)."""
        if self._spare is None:
            return None
        pid, sock = self._spare
        self._spare = None
        try:
            sock.sendmsg([_encode_env(env)], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                               array.array("i", [conn.fileno()]))])
        except OSError:  # it died (it is reaped as any child), or the environment is too large
            sock.close()
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return None
        sock.close()
        return pid

    def shutdown(self) -> None:
        if self._spare is not None:  # closing its socket ends it
            self._spare[1].close()
            self._spare = None
        super().shutdown()

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


def _encode_env(env: dict[str, str]) -> bytes:
    return b"\0".join(f"{k}={v}".encode("utf-8", "surrogateescape") for k, v in env.items())


def _decode_env(data: bytes) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in data.decode("utf-8", "surrogateescape").split("\0"):
        key, _, value = item.partition("=")
        env[key] = value
    return env


def main() -> None:
    from courierpy.cli.couriertcpd import run

    sys.exit(run("couriertcpd", sys.argv[1:], server_class=FastTcpdServer))


if __name__ == "__main__":
    main()
