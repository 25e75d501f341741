"""imaplogin: Courier's IMAP login stage (``imaplogin PROGRAM [MAILDIR ...]``).

Run by couriertcpd with the connection on stdin/stdout.  Speaks the IMAP
pre-authentication dialogue, checks LOGIN/AUTHENTICATE through authdaemond
(service ``imap``, or ``$AUTHSERVICE<local port>``), then becomes the
account and execs PROGRAM (Courier's or our imapd) with Courier's
environment.  See man/imaplogin.8.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from courierpy.authclient import AuthClient, socket_path_from_config
from courierpy.cli.options import config_dir_option
from courierpy.config import read_shell_vars
from courierpy.errors import CourierError
from courierpy.login import faildelay
from courierpy.login.logline import log as log_line
from courierpy.tls import TLSConfigError, server_context


def read_config(config_dir: Path, names: tuple[str, ...]) -> dict[str, str]:
    """The keys of the named config files (missing or unreadable files are skipped)."""
    out: dict[str, str] = {}
    for name in names:
        try:
            out.update(read_shell_vars(config_dir / name))
        except (OSError, CourierError):
            continue
    return out


def _yes(value: str | None) -> bool:
    return (value or "").strip().upper().startswith(("Y", "1"))


@click.command(context_settings={"ignore_unknown_options": True,
                                 "help_option_names": ["--help"]})
@config_dir_option
@click.option("--tls", "implicit_tls", is_flag=True,
              help="Start TLS at once (imapd-ssl, port 993) with the TLS_* keys.")
@click.argument("program", nargs=-1, required=True, type=click.UNPROCESSED)
def main(config_dir: Path, implicit_tls: bool, program: tuple[str, ...]) -> None:
    """Pre-authenticate one IMAP connection, then exec PROGRAM as the account."""
    from courierpy.login import imap

    env = imap.settings_env(os.environ, read_config(config_dir, ("imapd", "imapd-ssl")))
    implicit = starttls = None
    try:
        if implicit_tls:
            implicit = server_context(env)
        elif _yes(env.get("IMAP_STARTTLS")) and not _yes(env.get("IMAP_TLS")):
            try:
                starttls = server_context(env, starttls=True)
            except TLSConfigError as e:
                log_line(env, f"ERR: STARTTLS not offered: {e}")
    except TLSConfigError as e:
        log_line(env, f"ERR: {e}")
        sys.exit(1)
    auth = AuthClient.from_config(config_dir, meta={
        k: env[k] for k in ("TCPREMOTEIP", "TCPREMOTEPORT") if k in env})
    delay = faildelay.from_env(env, socket_path_from_config(config_dir).parent)
    sys.exit(imap.serve(program, env, auth, delay, implicit_tls=implicit, starttls=starttls))


if __name__ == "__main__":
    main()
