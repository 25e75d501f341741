"""imaplogin: the pre-authentication half of an IMAP connection.

The dialogue (greeting, CAPABILITY, NOOP, LOGOUT, STARTTLS, LOGIN,
AUTHENTICATE) is imapd's own session core (:mod:`courierpy.imap.session`):
:class:`LoginSession` only changes what a successful login does.  Instead of
opening the Maildir in this process it raises :class:`HandOff`, and
:func:`serve` then becomes the account and execs the session program with
Courier's environment (``AUTHENTICATED``, ``IMAPLOGINTAG``, ``OPTIONS``,
``PROTOCOL=IMAP``; ``IMAP_TLS=1`` when TLS is up), which answers the
``OK LOGIN Ok.`` itself.
"""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace

from courierpy import proc
from courierpy.authclient import AuthClient
from courierpy.errors import CourierError
from courierpy.imap import server as imap_server
from courierpy.imap import texts
from courierpy.imap.responses import Bye, Tagged
from courierpy.imap.session import Session, Settings
from courierpy.login import handoff
from courierpy.login.faildelay import FailDelay
from courierpy.login.logline import log as log_line

__all__ = ["HandOff", "LoginSession", "serve"]


class HandOff(BaseException):  # noqa: N818 - not an error: the login stage's way out
    """A successful login: leave the dialogue loop and start the session program.

    A BaseException so the session core's "unexpected error" guard lets it through.
    """

    def __init__(self, tag: str, userid: str, info: object) -> None:
        super().__init__(tag)
        self.tag, self.userid, self.info = tag, userid, info


class LoginSession(Session):
    """imapd's pre-authentication dialogue, ending in a :class:`HandOff`."""

    def __init__(self, settings: Settings, *, auth: AuthClient, service: str,
                 delay: FailDelay, env: Mapping[str, str]) -> None:
        super().__init__(settings, auth=auth, log=self._log)
        self.service = service
        self.delay = delay
        self.env = env
        self.last_user: str | None = None

    def _log(self, message: str, tail: str = "") -> None:
        if message.startswith("LOGIN,"):
            tail = "protocol=IMAP"
        log_line(self.env, message, tail)

    def password_login(self, tag: str, userid: str, password: str) -> None:
        from courierpy.authclient import AuthFailed

        assert self.auth is not None
        self.last_user = userid
        try:
            info = self.auth.login(self.service, userid, password)
        except AuthFailed:
            self.log(f"LOGIN FAILED, user={userid}")
            self.failed_login(tag)
            return
        self.authenticated(tag, userid, info)

    def failed_login(self, tag: str) -> None:
        self.sleep(self.delay.failed(self.env.get("TCPREMOTEIP", ""), self.last_user))
        self.last_user = None
        self.send(Tagged(tag, "NO", texts.LOGIN_FAILED))

    def authenticated(self, tag: str, userid: str, info: object) -> None:
        raise HandOff(tag, userid, info)


def settings_env(env: Mapping[str, str], config: Mapping[str, str]) -> dict[str, str]:
    """The session environment: the config files' keys, overridden by *env*.

    As Courier's start script does, ``IMAP_STARTTLS`` comes from
    ``IMAPDSTARTTLS`` when it is not set itself.
    """
    merged = dict(config)
    merged.update(env)
    if "IMAP_STARTTLS" not in merged and "IMAPDSTARTTLS" in merged:
        merged["IMAP_STARTTLS"] = merged["IMAPDSTARTTLS"]
    return merged


def serve(argv: Sequence[str], env: dict[str, str], auth: AuthClient, delay: FailDelay, *,
          implicit_tls: ssl.SSLContext | None = None,
          starttls: ssl.SSLContext | None = None,
          transfer: handoff.Transfer | None = None) -> int:
    """Run the pre-authentication dialogue on fds 0/1, then hand over to *argv*.

    *env* is the complete session environment (updated in place with the TLS
    state and the hand-over variables, then exported).  A plain-text session
    is first offered to *transfer*, when given.
    """
    started = time.monotonic()
    if implicit_tls is not None:
        env["IMAP_TLS"] = "1"
    settings = Settings.from_env(env)
    service = env.get(f"AUTHSERVICE{env.get('TCPLOCALPORT', '')}") or "imap"
    session = LoginSession(settings, auth=auth, service=service, delay=delay, env=env)
    if starttls is not None and settings.starttls and not settings.tls:
        session.tls_context = starttls
    elif settings.starttls and not settings.tls:
        session.settings = replace(settings, starttls=False, tls_required=False)
    # SIGTERM before the login: Courier's imaplogin says BYE and logs it, as imapd does
    stop = imap_server.StopSignal()
    stop.install()
    plain = imap_server._Plain(0, 1, settings.autologout, stop.fd)
    writer = imap_server._Writer(plain, settings.autologout)
    counts = {"rcvd": 0}
    try:
        try:
            if implicit_tls is not None:
                tls = imap_server._Tls(writer.transport, implicit_tls)
                tls.handshake()
                writer.transport = tls
            imap_server._serve(session, writer, counts, stop, plain)
        finally:
            stop.uninstall()  # the session program takes SIGTERM over
            plain.wake = -1
    except HandOff as done:
        writer.flush()
        return _hand_over(argv, env, session, writer, done, transfer)
    except (OSError, ssl.SSLError, imap_server.WriteTimeout):
        return 1
    if stop.requested and not session.logged_out:
        log_line(env, "NOTICE: Disconnected during shutdown by signal",
                 f"time={int(time.monotonic() - started)}")
    elif session.logged_out:
        log_line(env, "LOGOUT", f"rcvd={counts['rcvd']}, sent={writer.sent}")
    else:
        log_line(env, f"DEBUG: Disconnected, ip=[{env.get('TCPREMOTEIP', '')}], "
                      f"port=[{env.get('TCPREMOTEPORT', '')}], "
                      f"time={int(time.monotonic() - started)}")
    return 0


def _hand_over(argv: Sequence[str], env: dict[str, str], session: LoginSession,
               writer: imap_server._Writer, done: HandOff,
               transfer: handoff.Transfer | None) -> int:
    info = done.info
    name = getattr(info, "address", None) or done.userid
    tls_on = isinstance(writer.transport, imap_server._Tls)
    add = {
        "AUTHENTICATED": name,
        "IMAPLOGINTAG": done.tag,
        "OPTIONS": getattr(info, "options", None) or "",
        "PROTOCOL": "IMAP",
    }
    if tls_on:
        add.update(IMAP_TLS="1", IMAP_STARTTLS="NO", IMAP_TLS_REQUIRED="0")
    program = [argv[0], getattr(info, "maildir", None) or (argv[1] if len(argv) > 1 else
               env.get("MAILDIRPATH") or "Maildir"), *argv[2:]]
    env.update(add)
    os.environ.update(env)
    uid, gid = getattr(info, "uid", None), getattr(info, "gid", 0)
    home = getattr(info, "home", None)
    umask = proc.parse_umask(env.get("IMAP_UMASK"))
    refusal = Bye(texts.TEMPORARY_PROBLEM).to_bytes()
    if not tls_on and transfer is not None and transfer(handoff.Handover(
            program, dict(os.environ), uid, gid, home, umask, refusal.decode())):
        return 0
    tls = None
    if tls_on:
        t = writer.transport
        tls = handoff.TlsState(t.obj, t.incoming, t.outgoing)
    try:
        handoff.hand_over(program, {}, uid=uid, gid=gid, home=home, umask=umask, tls=tls)
    except (CourierError, OSError) as e:
        log_line(env, f"ERR: {program[0]}: {e}")
        writer.write(refusal)
        writer.flush()
        return 1
    return 0
