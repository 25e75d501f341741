"""courierpop3login: the AUTHORIZATION half of a POP3 connection.

The dialogue (greeting, CAPA, USER/PASS, AUTH, STLS, QUIT) is pop3d's own
session core (:mod:`courierpy.pop3.session`); the mailbox opener given to it
only records the account, and :func:`serve` then becomes the account and
execs the session program (Courier's or our courierpop3d) with Courier's
environment (``AUTHENTICATED``, ``OPTIONS``, ``UTF8``; ``POP3_TLS=1`` when
TLS is up).  The session program greets with ``+OK logged in.`` and logs the
LOGIN line itself, as Courier's courierpop3d does.
"""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Mapping, Sequence

from courierpy.authclient import AuthClient
from courierpy.authproto import AuthInfo
from courierpy.errors import CourierError
from courierpy.login import handoff
from courierpy.login.faildelay import FailDelay
from courierpy.login.logline import log as log_line
from courierpy.pop3 import server as pop3_server
from courierpy.pop3.session import Close, Log, Pop3Session, Sleep, StartTLS

__all__ = ["serve"]


class _Accepted:
    """Stands in for the mailbox: the session is handed over, not served here."""


def serve(argv: Sequence[str], env: dict[str, str], config: Mapping[str, str],
          auth: AuthClient, delay: FailDelay, *,
          implicit_tls: ssl.SSLContext | None = None,
          starttls: ssl.SSLContext | None = None,
          transfer: handoff.Transfer | None = None) -> int:
    """Run the AUTHORIZATION dialogue on fds 0/1, then hand over to *argv* (a plain-text
    session is first offered to *transfer*, when given)."""
    cfg = dict(config)
    if implicit_tls is not None:
        cfg.update(POP3_TLS="1", POP3_STARTTLS="NO", POP3_TLS_REQUIRED="0")
        env.update(POP3_TLS="1", POP3_STARTTLS="NO", POP3_TLS_REQUIRED="0")
    settings = pop3_server.settings_from(cfg, env)
    if starttls is None:
        settings.starttls = False
    service = env.get(f"AUTHSERVICE{env.get('TCPLOCALPORT', '')}") or "pop3"
    accepted: list[AuthInfo] = []

    def authenticate(authtype: str, authdata: str) -> AuthInfo:
        return auth.auth(service, authtype, authdata)

    def open_mailbox(info: AuthInfo):  # type: ignore[no-untyped-def]
        accepted.append(info)
        return _Accepted()

    session = Pop3Session(settings, authenticate=authenticate, open_mailbox=open_mailbox)
    try:
        timeout = float(env.get(pop3_server.TIMEOUT_ENV, pop3_server.DEFAULT_TIMEOUT))
    except ValueError:
        timeout = pop3_server.DEFAULT_TIMEOUT
    transport = pop3_server._Transport(0, 1, timeout)
    tls_on = False
    last_user: str | None = None
    try:
        if implicit_tls is not None:
            transport.start_tls(implicit_tls)
            tls_on = True
        for action in session.greeting():
            transport.write(action)  # type: ignore[arg-type]
        while not accepted:
            data = transport.read()
            if not data:
                break
            out: list[bytes] = []
            closing = False
            # one command at a time: what the client pipelined behind a successful login is
            # not acted on here (as with Courier's courierpop3login, it is not answered)
            for step in session.steps(data):
                for action in step:
                    if isinstance(action, bytes):
                        out.append(action)
                        continue
                    if out:
                        transport.write(b"".join(out))
                        out = []
                    if isinstance(action, Log) and action.event == "LOGIN" and accepted:
                        break  # what follows ("+OK logged in.") is the session program's
                    if isinstance(action, Sleep):
                        time.sleep(delay.failed(env.get("TCPREMOTEIP", ""), last_user))
                    elif isinstance(action, Log):
                        if action.event == "LOGIN FAILED":
                            last_user = action.user or None
                            who = (f"method={action.method}" if action.method
                                   else f"user={action.user}")
                            log_line(env, f"LOGIN FAILED, {who}")
                    elif isinstance(action, StartTLS):
                        assert starttls is not None
                        transport.start_tls(starttls)
                        session.tls_started()
                        tls_on = True
                    elif isinstance(action, Close):
                        closing = True
                if accepted:  # not one more command processed here (not even read on)
                    break
            if accepted:
                break
            if out:
                transport.write(b"".join(out))
            if closing:
                return 0
    except (OSError, ssl.SSLError, pop3_server._Timeout):
        return 1
    if not accepted:
        return 0
    return _hand_over(argv, env, cfg, accepted[0], session, transport, tls_on, transfer)


def _hand_over(argv: Sequence[str], env: dict[str, str], cfg: Mapping[str, str],
               info: AuthInfo, session: Pop3Session, transport: pop3_server._Transport,
               tls_on: bool, transfer: handoff.Transfer | None) -> int:
    for key, value in cfg.items():
        env.setdefault(key, value)
    env.update(AUTHENTICATED=info.address or session.user, OPTIONS=info.options or "",
               UTF8="1" if session.utf8 else "0")
    if tls_on:
        env.update(POP3_TLS="1", POP3_STARTTLS="NO", POP3_TLS_REQUIRED="0")
    program = [argv[0], info.maildir or (argv[1] if len(argv) > 1 else
               env.get("MAILDIRPATH") or "Maildir"), *argv[2:]]
    os.environ.update(env)
    refusal = "-ERR Temporary problem, please try again later\r\n"
    if not tls_on and transfer is not None and transfer(handoff.Handover(
            program, dict(os.environ), info.uid, info.gid, info.home, None, refusal)):
        return 0
    tls = None
    if tls_on and transport._tls is not None:
        tls = handoff.TlsState(transport._tls, transport._in, transport._out)
    try:
        handoff.hand_over(program, {}, uid=info.uid, gid=info.gid, home=info.home,
                          umask=None, tls=tls)
    except (CourierError, OSError) as e:
        log_line(env, f"ERR: {program[0]}: {e}")
        transport.write(refusal.encode())
        return 1
    return 0
