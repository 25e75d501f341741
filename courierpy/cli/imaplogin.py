"""imaplogin: Courier's IMAP login stage (``imaplogin PROGRAM [MAILDIR ...]``).

Run by couriertcpd with the connection on stdin/stdout.  Speaks the IMAP
pre-authentication dialogue, checks LOGIN/AUTHENTICATE through authdaemond
(service ``imap``, or ``$AUTHSERVICE<local port>``), then becomes the
account and execs PROGRAM (Courier's or our imapd) with Courier's
environment.  See man/imaplogin.8.
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

CONFIG_FILES = ("imapd", "imapd-ssl")


def start(config_dir: Path, implicit_tls: bool, environ: Mapping[str, str],
          cache: StartupCache | None = None, *, quiet: bool = False,
          ) -> tuple[dict[str, str], ssl.SSLContext | None, ssl.SSLContext | None]:
    """The session environment and the ``(implicit, starttls)`` TLS contexts.

    Raises :class:`TLSConfigError` when implicit TLS cannot be set up.
    """
    from courierpy.login import imap

    env = imap.settings_env(environ, read_config(config_dir, CONFIG_FILES, cache))
    implicit, starttls = tls_contexts(env, env, implicit=implicit_tls, prefix="IMAP",
                                      verb="STARTTLS", cache=cache, quiet=quiet)
    return env, implicit, starttls


def run(config_dir: Path, implicit_tls: bool, program: Sequence[str],
        cache: StartupCache | None = None, transfer: Transfer | None = None) -> NoReturn:
    """The command, once its arguments are parsed: serve fds 0/1, then exit (a
    plain-text session is offered to *transfer*: see courierpy.login.workers)."""
    from courierpy.login import imap

    try:
        env, implicit, starttls = start(config_dir, implicit_tls, os.environ, cache)
    except TLSConfigError as e:
        log_line(os.environ, f"ERR: {e}")
        sys.exit(1)
    auth, delay = auth_and_delay(config_dir, env, cache)
    sys.exit(imap.serve(program, env, auth, delay, implicit_tls=implicit, starttls=starttls,
                        transfer=transfer))


def warm(cache: StartupCache, config_dir: Path, implicit_tls: bool,
         environ: Mapping[str, str]) -> None:
    """Fill *cache* with what a connection will need (errors are left to the connection)."""
    try:
        env, _, _ = start(config_dir, implicit_tls, environ, cache, quiet=True)
        auth_and_delay(config_dir, env, cache)
    except Exception:  # noqa: BLE001 - a bad config: each connection reports it
        pass


@click.command(context_settings={"ignore_unknown_options": True,
                                 "help_option_names": ["--help"]})
@config_dir_option
@click.option("--tls", "implicit_tls", is_flag=True,
              help="Start TLS at once (imapd-ssl, port 993) with the TLS_* keys.")
@click.argument("program", nargs=-1, required=True, type=click.UNPROCESSED)
def main(config_dir: Path, implicit_tls: bool, program: tuple[str, ...]) -> None:
    """Pre-authenticate one IMAP connection, then exec PROGRAM as the account."""
    run(config_dir, implicit_tls, program)


if __name__ == "__main__":
    main()
