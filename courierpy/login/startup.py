"""What imaplogin and courierpop3login do before the dialogue starts.

Read the service's config files, build the TLS contexts the settings ask for
(implicit TLS, or STARTTLS/STLS on offer) and the authdaemon client and
failed-login delay for the connection.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from pathlib import Path

from courierpy.authclient import AuthClient, socket_path_from_config
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
    return (value or "").strip().lower() in ("1", "yes", "y", "true", "on")


def tls_contexts(
    settings: Mapping[str, str], log_env: Mapping[str, str], *, implicit: bool,
    prefix: str, verb: str,
) -> tuple[ssl.SSLContext | None, ssl.SSLContext | None]:
    """``(implicit, starttls)`` contexts; *prefix* is ``IMAP`` or ``POP3``.

    A bad TLS setting for implicit TLS is fatal (``TLSConfigError``); for
    STARTTLS it is logged and *verb* (``STARTTLS``/``STLS``) is not offered.
    """
    if implicit:
        return server_context(settings), None
    if _yes(settings.get(f"{prefix}_STARTTLS")) and not _yes(settings.get(f"{prefix}_TLS")):
        try:
            return None, server_context(settings, starttls=True)
        except TLSConfigError as e:
            log_line(log_env, f"ERR: {verb} not offered: {e}")
    return None, None


def auth_and_delay(
    config_dir: Path, env: Mapping[str, str]
) -> tuple[AuthClient, faildelay.FailDelay]:
    """The authdaemon client (with the peer's address) and the failed-login delay."""
    auth = AuthClient.from_config(
        config_dir, meta={k: env[k] for k in ("TCPREMOTEIP", "TCPREMOTEPORT") if k in env}
    )
    return auth, faildelay.from_env(env, socket_path_from_config(config_dir).parent)
