"""The POP3 core without I/O: the same replies however the input is cut up.

A real Maildir under tmp_path (the core reads files through Pop3Mailbox); the
authenticator is a small function standing in for authdaemond's verdict.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from courierpy.authclient import AuthFailed, AuthTempFail
from courierpy.authproto import AuthInfo
from courierpy.pop3.mailbox import Pop3Mailbox
from courierpy.pop3.session import (
    Close,
    Log,
    Pop3Session,
    Pop3Settings,
    Sleep,
    StartTLS,
    encode_message,
    top_part,
)

MSGS = {
    "cur/1700000001.M1P1.h,S=36:2,": b"Subject: a\n\n.leading dot\nline two\n",
    "new/1700000002.M1P1.h": b"Subject: b\n\nbody\n",
}


def make_box(root: Path) -> Path:
    md = root / "Maildir"
    for sub in ("tmp", "new", "cur"):
        (md / sub).mkdir(parents=True, exist_ok=True)
    for rel, data in MSGS.items():
        (md / rel).write_bytes(data)
    return md


def authenticate(authtype: str, authdata: str) -> AuthInfo:
    user, secret = authdata.split("\n")[:2]
    if user == "temp":
        raise AuthTempFail("down")
    if authtype == "login" and secret == user + "pw":
        return AuthInfo(gid=1, uid=1, home="/", address=user,
                        options="disablepop3=1" if user == "carol" else None)
    raise AuthFailed("no")


def session(md: Path, **settings_kw: object) -> Pop3Session:
    return Pop3Session(Pop3Settings(fail_delay=0, **settings_kw),  # type: ignore[arg-type]
                       authenticate=authenticate, open_mailbox=lambda info: Pop3Mailbox.open(md))


def wire(actions: list[object]) -> bytes:
    return b"".join(a for a in actions if isinstance(a, bytes))


SCRIPT = (b"CAPA\r\nUSER erin\r\nPASS erinpw\r\nSTAT\r\nLIST\r\nTOP 1 1\r\nRETR 2\r\n"
          b"DELE 1\r\nUIDL\r\nRSET\r\nNOOP\r\nQUIT\r\n")


def run_chunks(md: Path, chunks: list[bytes]) -> bytes:
    s = session(md)
    out = wire(s.greeting())
    for c in chunks:
        out += wire(s.feed(c))
    return out


def test_whole_and_byte_by_byte_agree(tmp_path: Path) -> None:
    whole = run_chunks(make_box(tmp_path / "a"), [SCRIPT])
    bytewise = run_chunks(make_box(tmp_path / "b"), [SCRIPT[i:i + 1] for i in range(len(SCRIPT))])
    uidv = whole.split(b"UID2-")[1][:10]
    assert bytewise.replace(bytewise.split(b"UID2-")[1][:10], uidv) == whole
    assert whole.endswith(b"+OK Resurrected.\r\n+OK Yup.\r\n+OK Bye-bye.\r\n")
    assert b"+OK 20 octets follow.\r\nSubject: b\r\n\r\nbody\r\n.\r\n" in whole


@settings(max_examples=30, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=len(SCRIPT) - 1), max_size=12))
def test_any_split_gives_the_same_replies(tmp_path_factory: pytest.TempPathFactory,
                                          cuts: list[int]) -> None:
    root = tmp_path_factory.mktemp("split")
    points = [0, *sorted(set(cuts)), len(SCRIPT)]
    chunks = [SCRIPT[a:b] for a, b in zip(points, points[1:], strict=False)]
    out = run_chunks(make_box(root), chunks)
    assert out.count(b"\r\n+OK") + 1 >= 12
    assert out.endswith(b"+OK Bye-bye.\r\n")


def test_states_and_actions(tmp_path: Path) -> None:
    md = make_box(tmp_path)
    s = session(md)
    assert wire(s.feed(b"PASS x\r\n")) == b"-ERR USER/PASS required.\r\n"
    acts = s.feed(b"USER erin\r\nPASS bad\r\n")
    assert [type(a) for a in acts] == [bytes, Log, Sleep, bytes]
    assert acts[-1] == b"-ERR Login failed.\r\n"
    acts = s.feed(b"USER erin\r\nPASS erinpw\r\nQUIT\r\nSTAT\r\n")
    assert Log("LOGIN", "erin") in acts and isinstance(acts[-1], Close)
    assert s.finished  # nothing after QUIT is answered
    s = session(md)
    acts = s.feed(b"USER carol\r\nPASS carolpw\r\n")
    assert acts[-2] == b"-ERR POP3 access disabled for this account.\r\n"
    assert isinstance(acts[-1], Close)
    s = session(md)
    acts = s.feed(b"USER temp\r\nPASS x\r\n")
    assert acts[-2].startswith(b"-ERR Temporary problem") and isinstance(acts[-1], Close)


def test_stls_drops_what_was_pipelined_behind_it(tmp_path: Path) -> None:
    s = session(make_box(tmp_path), starttls=True)
    acts = s.feed(b"STLS\r\nUSER erin\r\nPASS erinpw\r\n")
    assert acts == [b"+OK Begin SSL/TLS negotiation now.\r\n", StartTLS()]
    s.tls_started()
    assert wire(s.feed(b"STLS\r\n")) == b"-ERR TLS support not available.\r\n"
    assert wire(s.feed(b"USER erin\r\n")) == b"+OK Password required.\r\n"


def test_sasl_plain_and_login(tmp_path: Path) -> None:
    md = make_box(tmp_path)
    s = session(md, sasl=("PLAIN", "LOGIN"))
    token = base64.b64encode(b"whoever\0erin\0erinpw")
    assert wire(s.feed(b"AUTH PLAIN " + token + b"\r\n")) == b"+OK logged in.\r\n"
    s = session(md, sasl=("PLAIN", "LOGIN"))
    out = wire(s.feed(b"AUTH LOGIN\r\n" + base64.b64encode(b"erin") + b"\r\n"
                      + base64.b64encode(b"erinpw") + b"\r\nSTAT\r\n"))
    assert out.endswith(b"+OK logged in.\r\n+OK 2 58\r\n")


def test_overlong_line(tmp_path: Path) -> None:
    s = session(make_box(tmp_path))
    out = wire(s.feed(b"USER " + b"x" * 9000))
    out += wire(s.feed(b"y" * 9000))
    out += wire(s.feed(b"zzz\r\nQUIT\r\n"))
    assert out == b"-ERR Invalid command.\r\n+OK Better luck next time.\r\n"


def test_message_encoding() -> None:
    assert encode_message(b".a\nb\n..c") == b"..a\r\nb\r\n...c\r\n"
    assert encode_message(b"x\r\n") == b"x\r\r\n"  # a stored CR stays, as Courier's
    assert top_part(b"H: 1\n\nl1\nl2\nl3\n", 2) == b"H: 1\n\nl1\nl2\n"
    assert top_part(b"H: 1\n\nl1\n", -1) == b"H: 1\n\nl1\n"
    assert top_part(b"\nbody\n", 0) == b"\nbody\n"  # a leading empty line is not the end


@settings(max_examples=200, deadline=None)
@given(data=st.lists(st.one_of(
    st.binary(max_size=40),
    st.sampled_from([b"USER erin\r\n", b"PASS erinpw\r\n", b"AUTH PLAIN\r\n", b"*\r\n",
                     b"STAT\r\n", b"LIST 1\r\n", b"RETR 2\r\n", b"TOP 1 -3\r\n", b"DELE 1\r\n",
                     b"UIDL x\r\n", b"RSET\r\n", b"\r\n", b"CAPA\r\n", b"UTF8\r\n"])),
    max_size=30))
def test_no_input_crashes_the_core(tmp_path_factory: pytest.TempPathFactory,
                                   data: list[bytes]) -> None:
    md = make_box(tmp_path_factory.mktemp("fuzz"))
    s = session(md, sasl=("PLAIN", "LOGIN", "CRAM-MD5"))
    s.greeting()
    for chunk in data:
        for action in s.feed(chunk):
            if isinstance(action, bytes):
                assert action.endswith(b"\r\n")
                assert action[:1] in (b"+", b"-")
    # nothing is deleted unless QUIT ran in the TRANSACTION state
    if b"QUIT" not in b"".join(data).upper():
        left = list((md / "cur").iterdir()) + list((md / "new").iterdir())
        assert len(left) == len(MSGS)
