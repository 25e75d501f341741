"""CAPABILITY, NOOP, LOGOUT (any state) and ENABLE."""

from __future__ import annotations

from courierpy.imap import texts
from courierpy.imap.errors import Refused
from courierpy.imap.grammar import Command
from courierpy.imap.responses import Bye, Tagged


def capability(session, cmd: Command) -> None:
    """RFC 3501 6.1.1 — https://www.rfc-editor.org/rfc/rfc3501#section-6.1.1"""
    words = session.settings.capabilities(logged_in=session.account is not None)
    session.send(b"* CAPABILITY " + words.encode() + b"\r\n")
    session.ok(cmd.tag, texts.CAPABILITY_OK)


def noop(session, cmd: Command) -> None:
    """RFC 3501 6.1.2 — https://www.rfc-editor.org/rfc/rfc3501#section-6.1.2"""
    if session.selected is not None:
        session.selected.report(session, expunge=True)
    session.ok(cmd.tag, texts.NOOP_OK)


def logout(session, cmd: Command) -> None:
    """RFC 3501 6.1.3 — https://www.rfc-editor.org/rfc/rfc3501#section-6.1.3"""
    if session.account is not None:
        from courierpy.imap.commands.selected import empty_trash

        empty_trash(session.settings, session.account.maildir)  # at logout too, as Courier
    session.send(Bye(texts.LOGOUT_BYE))
    session.send(Tagged(cmd.tag, "OK", texts.LOGOUT_OK))
    session.closed = True
    session.logged_out = True


def enable(session, cmd: Command) -> None:
    """RFC 5161 — https://www.rfc-editor.org/rfc/rfc5161 (only UTF8=ACCEPT, RFC 6855)"""
    enabled = []
    for name in cmd.args.capabilities:
        if name.upper() == "UTF8=ACCEPT" and "UTF8=ACCEPT" not in enabled:
            enabled.append("UTF8=ACCEPT")
    if enabled:
        session.utf8 = True
        session.reader.utf8 = True
    session.send(b"* ENABLED" + b"".join(b" " + e.encode() for e in enabled) + b"\r\n")
    session.ok(cmd.tag, texts.ENABLE_OK)


def not_supported(session, cmd: Command) -> None:
    """STARTTLS without TLS configured (RFC 3501 6.2.1)."""
    raise Refused()


HANDLERS = {
    "CAPABILITY": capability,
    "NOOP": noop,
    "LOGOUT": logout,
    "ENABLE": enable,
}
