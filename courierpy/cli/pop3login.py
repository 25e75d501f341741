"""courierpop3login: Courier's POP3 login stage (``courierpop3login PROGRAM [MAILDIR ...]``).

Run by couriertcpd with the connection on stdin/stdout: the POP3
AUTHORIZATION dialogue, USER/PASS and AUTH through authdaemond (service
``pop3`` or ``$AUTHSERVICE<local port>``), then the account's uid/gid, its
home and an exec of PROGRAM (Courier's or our courierpop3d).  See
man/imaplogin.8.
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
              help="Start TLS at once (pop3d-ssl, port 995) with the TLS_* keys.")
@click.argument("program", nargs=-1, required=True, type=click.UNPROCESSED)
def main(config_dir: Path, implicit_tls: bool, program: tuple[str, ...]) -> None:
    """Log one POP3 connection in, then exec PROGRAM as the account."""
    from courierpy.login import pop3

    config = read_config(config_dir, ("pop3d", "pop3d-ssl"))
    env = dict(os.environ)
    merged = {**config, **env}
    try:
        implicit, starttls = tls_contexts(
            merged, env, implicit=implicit_tls, prefix="POP3", verb="STLS"
        )
    except TLSConfigError as e:
        log_line(env, f"ERR: {e}")
        sys.exit(1)
    auth, delay = auth_and_delay(config_dir, env)
    sys.exit(pop3.serve(program, env, merged, auth, delay, implicit_tls=implicit,
                        starttls=starttls))


if __name__ == "__main__":
    main()
