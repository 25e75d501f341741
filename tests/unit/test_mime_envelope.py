"""ENVELOPE: address lists and envelope members, in Courier's conventions.

The expected tuples for the tricky cases were read off the real Courier imapd
(the oracle test re-checks them on the corpus); simple address lists are also
checked against the standard library's ``email.utils.getaddresses``.
"""

from __future__ import annotations

import email.utils

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courierpy.mime.envelope import Envelope, parse_address_list
from courierpy.mime.headers import HeaderBlock
from courierpy.mime.imapwire import envelope

NIL = None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alice@example.com", [(NIL, NIL, "alice", "example.com")]),
        ('"Alice A." <alice@example.com>', [("Alice A.", NIL, "alice", "example.com")]),
        ("Alice  Example <a@x>", [("Alice Example", NIL, "a", "x")]),
        ("A\tB  (c)  C <a@x>", [("A B (c) C", NIL, "a", "x")]),
        # Quoted strings mixed with words, or dots: as written, outer quotes dropped.
        ('"A"  B <a@x>', [('A"  B', NIL, "a", "x")]),
        ('A  "B" <a@x>', [('A  "B', NIL, "a", "x")]),
        ("A  B. C <a@x>", [("A  B. C", NIL, "a", "x")]),
        ("A B", [(NIL, NIL, "A", ""), (NIL, NIL, "B", "")]),
        ("<sender@x.org>", [(NIL, NIL, "sender", "x.org")]),
        ('"" <empty@x>', [(NIL, NIL, "empty", "x")]),
        ("nodomain", [(NIL, NIL, "nodomain", "")]),
        ("(comment) plain@example.com (Plain Guy)", [("Plain Guy", NIL, "plain", "example.com")]),
        ("Name (c) <a@b>", [("Name (c)", NIL, "a", "b")]),
        ('"Doe, John \\"JD\\"" <j@x>', [('Doe, John "JD"', NIL, "j", "x")]),
        ('"with \\\\ back" <q@x>', [("with \\ back", NIL, "q", "x")]),
        ("=?UTF-8?B?w4lyaWM=?= <e@x>", [("=?UTF-8?B?w4lyaWM=?=", NIL, "e", "x")]),
        ("a@b, , c@d,", [(NIL, NIL, "a", "b"), (NIL, NIL, "c", "d")]),
        ('"john doe"@example.com', [(NIL, NIL, '"john doe"', "example.com")]),
        # RFC 3501 groups and source routes (Courier differs: docs/differences.md).
        (
            "Team: carol@x.org, Dan <dan@y.org>;, solo@e.com",
            [
                (NIL, NIL, "Team", NIL),
                (NIL, NIL, "carol", "x.org"),
                ("Dan", NIL, "dan", "y.org"),
                (NIL, NIL, NIL, NIL),
                (NIL, NIL, "solo", "e.com"),
            ],
        ),
        ("undisclosed-recipients:;", [(NIL, NIL, "undisclosed-recipients", NIL), (NIL,) * 4]),
        ("Open group: a@b", [(NIL, NIL, "Open group", NIL), (NIL, NIL, "a", "b"), (NIL,) * 4]),
        ("<@r1.ex,@r2.ex:user@host>", [(NIL, "@r1.ex,@r2.ex", "user", "host")]),
        # Junk gives something.
        ('"unterminated', [(NIL, NIL, '"unterminated"', "")]),
        ("(unterminated comment", []),
        ("", []),
    ],
)
def test_parse_address_list(text: str, expected: list) -> None:
    assert parse_address_list(text) == expected


@given(st.text(alphabet='<>()",;:@\\ ab\t', max_size=30))
def test_junk_never_raises(text: str) -> None:
    for addr in parse_address_list(text):
        assert len(addr) == 4


_atom = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
_name = st.lists(_atom, min_size=1, max_size=3).map(" ".join)
_addr = st.tuples(_atom, _atom, _atom).map(lambda t: f"{t[0]}@{t[1]}.{t[2]}")
_mailbox = st.one_of(
    _addr.map(lambda a: ("", a)),
    st.tuples(_name, _addr),
)


@given(st.lists(_mailbox, min_size=1, max_size=5), st.booleans())
def test_simple_lists_agree_with_getaddresses(boxes: list, quote_names: bool) -> None:
    parts = []
    for name, addr in boxes:
        if name:
            shown = f'"{name}"' if quote_names else name
            parts.append(f"{shown} <{addr}>")
        else:
            parts.append(addr)
    text = ", ".join(parts)
    ours = [
        (name or "", f"{mailbox}@{host}") for name, _adl, mailbox, host in parse_address_list(text)
    ]
    assert ours == email.utils.getaddresses([text])


def test_envelope_members() -> None:
    data = (
        b"Date: Mon, 1 Jan 2024 10:00:00 +0000\n"
        b"Subject: folded\n  subject\n"
        b"Subject: second\n"
        b"From: A <a@x>\n"
        b"To: b@y\n"
        b"In-Reply-To: <p@x>\n"
        b"Message-ID: <m@x>\n"
        b"\n"
    )
    env = Envelope.from_header(HeaderBlock(data))
    assert env.date == "Mon, 1 Jan 2024 10:00:00 +0000"
    assert env.subject == "folded  subject, second"  # joined by ",", then stripped
    assert env.from_ == env.sender == env.reply_to == (("A", NIL, "a", "x"),)
    assert env.to == ((NIL, NIL, "b", "y"),)
    assert env.cc == env.bcc == ()
    assert env.in_reply_to == "<p@x>" and env.message_id == "<m@x>"
    assert envelope(env) == (
        b'("Mon, 1 Jan 2024 10:00:00 +0000" "folded  subject, second" (("A" NIL "a" "x")) '
        b'(("A" NIL "a" "x")) (("A" NIL "a" "x")) ((NIL NIL "b" "y")) NIL NIL "<p@x>" "<m@x>")'
    )
    assert Envelope.from_json(env.to_json()) == env


def test_repeated_fields_join_with_a_comma_before_stripping() -> None:
    env = Envelope.from_header(HeaderBlock(b"Subject:    a   \nSubject:    b   \n\n"))
    assert env.subject == "a   ,    b"


def test_envelope_of_empty_header() -> None:
    env = Envelope.from_header(HeaderBlock(b"\nbody"))
    assert envelope(env) == b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
    empty_subject = Envelope.from_header(HeaderBlock(b"Subject: \n\n"))
    assert empty_subject.subject is None


def test_envelope_8bit_text_becomes_encoded_words() -> None:
    data = (
        b"Subject: caf\xc3\xa9 cr\xc3\xa8me  br\xc3\xbbl\xc3\xa9e end \xff\xfe bad\n"
        b"From: J\xc3\xb6rg <j@x>\n\n"
    )
    wire = envelope(Envelope.from_header(HeaderBlock(data)))
    # Exactly what the real Courier imapd sends for this header.
    assert wire.startswith(
        b'(NIL "=?utf-8?B?Y2Fmw6kgY3LDqG1lICBicsO7bMOpZQ==?= end  bad" '
        b'(("=?utf-8?B?SsO2cmc=?=" NIL "j" "x"))'
    )
