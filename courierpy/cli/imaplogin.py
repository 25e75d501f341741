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

from courierpy.cli.options import config_dir_option
from courierpy.login.logline import log as log_line
from courierpy.login.startup import auth_and_delay, read_config, tls_contexts
from courierpy.tls import TLSConfigError


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
    try:
        implicit, starttls = tls_contexts(
            env, env, implicit=implicit_tls, prefix="IMAP", verb="STARTTLS"
        )
    except TLSConfigError as e:
        log_line(env, f"ERR: {e}")
        sys.exit(1)
    auth, delay = auth_and_delay(config_dir, env)
    sys.exit(imap.serve(program, env, auth, delay, implicit_tls=implicit, starttls=starttls))

if __name__ == "__main__":
    main()
