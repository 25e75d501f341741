"""TLS server contexts from Courier's ``TLS_*`` settings (imapd-ssl, pop3d-ssl).

:func:`server_context` builds an :class:`ssl.SSLContext` from the settings a
server reads (a mapping such as :func:`courierpy.config.read_shell_vars`
returns); every problem (missing or unreadable certificate, a key that does
not match, a bad cipher list or protocol name, unreadable trust store) is a
:class:`TLSConfigError` raised right there, so a server reports it when it
starts, never at the first connection.

Keys used:

``TLS_CERTFILE``
    PEM with the certificate chain and, unless ``TLS_PRIVATE_KEYFILE`` is set,
    the private key.  ``$TLS_CERTFILE.<name>`` (and the matching
    ``$TLS_PRIVATE_KEYFILE.<name>``) is served to clients that ask for
    ``<name>`` through SNI, as Courier's virtual hosts.
``TLS_PROTOCOL`` / ``TLS_STARTTLS_PROTOCOL`` (the latter for STARTTLS/STLS)
    The lowest protocol: ``TLSv1``, ``TLSv1.1``, ``TLSv1.2`` (``++`` or ``+``
    suffixes, ``TLS1_2PLUS``-style spellings and ``SSL23``/``SSLv23`` too) or
    ``TLSv1.3``.  We never go below TLS 1.2: older values mean 1.2.
``TLS_CIPHER_LIST``
    OpenSSL cipher string for TLS 1.2 (TLS 1.3 suites are OpenSSL's defaults).
``TLS_DHPARAMS``
    DH parameters PEM, loaded if the file exists.
``TLS_VERIFYPEER`` and ``TLS_TRUSTCERTS``
    ``NONE`` (default), ``PEER`` (verify a client certificate if one is
    sent) or ``REQUIREPEER`` (require one), against ``TLS_TRUSTCERTS`` (a
    file or a hashed directory).
``TLS_PRIORITY``
    GnuTLS only; ignored (it cannot be mapped onto OpenSSL faithfully).
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

from courierpy.errors import EX_CONFIG, CourierError

__all__ = ["TLSConfigError", "TlsSettings", "minimum_version", "server_context"]


class TLSConfigError(CourierError):
    """The TLS settings cannot give a working server context."""

    exit_code = EX_CONFIG


_PROTOCOL = re.compile(r"^(?:tls|ssl)v?(\d+)?(?:[._](\d+))?(?:\+\+|\+|plus)?$")


def minimum_version(protocol: str | None) -> ssl.TLSVersion:
    """The lowest TLS version a ``TLS_PROTOCOL`` value allows (never below 1.2)."""
    text = (protocol or "").strip().lower().replace("-", "_")
    if not text:
        return ssl.TLSVersion.TLSv1_2
    m = _PROTOCOL.match(text)
    if not m:
        raise TLSConfigError(f"TLS_PROTOCOL: unknown protocol {protocol!r}")
    major, minor = m.group(1), m.group(2)
    if text.startswith("ssl"):  # SSL3, SSL23: "anything the library allows"
        return ssl.TLSVersion.TLSv1_2
    if major not in (None, "1"):
        raise TLSConfigError(f"TLS_PROTOCOL: unknown protocol {protocol!r}")
    if minor == "3":
        return ssl.TLSVersion.TLSv1_3
    if minor not in (None, "0", "1", "2"):
        raise TLSConfigError(f"TLS_PROTOCOL: unknown protocol {protocol!r}")
    return ssl.TLSVersion.TLSv1_2


@dataclass(frozen=True)
class TlsSettings:
    """The ``TLS_*`` keys that shape a server context."""

    certfile: str
    private_keyfile: str | None = None
    protocol: str | None = None
    starttls_protocol: str | None = None
    cipher_list: str | None = None
    dhparams: str | None = None
    verifypeer: str = "NONE"
    trustcerts: str | None = None

    @classmethod
    def from_config(cls, cfg: Mapping[str, str]) -> TlsSettings:
        certfile = cfg.get("TLS_CERTFILE", "")
        if not certfile:
            raise TLSConfigError("TLS_CERTFILE is not set")
        return cls(
            certfile=certfile,
            private_keyfile=cfg.get("TLS_PRIVATE_KEYFILE") or None,
            protocol=cfg.get("TLS_PROTOCOL") or None,
            starttls_protocol=cfg.get("TLS_STARTTLS_PROTOCOL") or None,
            cipher_list=cfg.get("TLS_CIPHER_LIST") or None,
            dhparams=cfg.get("TLS_DHPARAMS") or None,
            verifypeer=(cfg.get("TLS_VERIFYPEER") or "NONE").strip().upper(),
            trustcerts=cfg.get("TLS_TRUSTCERTS") or None,
        )


def _load_chain(ctx: ssl.SSLContext, certfile: str, keyfile: str | None) -> None:
    for path in (certfile, keyfile):
        if path is not None and not os.path.isfile(path):
            try:
                os.stat(path)
                reason = "not a regular file"
            except OSError as e:
                reason = e.strerror or str(e)
            raise TLSConfigError(f"{path}: {reason}")
    try:
        ctx.load_cert_chain(certfile, keyfile)
    except ssl.SSLError as e:
        raise TLSConfigError(
            f"{certfile}: not a usable certificate and private key ({e.reason or e})"
        ) from None
    except OSError as e:
        raise TLSConfigError(f"{certfile}: {e.strerror or e}") from None


def _base_context(s: TlsSettings, certfile: str, keyfile: str | None,
                  protocol: str | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = minimum_version(protocol)
    ctx.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE
    _load_chain(ctx, certfile, keyfile)
    if s.cipher_list:
        try:
            ctx.set_ciphers(s.cipher_list)
        except ssl.SSLError:
            raise TLSConfigError(
                f"TLS_CIPHER_LIST: no usable cipher in {s.cipher_list!r}"
            ) from None
    if s.dhparams and os.path.exists(s.dhparams):
        try:
            ctx.load_dh_params(s.dhparams)
        except (ssl.SSLError, OSError) as e:
            raise TLSConfigError(f"{s.dhparams}: not usable DH parameters ({e})") from None
    if s.verifypeer in ("PEER", "REQUIREPEER"):
        ctx.verify_mode = ssl.CERT_REQUIRED if s.verifypeer == "REQUIREPEER" else ssl.CERT_OPTIONAL
        trust = s.trustcerts or ""
        try:
            if os.path.isdir(trust):
                ctx.load_verify_locations(capath=trust)
            else:
                ctx.load_verify_locations(cafile=trust)
        except (ssl.SSLError, OSError) as e:
            raise TLSConfigError(f"TLS_TRUSTCERTS {trust!r}: {e}") from None
    elif s.verifypeer != "NONE":
        raise TLSConfigError(f"TLS_VERIFYPEER: unknown value {s.verifypeer!r}")
    return ctx


def server_context(cfg: Mapping[str, str] | TlsSettings, *,
                   starttls: bool = False) -> ssl.SSLContext:
    """A server context for implicit TLS, or for STARTTLS/STLS with *starttls*."""
    s = cfg if isinstance(cfg, TlsSettings) else TlsSettings.from_config(cfg)
    protocol = s.starttls_protocol if starttls and s.starttls_protocol else s.protocol
    ctx = _base_context(s, s.certfile, s.private_keyfile, protocol)
    vhosts: dict[str, ssl.SSLContext] = {}

    def pick(sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        if not name or "/" in name or name.startswith("."):
            return
        name = name.lower()
        if name not in vhosts:
            cert = f"{s.certfile}.{name}"
            if not os.path.isfile(cert):
                return
            key = f"{s.private_keyfile}.{name}" if s.private_keyfile else None
            try:
                vhosts[name] = _base_context(s, cert, key, protocol)
            except TLSConfigError:
                return
        sock.context = vhosts[name]

    ctx.sni_callback = pick  # type: ignore[assignment]
    return ctx
