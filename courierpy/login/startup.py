"""What imaplogin and courierpop3login do before the dialogue starts.

Read the service's config files, build the TLS contexts the settings ask for
(implicit TLS, or STARTTLS/STLS on offer) and the authdaemon client and
failed-login delay for the connection.

Parsing the config files and building a TLS context cost far more than a
connection's dialogue, so :class:`StartupCache` keeps their results across
the connections of one couriertcpd (``courierpy.login.fasttcpd`` fills it
before it forks).  Nothing cached is trusted: every use reads the files again
and compares their bytes with those the result was made from, so a changed
file takes effect for the very next connection, as with Courier, which reads
everything anew in each exec'd login program.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from pathlib import Path

from courierpy.authclient import AuthClient, socket_path_from_config
from courierpy.config import ConfigFile, parse_shell_vars, read_shell_vars
from courierpy.errors import CourierError
from courierpy.login import faildelay
from courierpy.login.logline import log as log_line
from courierpy.tls import TLSConfigError, TlsSettings, server_context

__all__ = ["StartupCache", "auth_and_delay", "read_config", "tls_contexts"]


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _tls_files(s: TlsSettings) -> tuple[bytes | None, ...]:
    """The bytes of the files a context of *s* is made from (a trust directory is
    read by OpenSSL only while it verifies, so its name is enough)."""
    paths = [s.certfile, s.private_keyfile, s.dhparams]
    if s.verifypeer in ("PEER", "REQUIREPEER") and s.trustcerts:
        paths.append(s.trustcerts)
    return tuple(_read(p) if p and not os.path.isdir(p) else None for p in paths)


class StartupCache:
    """Parsed config files and TLS contexts, each valid while its files' bytes are unchanged.

    A cache miss (a file changed, or settings never seen) simply does the
    work as if there were no cache, and remembers the result.  A cache made
    with *previous* takes over the entries of that one which are still valid
    when first asked for them (so warming a new cache up drops the unused ones).
    """

    def __init__(self, previous: StartupCache | None = None) -> None:
        #: path → (the file's bytes, what they parse to)
        self._vars: dict[str, tuple[bytes, ConfigFile]] = {}
        #: (settings, starttls) → (the bytes of every file the context was made from, context)
        self._tls: dict[tuple[TlsSettings, bool], tuple[tuple[bytes | None, ...],
                                                        ssl.SSLContext]] = {}
        self._previous = previous

    def seal(self) -> None:
        """Let go of the previous cache."""
        self._previous = None

    def shell_vars(self, path: Path) -> ConfigFile:
        """:func:`courierpy.config.read_shell_vars` of *path*, from the cache when unchanged."""
        key = str(path)
        try:
            with open(key, "rb") as f:
                raw = f.read()
        except OSError:
            return read_shell_vars(path)  # its own error for a missing/unreadable file
        hit = self._vars.get(key)
        if hit is None and self._previous is not None:
            hit = self._previous._vars.get(key)
        if hit is None or hit[0] != raw:
            text = raw.decode("utf-8", errors="surrogateescape")
            hit = (raw, ConfigFile(path, parse_shell_vars(text, path=key)))
        self._vars[key] = hit
        return hit[1]

    def server_context(self, settings: Mapping[str, str], *,
                       starttls: bool = False) -> ssl.SSLContext:
        """:func:`courierpy.tls.server_context`, from the cache when neither the
        settings nor the certificate, key, DH parameter or trust files changed."""
        s = TlsSettings.from_config(settings)
        files = _tls_files(s)
        key = (s, starttls)
        hit = self._tls.get(key)
        if hit is None and self._previous is not None:
            hit = self._previous._tls.get(key)
        if hit is None or hit[0] != files:
            ctx = server_context(s, starttls=starttls)
            # No session tickets: a context built per connection (as Courier's) had
            # keys no other connection knew, so no ticket was ever of use; a shared
            # one must not start resuming sessions across connections.
            ctx.options |= ssl.OP_NO_TICKET
            ctx.num_tickets = 0
            hit = (files, ctx)
        self._tls[key] = hit
        return hit[1]


def read_config(config_dir: Path, names: tuple[str, ...],
                cache: StartupCache | None = None) -> dict[str, str]:
    """The keys of the named config files (missing or unreadable files are skipped)."""
    out: dict[str, str] = {}
    for name in names:
        try:
            out.update(cache.shell_vars(config_dir / name) if cache is not None
                       else read_shell_vars(config_dir / name))
        except (OSError, CourierError):
            continue
    return out


def _yes(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "yes", "y", "true", "on")


def tls_contexts(
    settings: Mapping[str, str], log_env: Mapping[str, str], *, implicit: bool,
    prefix: str, verb: str, cache: StartupCache | None = None, quiet: bool = False,
) -> tuple[ssl.SSLContext | None, ssl.SSLContext | None]:
    """``(implicit, starttls)`` contexts; *prefix* is ``IMAP`` or ``POP3``.

    A bad TLS setting for implicit TLS is fatal (``TLSConfigError``); for
    STARTTLS it is logged (unless *quiet*) and *verb* (``STARTTLS``/``STLS``)
    is not offered.
    """
    def build(starttls: bool) -> ssl.SSLContext:
        if cache is not None:
            return cache.server_context(settings, starttls=starttls)
        return server_context(settings, starttls=starttls)

    if implicit:
        return build(False), None
    if _yes(settings.get(f"{prefix}_STARTTLS")) and not _yes(settings.get(f"{prefix}_TLS")):
        try:
            return None, build(True)
        except TLSConfigError as e:
            if not quiet:
                log_line(log_env, f"ERR: {verb} not offered: {e}")
    return None, None


def auth_and_delay(
    config_dir: Path, env: Mapping[str, str], cache: StartupCache | None = None,
) -> tuple[AuthClient, faildelay.FailDelay]:
    """The authdaemon client (with the peer's address) and the failed-login delay."""
    path = (socket_path_from_config(config_dir) if cache is None
            else socket_path_from_config(config_dir, cache.shell_vars))
    auth = AuthClient(path, meta={k: env[k] for k in ("TCPREMOTEIP", "TCPREMOTEPORT")
                                  if k in env})
    return auth, faildelay.from_env(env, path.parent)

