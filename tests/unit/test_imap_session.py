"""The sans-I/O session core driven with plain bytes (no sockets, no processes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from courierpy.imap.session import Account, Session, Settings


def _session(tmp_path: Path, **env: str) -> Session:
    md = tmp_path / "Maildir"
    for sub in ("tmp", "new", "cur"):
        (md / sub).mkdir(parents=True, exist_ok=True)
    shipped = {  # as /etc/courier/imapd sets them
        "IMAP_CAPABILITY": "IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT "
                           "THREAD=REFERENCES SORT QUOTA IDLE",
        "IMAP_CAPABILITY_TLS": "IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT "
                               "THREAD=REFERENCES SORT QUOTA IDLE AUTH=PLAIN",
        "IMAP_KEYWORDS": "1", "IMAP_ACL": "1"}
    settings = Settings.from_env({"IMAP_MAILBOX_SANITY_CHECK": "0", **env}, shipped)
    s = Session(settings, account=Account("u", md, tmp_path))
    s.start()
    return s


def _out(s: Session) -> bytes:
    out = b""
    for item in s.take_output():
        out += item if isinstance(item, bytes) else b"".join(item)
    return out


def test_preauth_greeting_and_pipelining(tmp_path):
    s = _session(tmp_path)
    assert _out(s) == b"* PREAUTH Ready.\r\n"
    s.receive(b"a NOOP\r\nb CREATE INBOX.x\r\nc LOGOUT\r\n")
    assert _out(s) == (b"a OK NOOP completed\r\nb OK \"INBOX.x\" created.\r\n"
                       b"* BYE Courier-IMAP server shutting down\r\nc OK LOGOUT completed\r\n")
    assert s.closed


def test_byte_at_a_time(tmp_path):
    s = _session(tmp_path)
    _out(s)
    for b in b"a1 APPEND INBOX {5}\r\n":
        s.receive(bytes([b]))
    assert _out(s) == b"+ OK\r\n"
    for b in b"hello\r\n":
        s.receive(bytes([b]))
    assert _out(s).startswith(b"a1 OK [APPENDUID ")
    s.receive(b"a2 SELECT INBOX\r\n")
    assert b"* 1 EXISTS\r\n" in _out(s)


def test_login_state_and_violations(tmp_path):
    s = _session(tmp_path)
    _out(s)
    s.receive(b"a LOGIN x y\r\n")
    assert _out(s) == b"a BAD Error in IMAP command received by server.\r\n"
    for i in range(8):
        s.receive(b"b%d BOGUS\r\n" % i)
    assert not s.closed
    s.receive(b"c BOGUS\r\n")
    out = _out(s)
    assert out.endswith(b"* BYE [ALERT] Fatal error: TOO MANY CONSECUTIVE PROTOCOL "
                        b"VIOLATIONS: \r\n")
    assert s.closed


def test_idle_done(tmp_path):
    s = _session(tmp_path, IMAP_IDLE_TIMEOUT="1")
    _out(s)
    s.receive(b"s SELECT INBOX\r\n")
    _out(s)
    s.receive(b"i IDLE\r\n")
    assert _out(s) == b"+ entering idle mode\r\n"
    assert s.idling
    (tmp_path / "Maildir" / "new" / "1.M1P1.h,S=3").write_bytes(b"x\n\n")
    s.idle_poll()
    assert _out(s) == b"* 1 EXISTS\r\n* 1 RECENT\r\n"
    s.receive(b"DONE\r\n")
    assert _out(s) == b"i OK IDLE completed\r\n"
    assert not s.idling


@pytest.mark.parametrize("env,caps", [
    ({}, b"SORT QUOTA IDLE ACL ACL2=UNION ENABLE UTF8=ACCEPT"),
    # logged in: no STARTTLS/LOGINDISABLED (as Courier's imapd, checked against it)
    ({"IMAP_STARTTLS": "YES", "IMAP_TLS_REQUIRED": "1"},
     b"IDLE ACL ACL2=UNION ENABLE UTF8=ACCEPT"),
    ({"IMAP_TLS": "1"}, b"IDLE AUTH=PLAIN ACL ACL2=UNION ENABLE UTF8=ACCEPT"),
    ({"IMAP_ACL": "0", "IMAP_MOVE_EXPUNGE_TO_TRASH": "1", "OUTBOX": ".Outbox"},
     b"IDLE XCOURIEROUTBOX=INBOX.Outbox XMAGICTRASH ENABLE UTF8=ACCEPT"),
])
def test_capability_variants(tmp_path, env, caps):
    s = _session(tmp_path, **env)
    _out(s)
    s.receive(b"c CAPABILITY\r\n")
    first = _out(s).split(b"\r\n")[0]
    assert first.startswith(b"* CAPABILITY IMAP4rev1 ") and first.endswith(caps)


def test_starttls_offered_only_before_login(tmp_path):
    md = tmp_path / "Maildir"
    for sub in ("tmp", "new", "cur"):
        (md / sub).mkdir(parents=True)
    settings = Settings.from_env({"IMAP_STARTTLS": "YES", "IMAP_TLS_REQUIRED": "1",
                                  "IMAP_MAILBOX_SANITY_CHECK": "0"})
    assert settings.capabilities().endswith("STARTTLS LOGINDISABLED ENABLE UTF8=ACCEPT")
    assert settings.capabilities(logged_in=True) == "IMAP4rev1 ENABLE UTF8=ACCEPT"
    s = Session(settings)
    s.start()
    assert b"STARTTLS LOGINDISABLED" in _out(s)
    s.receive(b"c CAPABILITY\r\n")
    assert b"STARTTLS LOGINDISABLED" in _out(s)


def test_builtin_defaults_without_config(tmp_path):
    """Keys set nowhere: Courier's built-ins (bare IMAP4rev1, no keywords)."""
    md = tmp_path / "Maildir"
    for sub in ("tmp", "new", "cur"):
        (md / sub).mkdir(parents=True)
    s = Session(Settings.from_env({"IMAP_MAILBOX_SANITY_CHECK": "0"}),
                account=Account("u", md, tmp_path))
    s.start()
    _out(s)
    s.receive(b"a CAPABILITY\r\nb SELECT INBOX\r\n")
    out = _out(s)
    assert out.startswith(b"* CAPABILITY IMAP4rev1 ENABLE UTF8=ACCEPT\r\n")
    assert b"[PERMANENTFLAGS (\\Draft \\Answered" in out
    assert b'* OK [MYRIGHTS "acdilrsw"] ACL\r\n' in out
