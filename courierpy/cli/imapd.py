"""imapd: Courier's IMAP server on stdin/stdout (inetd style).

Pre-authenticated (Courier's imaplogin hands over ``AUTHENTICATED``,
``IMAPLOGINTAG``, ``OPTIONS``, cwd = home, argv[1] = the Maildir), or, without
``AUTHENTICATED``, answering the login itself through authdaemond (the socket
named in ``authdaemonrc`` of ``--config-dir``), then dropping to the account.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import click

from courierpy import proc
from courierpy.authclient import AuthClient
from courierpy.authproto import options_dict
from courierpy.cli.options import config_dir_option
from courierpy.config import read_shell_vars, resolve_config_dir
from courierpy.errors import CourierError
from courierpy.imap.server import serve
from courierpy.imap.session import Account, Session, Settings
from courierpy.tls import TLSConfigError, server_context


def _log(message: str, tail: str = "") -> None:
    """Courier's log line: ``INFO: WHAT, user=..., ip=[...], port=[...][, tail]``."""
    ip = os.environ.get("TCPREMOTEIP", "")
    port = os.environ.get("TCPREMOTEPORT", "")
    if message.startswith("LOGIN,"):
        tail = "protocol=IMAP"
    level = "INFO"
    if message.startswith("NOTICE: "):
        level, message = "NOTICE", message.removeprefix("NOTICE: ")
    if message.startswith("ERR:"):
        sys.stderr.write(message + "\n")
    else:
        sys.stderr.write(f"{level}: {message}, ip=[{ip}], port=[{port}]"
                         + (f", {tail}" if tail else "") + "\n")
    sys.stderr.flush()


def _config(config_dir: Path) -> dict[str, str]:
    path = config_dir / "imapd"
    try:
        return dict(read_shell_vars(path))
    except (OSError, CourierError):
        return {}


def run(config_dir: Path, maildir: str | None) -> NoReturn:
    """Serve one IMAP connection on stdin/stdout, the arguments parsed; exits."""
    user = os.environ.get("AUTHENTICATED")
    # Handed over by a login stage, the environment is the whole configuration, as
    # for Courier's imapd (its start-up script sources /etc/courier/imapd into it);
    # doing its own login, imapd also reads the keys missing from it in DIR/imapd.
    settings = Settings.from_env(os.environ, None if user else _config(config_dir))
    maildir_arg = maildir or settings.maildirpath
    umask = proc.parse_umask(settings.umask)
    if user:
        os.umask(umask)
        home = Path.cwd()
        account = Account(user, home / maildir_arg, home,
                          options=options_dict(os.environ.get("OPTIONS", "")))
        session = Session(settings, account=account,
                          login_tag=os.environ.get("IMAPLOGINTAG") or None, log=_log)
        _log(f"LOGIN, user={user}")  # as Courier's imapd: the login stage does not log it
    else:
        def become(info) -> Account:  # type: ignore[no-untyped-def]
            proc.become_account(info.uid, info.gid, info.home, umask=umask)
            home = Path(info.home)
            md = Path(info.maildir) if info.maildir else home / maildir_arg
            if not md.is_absolute():
                md = home / md
            return Account(info.address or "", md, home, info.uid, info.gid,
                           options=info.options_dict())

        session = Session(settings, auth=AuthClient.from_config(config_dir), become=become,
                          log=_log)
        if settings.starttls:
            try:
                session.tls_context = server_context(settings.extra, starttls=True)
            except TLSConfigError as e:  # as the login stage: logged, STARTTLS refused
                _log(f"ERR: STARTTLS not offered: {e}")
    # the command handlers (and the Maildir code) loaded before the first command,
    # as courierpy.login.fasttcpd preloads them: not on the first SELECT's time
    import courierpy.imap.commands  # noqa: F401
    sys.exit(serve(session))


def run_argv(args: Sequence[str]) -> bool:
    """Run with the words after the program name if they are plain (at most a
    Maildir, no option), as a login stage hands over, without click; else False."""
    if len(args) > 1 or any(a.startswith("-") for a in args):
        return False
    run(resolve_config_dir(None, os.environ), args[0] if args else None)


@click.command(context_settings={"ignore_unknown_options": True})
@config_dir_option
@click.argument("maildir", required=False)
def main(config_dir: Path, maildir: str | None) -> None:
    """Serve one IMAP connection on stdin/stdout."""
    run(config_dir, maildir)


if __name__ == "__main__":
    main()
