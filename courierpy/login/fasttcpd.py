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

A spare process forked ahead of each connection (and handed the connection
over a socket pair) was tried and measured: it did not shorten the greeting
of back-to-back connections and cost 1.5-2 ms more CPU per session (a child
alive beside the parent at all times makes the parent's own writes copy
pages), so each connection is still a fork at accept time, as Courier's.
"""

from __future__ import annotations

import gc
import importlib
import os
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
        if time.monotonic() - self._refreshed >= REFRESH_INTERVAL:
            self._refresh()

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
