"""LOGIN, AUTHENTICATE, STARTTLS, and opening the account after a login."""

from __future__ import annotations

import base64
import binascii
import os
import stat

from courierpy.imap import texts
from courierpy.imap.errors import Fatal, Refused
from courierpy.imap.grammar import Command
from courierpy.imap.responses import Continuation, RespCode, Tagged


def _tls_required(session, tag: str) -> bool:
    s = session.settings
    if s.tls_required and not s.tls:
        session.send(Tagged(tag, "NO", texts.STARTTLS_REQUIRED))
        return True
    return False


def login(session, cmd: Command) -> None:
    """RFC 3501 6.2.3 — https://www.rfc-editor.org/rfc/rfc3501#section-6.2.3"""
    if _tls_required(session, cmd.tag):
        return
    session.password_login(cmd.tag, cmd.args.userid, cmd.args.password)


def _decode(session, tag: str, data: bytes) -> bytes | None:
    if data.strip() == b"*":
        session.failed_login(tag)  # the client cancelled: Courier answers as a failure
        return None
    try:
        if data == b"=":
            return b""
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        session.failed_login(tag)
        return None


def authenticate(session, cmd: Command) -> None:
    """RFC 3501 6.2.2, RFC 4959 (SASL-IR) — https://www.rfc-editor.org/rfc/rfc3501#section-6.2.2

    PLAIN (RFC 4616), LOGIN, CRAM-MD5/SHA1/SHA256 (RFC 2195): all are accepted
    whether advertised or not, as Courier does.
    """
    if _tls_required(session, cmd.tag):
        return
    tag = cmd.tag
    mech = cmd.args.mechanism.upper()
    ir = cmd.args.initial_response

    if mech == "PLAIN":
        def plain(data: bytes) -> None:
            raw = _decode(session, tag, data)
            if raw is None:
                return
            parts = raw.split(b"\0")
            if len(parts) != 3:
                session.failed_login(tag)
                return
            authz, user, pw = (p.decode("utf-8", "replace") for p in parts)
            if authz and authz != user:
                session.failed_login(tag)
                return
            session.password_login(tag, user, pw)

        if ir is not None:
            plain(ir)
        else:
            session.send(b"+ \r\n")
            session.expect_line(tag, plain)
    elif mech == "LOGIN":
        state: dict[str, str] = {}

        def password(data: bytes) -> None:
            raw = _decode(session, tag, data)
            if raw is not None:
                session.password_login(tag, state["user"], raw.decode("utf-8", "replace"))

        def username(data: bytes) -> None:
            raw = _decode(session, tag, data)
            if raw is None:
                return
            state["user"] = raw.decode("utf-8", "replace")
            session.send(Continuation("UGFzc3dvcmQ6"))
            session.expect_line(tag, password)

        if ir is not None:
            username(ir)
        else:
            session.send(Continuation("VXNlcm5hbWU6"))
            session.expect_line(tag, username)
    elif mech in ("CRAM-MD5", "CRAM-SHA1", "CRAM-SHA256"):
        challenge = base64.b64encode(session.cram_challenge().encode()).decode()

        def cram(data: bytes) -> None:
            raw = _decode(session, tag, data)
            if raw is None:
                return
            from courierpy.authclient import AuthFailed

            try:
                info = session.auth.cram("imap", mech.lower(), challenge,
                                         base64.b64encode(raw).decode())
            except AuthFailed:
                session.failed_login(tag)
                return
            user = raw.split(b" ", 1)[0].decode("utf-8", "replace")
            session.authenticated(tag, user, info)

        session.send(Continuation(challenge))
        session.expect_line(tag, cram)
    else:
        session.failed_login(tag)


class FatalAlert(Fatal):
    """``* BYE [ALERT] Fatal error: ...`` and close, as Courier's start-up checks."""

    code = RespCode.ALERT


def starttls(session, cmd: Command) -> None:
    """RFC 3501 6.2.1 — https://www.rfc-editor.org/rfc/rfc3501#section-6.2.1

    Offered when IMAP_STARTTLS=YES and TLS_CERTFILE holds a certificate and key;
    otherwise Courier's refusal.
    """
    s = session.settings
    if not s.starttls or s.tls or session.tls_context is None:
        raise Refused()
    session.send(Tagged(cmd.tag, "OK", texts.STARTTLS_OK))
    session.start_tls = session.tls_context


def open_account(session, account) -> None:
    """Courier imapd's start-up checks, then the trash clean-up (spec §4.1)."""
    home = account.home
    if home is not None:
        try:
            if os.stat(home).st_mode & stat.S_ISVTX:
                raise Fatal(texts.STICKY_HOME)
        except FileNotFoundError:
            pass
    try:
        st = os.stat(account.maildir)
    except OSError as e:
        raise FatalAlert(f"Fatal error: {e.strerror}: {e.strerror}") from None
    if session.settings.sanity_check and (st.st_uid != os.geteuid() or st.st_gid != os.getegid()):
        # sic: Courier ends the text with ": "
        raise FatalAlert("Fatal error: Account's mailbox directory is not owned by the "
                         "correct uid or gid: ")
    from courierpy.imap.commands import selected

    selected.empty_trash(session.settings, account.maildir)


HANDLERS = {
    "LOGIN": login,
    "AUTHENTICATE": authenticate,
    "STARTTLS": starttls,
}
