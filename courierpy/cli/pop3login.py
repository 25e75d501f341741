"""courierpop3login: Courier's POP3 login stage (``courierpop3login PROGRAM [MAILDIR ...]``).

Run by couriertcpd with the connection on stdin/stdout: the POP3
AUTHORIZATION dialogue, USER/PASS and AUTH through authdaemond (service
``pop3`` or ``$AUTHSERVICE<local port>``), then the account's uid/gid, its
home and an exec of PROGRAM (Courier's or our courierpop3d).  See
man/imaplogin.8.
"""

from __future__ import annotations

import os
import ssl
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

import click

from courierpy.cli.options import config_dir_option
from courierpy.login.handoff import Transfer
from courierpy.login.logline import log as log_line
from courierpy.login.startup import StartupCache, auth_and_delay, read_config, tls_contexts
from courierpy.tls import TLSConfigError

CONFIG_FILES = ("pop3d", "pop3d-ssl")


def start(config_dir: Path, implicit_tls: bool, environ: Mapping[str, str],
          cache: StartupCache | None = None, *, quiet: bool = False,
          ) -> tuple[dict[str, str], dict[str, str], ssl.SSLContext | None,
                     ssl.SSLContext | None]:
    """The environment, the merged settings and the ``(implicit, starttls)`` contexts.

    Raises :class:`TLSConfigError` when implicit TLS cannot be set up.
    """
    config = read_config(config_dir, CONFIG_FILES, cache)
    env = dict(environ)
    merged = {**config, **env}
    implicit, starttls = tls_contexts(merged, env, implicit=implicit_tls, prefix="POP3",
                                      verb="STLS", cache=cache, quiet=quiet)
    return env, merged, implicit, starttls


def run(config_dir: Path, implicit_tls: bool, program: Sequence[str],
        cache: StartupCache | None = None, transfer: Transfer | None = None) -> NoReturn:
    """The command, once its arguments are parsed: serve fds 0/1, then exit (a
    plain-text session is offered to *transfer*: see courierpy.login.workers)."""
    from courierpy.login import pop3

    try:
        env, merged, implicit, starttls = start(config_dir, implicit_tls, os.environ, cache)
    except TLSConfigError as e:
        log_line(os.environ, f"ERR: {e}")
        sys.exit(1)
    auth, delay = auth_and_delay(config_dir, env, cache)
    sys.exit(pop3.serve(program, env, merged, auth, delay, implicit_tls=implicit,
                        starttls=starttls, transfer=transfer))


def warm(cache: StartupCache, config_dir: Path, implicit_tls: bool,
         environ: Mapping[str, str]) -> None:
    """Fill *cache* with what a connection will need (errors are left to the connection)."""
    try:
        env = start(config_dir, implicit_tls, environ, cache, quiet=True)[0]
        auth_and_delay(config_dir, env, cache)
    except Exception:  # noqa: BLE001 - a bad config: each connection reports it
        pass


@click.command(context_settings={"ignore_unknown_options": True,
                                 "help_option_names": ["--help"]})
@config_dir_option
@click.option("--tls", "implicit_tls", is_flag=True,
              help="Start TLS at once (pop3d-ssl, port 995) with the TLS_* keys.")
@click.argument("program", nargs=-1, required=True, type=click.UNPROCESSED)
def main(config_dir: Path, implicit_tls: bool, program: tuple[str, ...]) -> None:
    """Log one POP3 connection in, then exec PROGRAM as the account."""
    run(config_dir, implicit_tls, program)


if __name__ == "__main__":
    main()
