"""pop3d's I/O loop: one POP3 connection on stdin/stdout, inetd style.

Two ways in, as with Courier:

* **Pre-authenticated** (``AUTHENTICATED`` set, as Courier's courierpop3login
  hands over): the process already runs as the account with its home as cwd;
  the Maildir is ``$MAILDIR`` or the first argument. Greeting ``+OK logged in.``
* **Self-authenticating** (no ``AUTHENTICATED``): the AUTHORIZATION state of
  courierpop3login, checked against authdaemond; after a login the process
  becomes the account (:func:`courierpy.proc.become_account`), moves to its
  home and opens its Maildir, without an exec.

The settings come from the ``pop3d`` and ``pop3d-ssl`` files of the config
directory, each key overridden by the environment (Courier's start scripts
source those files into the environment, so both ways agree). Log lines go to
stderr in Courier's words.

TLS (STLS, or ``POP3_TLS=1`` for an already encrypted pipe is *not* handled
here: couriertls/couriertcpd do that) runs through :mod:`ssl` memory BIOs, so
it works over sockets and pipes alike.

SIGTERM (couriertcpd's stop passes it on to every session) ends the session
at once, as a dropped connection: nothing is deleted, and, as Courier's pop3d,
which the signal kills, nothing more is logged or sent; the process ends by the
signal. Only while QUIT applies the deletions (the UPDATE state) it waits: the
unlinks and the maildirsize update finish first, so the Maildir is never left
half-updated.
"""

from __future__ import annotations

import os
import select
import signal
import ssl
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from courierpy.authclient import AuthClient
from courierpy.authproto import AuthInfo
from courierpy.config import ConfigError, read_shell_vars
from courierpy.pop3.mailbox import MailboxError, Pop3Mailbox, check_home, check_maildir
from courierpy.pop3.session import (
    DEFAULT_FAIL_DELAY,
    Close,
    Log,
    Pop3Session,
    Pop3Settings,
    Sleep,
    StartTLS,
    State,
    access_refusal,
)
from courierpy.proc import become_account
from courierpy.tls import TLSConfigError, server_context

__all__ = ["load_config", "serve", "settings_from", "tls_context"]

#: Idle time before an autologout (Courier's pop3d: 10 minutes).
DEFAULT_TIMEOUT = 600.0
TIMEOUT_ENV = "COURIERPY_POP3_TIMEOUT"
FAIL_DELAY_ENV = "COURIERPY_LOGIN_FAIL_DELAY"
#: Replies are sent once this much is ready (or the input read is answered).
_FLUSH = 256 * 1024
_KEYS = ("POP3AUTH", "POP3AUTH_TLS", "POP3_STARTTLS", "POP3_TLS", "POP3_TLS_REQUIRED",
         "TLS_CERTFILE", "TLS_PROTOCOL", "TLS_CIPHER_LIST", "MAILDIRPATH", "AUTHSERVICE",
         "MIME_UNICODE_MESSAGE_TYPE")


def load_config(config_dir: Path | None, environ: Mapping[str, str]) -> dict[str, str]:
    """pop3d then pop3d-ssl from *config_dir* (when present), then the environment wins.

    *config_dir* None: the environment alone, as for a session handed over by a
    login stage (Courier's courierpop3d reads no file: its start script put the
    configuration into the environment, and so does ours).
    """
    values: dict[str, str] = {}
    for name in ("pop3d", "pop3d-ssl") if config_dir is not None else ():
        path = config_dir / name
        if path.exists():
            values.update(read_shell_vars(path))
    for key, value in environ.items():
        if key in _KEYS or key.startswith(("POP3", "TLS_", "AUTHSERVICE")):
            values[key] = value
    return values


def _yes(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "yes", "y", "true", "on")


def settings_from(config: Mapping[str, str], environ: Mapping[str, str]) -> Pop3Settings:
    tls = _yes(config.get("POP3_TLS"))
    cert = config.get("TLS_CERTFILE", "")
    starttls = _yes(config.get("POP3_STARTTLS")) and bool(cert)
    try:
        delay = float(environ.get(FAIL_DELAY_ENV, DEFAULT_FAIL_DELAY))
    except ValueError:
        delay = DEFAULT_FAIL_DELAY
    return Pop3Settings(
        sasl=Pop3Settings.words(config.get("POP3AUTH")),
        sasl_tls=Pop3Settings.words(config.get("POP3AUTH_TLS")),
        starttls=starttls and not tls,
        tls=tls,
        tls_required=_yes(config.get("POP3_TLS_REQUIRED")) and not tls,
        fail_delay=delay,
        unicode_wrap=_unicode_wrap(config, environ),
        utf8=environ.get("UTF8", "0") == "1",
        log_deletions=(config.get("POP3_LOG_DELETIONS") or "0").strip() not in ("", "0"),
    )


def _unicode_wrap(config: Mapping[str, str], environ: Mapping[str, str]) -> str | None:
    """MIME_UNICODE_MESSAGE_TYPE, when Courier's pop3d would wrap with it.

    Behind a login stage (AUTHENTICATED) Courier wraps only when that stage
    passed ``UTF8`` (courierpop3login always does); logging in ourselves we
    are that stage.
    """
    content_type = environ.get("MIME_UNICODE_MESSAGE_TYPE", config.get(
        "MIME_UNICODE_MESSAGE_TYPE", ""))
    if not content_type:
        return None
    if environ.get("AUTHENTICATED") and "UTF8" not in environ:
        return None
    return content_type


def tls_context(config: Mapping[str, str]) -> ssl.SSLContext:
    """The STLS context from the TLS_* keys (courierpy.tls, shared with couriertcpd)."""
    return server_context(config, starttls=True)


class _Timeout(Exception):
    pass


class _Terminated(BaseException):
    """SIGTERM: unwinds the session from wherever it is (not an Exception: nothing
    on the way may take it for an I/O error)."""


class _StopOnTerm:
    """The SIGTERM handler of one session (see the module docstring)."""

    def __init__(self) -> None:
        self.session: Pop3Session | None = None
        self.pending = False  # arrived during UPDATE: end once the update is done

    def __call__(self, signum: int, frame: object) -> None:
        if self.session is not None and self.session.state is State.UPDATE:
            self.pending = True
            return
        raise _Terminated


class _Transport:
    """Blocking reads and writes on two fds, with an idle timeout and optional TLS."""

    def __init__(self, infd: int, outfd: int, timeout: float) -> None:
        self.infd, self.outfd, self.timeout = infd, outfd, timeout
        self._tls: ssl.SSLObject | None = None
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()

    def _raw_read(self) -> bytes:
        ready, _, _ = select.select([self.infd], [], [], self.timeout)
        if not ready:
            raise _Timeout
        try:
            return os.read(self.infd, 65536)
        except ConnectionResetError:
            return b""

    def _raw_write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            _, ready, _ = select.select([], [self.outfd], [], self.timeout)
            if not ready:
                raise _Timeout  # the client stopped reading
            n = os.write(self.outfd, view[:262144])
            view = view[n:]

    def _flush_tls(self) -> None:
        pending = self._out.read()
        if pending:
            self._raw_write(pending)

    def read(self) -> bytes:
        if self._tls is None:
            return self._raw_read()
        while True:
            try:
                return self._tls.read(65536)
            except ssl.SSLWantReadError:
                self._flush_tls()
                data = self._raw_read()
                if not data:
                    return b""
                self._in.write(data)
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    def write(self, data: bytes) -> None:
        if self._tls is None:
            self._raw_write(data)
            return
        self._tls.write(data)
        self._flush_tls()

    def start_tls(self, ctx: ssl.SSLContext) -> None:
        self._tls = ctx.wrap_bio(self._in, self._out, server_side=True)
        while True:
            try:
                self._tls.do_handshake()
                self._flush_tls()
                return
            except ssl.SSLWantReadError:
                self._flush_tls()
                data = self._raw_read()
                if not data:
                    raise ConnectionResetError("EOF during TLS handshake") from None
                self._in.write(data)


def _log(stream: TextIO, text: str) -> None:
    stream.write(text + "\n")
    stream.flush()


def serve(maildir_arg: str, config_dir: Path, *, environ: Mapping[str, str] | None = None,
          infd: int = 0, outfd: int = 1, log: TextIO | None = None) -> int:
    """Run one POP3 session; return the exit status (SIGTERM: see the module docstring)."""
    stop = _StopOnTerm()
    if threading.current_thread() is not threading.main_thread():
        return _serve(maildir_arg, config_dir, environ, infd, outfd, log, stop)
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return _serve(maildir_arg, config_dir, environ, infd, outfd, log, stop)
    except _Terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)  # end as Courier's pop3d: by the signal
        return 128 + signal.SIGTERM  # (not reached unless SIGTERM is blocked)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _serve(maildir_arg: str, config_dir: Path, environ: Mapping[str, str] | None, infd: int,
           outfd: int, log: TextIO | None, stop: _StopOnTerm) -> int:
    env = os.environ if environ is None else environ
    err = log or sys.stderr
    try:
        config = load_config(None if env.get("AUTHENTICATED") else config_dir, env)
    except ConfigError as exc:
        _log(err, f"ERR: {exc}")
        return 1
    settings = settings_from(config, env)
    if settings.starttls and not env.get("AUTHENTICATED"):
        try:
            tls_context(config)
        except (OSError, ssl.SSLError, TLSConfigError) as exc:
            _log(err, f"ERR: STLS not offered: {config.get('TLS_CERTFILE')}: {exc}")
            settings.starttls = False
    ip = env.get("TCPREMOTEIP", "127.0.0.1")  # Courier's defaults without couriertcpd
    port = env.get("TCPREMOTEPORT", "0")
    where = f"ip=[{ip}], port=[{port}]"
    try:
        timeout = float(env.get(TIMEOUT_ENV, DEFAULT_TIMEOUT))
    except ValueError:
        timeout = DEFAULT_TIMEOUT
    transport = _Transport(infd, outfd, timeout)

    if env.get("AUTHENTICATED"):
        user = env["AUTHENTICATED"]
        refusal = access_refusal(env.get("OPTIONS"), tls=settings.tls)
        if refusal is not None:
            transport.write(refusal)
            return 1
        path = env.get("MAILDIR") or maildir_arg
        try:
            check_home()
            check_maildir(path)
        except MailboxError as exc:
            if exc.event:
                _log(err, f"INFO: {exc.event}, user={user}, {where}")
            else:
                _log(err, str(exc))
            transport.write(exc.reply)
            return 0 if exc.event else 1
        _log(err, f"INFO: LOGIN, user={user}, {where}")
        try:
            mailbox = Pop3Mailbox.open(path)
        except MailboxError as exc:
            transport.write(exc.reply)
            return 0
        session = Pop3Session(settings, mailbox=mailbox, user=user)
    else:
        local_port = env.get("TCPLOCALPORT", "")
        service = env.get(f"AUTHSERVICE{local_port}") or "pop3"
        meta = {k: env[k] for k in ("TCPREMOTEIP", "TCPREMOTEPORT") if k in env}
        client = AuthClient.from_config(config_dir, meta=meta)

        def authenticate(authtype: str, authdata: str) -> AuthInfo:
            return client.auth(service, authtype, authdata)

        def open_mailbox(info: AuthInfo) -> Pop3Mailbox:
            become_account(info.uid, info.gid, info.home)
            path = info.maildir or env.get("MAILDIR") or maildir_arg
            check_home()
            check_maildir(path)
            return Pop3Mailbox.open(path)

        session = Pop3Session(settings, authenticate=authenticate, open_mailbox=open_mailbox)

    stop.session = session
    try:
        for action in session.greeting():
            assert isinstance(action, bytes)
            transport.write(action)
        disconnected: bool | str = _loop(session, transport, config, err, where, stop)
    except _Timeout:
        disconnected = "TIMEOUT"
    except (BrokenPipeError, ConnectionResetError):
        disconnected = True
    if session.mailbox is None and not disconnected:
        _log(err, f"INFO: LOGOUT, {where}")
    if session.mailbox is not None:
        event = disconnected if isinstance(disconnected, str) else (
            "DISCONNECTED" if disconnected else "LOGOUT")
        elapsed = int(time.monotonic() - session.started)
        stls = ", stls=1" if session.stls or settings.tls else ""
        _log(err, f"INFO: {event}, user={session.user}, {where}, top={session.top_bytes}, "
                  f"retr={session.retr_bytes}, rcvd={session.rcvd}, sent={session.sent}, "
                  f"time={elapsed}{stls}")
    return 0


def _loop(session: Pop3Session, transport: _Transport, config: Mapping[str, str],
          err: TextIO, where: str, stop: _StopOnTerm) -> bool:
    """Serve until QUIT (False) or disconnect/timeout (True)."""
    while True:
        data = transport.read()
        if not data:
            return True
        pending: list[bytes] = []
        size = 0
        for action in (a for step in session.steps(data) for a in step):
            if stop.pending:  # SIGTERM came during QUIT's update, which is now done
                raise _Terminated
            if isinstance(action, bytes):
                pending.append(action)
                size += len(action)
                if size >= _FLUSH:  # pipelined RETRs: send while answering the next
                    transport.write(b"".join(pending))
                    pending, size = [], 0
                continue
            if pending:
                transport.write(b"".join(pending))
                pending, size = [], 0
            if isinstance(action, Sleep):
                time.sleep(action.seconds)
            elif isinstance(action, Log):
                who = f"method={action.method}" if action.method else f"user={action.user}"
                what = f", filename={action.filename}" if action.filename else ""
                _log(err, f"INFO: {action.event}, {who}, {where}{what}")
            elif isinstance(action, StartTLS):
                transport.start_tls(tls_context(config))
                session.tls_started()
            elif isinstance(action, Close):
                return False
        if pending:
            transport.write(b"".join(pending))
