"""couriertcpd with the fast path: our login stages start without a new interpreter.

    python -m courierpy.login.fasttcpd [couriertcpd options] PORT PROGRAM [ARGS...]

The same command as couriertcpd (courierpy.cli.couriertcpd), except that when
PROGRAM is our own ``imaplogin`` or ``courierpop3login`` the forked child does
not exec it: this process imported the login stage and the session code
before serving, so the child sets the environment and argv the exec would
have given and calls the command's entry point directly.  Any other program
is exec'd as Courier's couriertcpd does.  The login stage in turn runs our
imapd/pop3d in-process after its privilege drop (courierpy.login.handoff),
so a connection costs a fork instead of two Python start-ups.
"""

from __future__ import annotations

import importlib
import os
import sys

from courierpy.tcpd.server import TcpdServer

__all__ = ["FastTcpdServer", "main"]

_FAST = {"imaplogin": "courierpy.cli.imaplogin", "courierpop3login": "courierpy.cli.pop3login"}
#: imported before serving, so that each child finds them loaded
_PRELOAD = ("courierpy.cli.imaplogin", "courierpy.cli.pop3login", "courierpy.login.imap",
            "courierpy.login.pop3", "courierpy.cli.imapd", "courierpy.cli.pop3d",
            "courierpy.imap.commands", "courierpy.imap.mailbox", "courierpy.pop3.mailbox")


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
        if self._fast is not None:
            for module in _PRELOAD:
                try:
                    importlib.import_module(module)
                except ImportError:
                    pass

    def exec_program(self, env: dict[str, str]) -> None:  # pragma: no cover - in the child
        if self._fast is None:
            super().exec_program(env)
            return
        o = self.opts
        os.environ.clear()
        os.environ.update(env)
        sys.argv = [o.program, *o.args]
        code = 0
        try:
            importlib.import_module(self._fast).main(args=list(o.args),
                                                    prog_name=os.path.basename(o.program))
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
