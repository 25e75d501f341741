"""courierpy.mime.imapwire: wire forms and sections, as tables.

Expected BODYSTRUCTURE strings are what the real Courier imapd sends for the
same messages (captured from it; the oracle test re-checks them live).
"""

from __future__ import annotations

import json

import pytest

from courierpy.mime.imapwire import (
    BadSection,
    Section,
    body,
    bodystructure,
    encode_8bit,
    fetch_section,
    open_message,
    parse_section,
    quote,
)
from courierpy.mime.tree import parse
from tests.unit.test_mime_corpus import CORPUS


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (None, b"NIL"),
        ("", b'""'),
        ("plain", b'"plain"'),
        ('with "quotes" and \\', b'"with \\"quotes\\" and \\\\"'),
        ("two\r\nlines", b"{10}\r\ntwo\r\nlines"),
        (b"caf\xc3\xa9", b"{5}\r\ncaf\xc3\xa9"),
        ("nul\x00", b"{4}\r\nnul\x00"),
    ],
)
def test_quote(value, wire: bytes) -> None:
    assert quote(value) == wire


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("ascii only", "ascii only"),
        (None, None),
        ("8bit caf\xc3\xa9", "8bit =?utf-8?B?Y2Fmw6k=?="),
        ("f\xc3\xa9.txt", "=?utf-8?Q?f=C3=A9.txt?="),
        ("<\xc3\xa9@x>", "<=?utf-8?B?w6lAeA==?=>"),
        ("d\xc3\xa9sc", "=?utf-8?B?ZMOpc2M=?="),
        ("end \xff\xfe bad", "end  bad"),
        (
            '\xc3\xa9 a"b (c) d=e f?g h_i j,k l:m [o] \\p @q .r s;t ( ) " x',
            "=?utf-8?B?w6kgYSJi?= (c) =?utf-8?B?ZD1lIGY/ZyBoX2k=?= j,k l:m [o] \\p @q .r s;t"
            " ( ) =?utf-8?Q?=22?= x",
        ),
        ("a  \xc3\xa9  \xc3\xa9\t\xc3\xa9 b", "a  =?utf-8?B?w6kgIMOpCcOp?= b"),
        ("\xc3\xa9 <n> a<b c>d <", "=?utf-8?B?w6k=?= <n> a<b c>d <"),
    ],
)
def test_encode_8bit_like_courier(text, encoded) -> None:
    assert encode_8bit(text) == encoded


@pytest.mark.parametrize(
    ("name", "structure"),
    [
        ("plain", b'("text" "plain" NIL NIL NIL "8bit" 38 4 NIL NIL NIL)'),
        (
            "alternative",
            b'(("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 20 0 NIL NIL NIL)'
            b'("text" "html" ("charset" "utf-8") NIL NIL "7bit" 45 1 NIL NIL NIL) "alternative" '
            b'("boundary" "=_alt_01") NIL NIL)',
        ),
        (
            "params_2231",
            b'("application" "octet-stream" ("name*0" "long" "name*1" "name.txt" "x*" '
            b'"utf-8\'\'%C3%A9" "quoted" "a \\"q\\" b") NIL NIL "base64" 6 NIL '
            b'("attachment" ("filename*" "utf-8\'\'a%20b")) NIL)',
        ),
        (
            "missing_boundary",
            b'("multipart" "mixed" ("boundary" "zz") NIL NIL "8bit" 24 NIL NIL NIL)',
        ),
        (
            "no_mime_version",
            b'("text" "plain" NIL "<cid@x>" "described" "base64" 18 4 "bWQ1" NIL NIL)',
        ),
        ("junk_headers", b'("text" "plain" NIL NIL NIL "8bit" 6 1 NIL NIL NIL)'),
        ("no_body", b'("text" "plain" NIL NIL NIL "8bit" 0 0 NIL NIL NIL)'),
    ],
)
def test_bodystructure_table(name: str, structure: bytes) -> None:
    assert bodystructure(parse(CORPUS[name])) == structure


def test_body_has_no_extension_data() -> None:
    tree = parse(CORPUS["mixed_attachments"])
    assert body(tree) == (
        b'((("text" "plain" ("charset" "us-ascii") NIL NIL "8bit" 13 0)'
        b'("text" "html" ("charset" "us-ascii") NIL NIL "8bit" 20 0) "alternative")'
        b'("application" "pdf" ("name" "report.pdf") "<report@example.com>" '
        b'"Quarterly report" "base64" 26)'
        b'("image" "png" ("name" "pic.png") NIL NIL "base64" 12) "mixed")'
    )


@pytest.mark.parametrize(
    ("spec", "section", "wire"),
    [
        ("", Section(), b""),
        ("HEADER", Section((), "HEADER"), b"HEADER"),
        ("text", Section((), "TEXT"), b"TEXT"),
        ("1.2", Section((1, 2)), b"1.2"),
        ("1.2.MIME", Section((1, 2), "MIME"), b"1.2.MIME"),
        ("3.TEXT", Section((3,), "TEXT"), b"3.TEXT"),
        (
            "HEADER.FIELDS (From Subject)",
            Section((), "HEADER.FIELDS", ("From", "Subject")),
            b'HEADER.FIELDS ("From" "Subject")',
        ),
        (
            '2.HEADER.FIELDS.NOT ("X-A")',
            Section((2,), "HEADER.FIELDS.NOT", ("X-A",)),
            b'2.HEADER.FIELDS.NOT ("X-A")',
        ),
    ],
)
def test_parse_section(spec: str, section: Section, wire: bytes) -> None:
    parsed = parse_section(spec)
    assert parsed == section
    assert parsed.wire() == wire


@pytest.mark.parametrize(
    "spec",
    ["MIME", "0", "1.0.TEXT", "BOGUS", "1.FOO", "HEADER.FIELDS", "HEADER.FIELDS ()", "TEXT (a)"],
)
def test_bad_sections(spec: str) -> None:
    with pytest.raises(BadSection):
        parse_section(spec)


def _fetch(name: str, spec: str, partial=None) -> bytes:
    data = CORPUS[name]
    got = fetch_section(data, parse(data), parse_section(spec), partial)
    out = got.read()
    assert len(out) == got.size
    return out


def test_sections_of_a_multipart_message() -> None:
    name = "mixed_attachments"
    data = CORPUS[name]
    crlf = data.replace(b"\n", b"\r\n")
    assert _fetch(name, "") == crlf
    head, _, text = crlf.partition(b"\r\n\r\n")
    assert _fetch(name, "HEADER") == head + b"\r\n\r\n"
    assert _fetch(name, "TEXT") == text
    assert _fetch(name, "1.1") == b"See attached."
    assert _fetch(name, "1.2.MIME") == b"Content-Type: text/html; charset=us-ascii\r\n\r\n"
    # MIME keeps only Content-* (X-Attachment-Id is dropped), as Courier does.
    assert b"X-Attachment-Id" not in _fetch(name, "2.MIME")
    assert _fetch(name, "2") == b"JVBERi0xLjQK\r\nJVBERi0xLjQK"
    assert _fetch(name, "HEADER.FIELDS (cc SUBJECT)") == (
        b"Cc: frank@example.com\r\nSubject: Report and pictures\r\n\r\n"
    )
    assert _fetch(name, "HEADER.FIELDS (X-None)") == b"\r\n"
    assert _fetch(name, "4") == b"" and _fetch(name, "1.1.1") == b""


def test_sections_of_encapsulated_messages() -> None:
    assert _fetch("nested_rfc822", "2.HEADER").startswith(b"From: Original Sender")
    assert _fetch("nested_rfc822", "2.1") == b"original text"
    assert _fetch("nested_rfc822", "2.TEXT").endswith(b"--B--")
    assert _fetch("nested_simple", "2.TEXT") == b"line1\r\n\r\n"
    # A top-level message/rfc822: part 1 is the encapsulated message's body.
    assert _fetch("toplevel_rfc822", "1") == b"inner body\r\n"
    assert _fetch("toplevel_rfc822", "1.1") == b"inner body\r\n"
    assert _fetch("toplevel_rfc822", "TEXT").startswith(b"Subject: inside\r\n")
    # A single-part message is its own part 1; its MIME header is Content-* only.
    assert _fetch("plain", "1") == _fetch("plain", "TEXT")
    assert _fetch("plain", "1.MIME") == b"\r\n"


@pytest.mark.parametrize(
    ("partial", "expected"),
    [((0, 4), b"From"), ((3, None), None), ((10_000, 5), b""), ((0, 0), b""), ((5, 1), b" ")],
)
def test_partials(partial, expected) -> None:
    whole = _fetch("plain", "")
    want = whole[3:] if expected is None else expected
    assert _fetch("plain", "", partial) == want
    assert _fetch("plain", "HEADER.FIELDS (From)", partial) == (
        _fetch("plain", "HEADER.FIELDS (From)")[partial[0] :][: partial[1]]
        if partial[1] is not None
        else _fetch("plain", "HEADER.FIELDS (From)")[partial[0] :]
    )


def test_big_body_streams_from_a_file(tmp_path) -> None:
    data = CORPUS["big_attachment"]
    path = tmp_path / "msg"
    path.write_bytes(data)
    crlf = data.replace(b"\n", b"\r\n")
    with open_message(path) as buf:
        tree = parse(buf)
        assert tree.total_size == len(crlf)
        whole = fetch_section(buf, tree, parse_section(""))
        chunks = list(whole.chunks())
        assert len(chunks) > 4  # streamed, not one giant bytes
        assert b"".join(chunks) == crlf
        part = fetch_section(buf, tree, parse_section("2"), (1_000_001, 777_777))
        body2 = crlf[crlf.index(b"QUJD") : crlf.rindex(b"\r\n--BIG--")]
        assert part.read() == body2[1_000_001 : 1_000_001 + 777_777]
        assert part.size == 777_777


def test_open_message_on_an_empty_file(tmp_path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    with open_message(path) as buf:
        tree = parse(buf)
        assert fetch_section(buf, tree, parse_section("")).read() == b""
        assert bodystructure(tree) == b'("text" "plain" NIL NIL NIL "8bit" 0 0 NIL NIL NIL)'


def test_sections_from_a_file_equal_sections_from_bytes(tmp_path) -> None:
    from courierpy.mime.imapwire import fetch_section_from_file
    from courierpy.mime.tree import Part

    specs = ["", "HEADER", "TEXT", "1", "1.MIME", "2", "2.MIME", "2.HEADER", "2.TEXT", "1.1"]
    specs += ["HEADER.FIELDS (From Subject)", "HEADER.FIELDS.NOT (From)", "2.1.MIME", "9"]
    for name, data in CORPUS.items():
        if name == "big_attachment":
            continue
        path = tmp_path / name
        path.write_bytes(data)
        tree = parse(data)
        # As a metadata cache would give it back (envelopes kept in wire form there).
        cached = Part.from_json(json.loads(json.dumps(tree.to_json(envelopes=False))))
        assert cached.envelope is None
        for spec in specs:
            section = parse_section(spec)
            for partial in (None, (3, 10)):
                want = fetch_section(data, tree, section, partial)
                got = fetch_section_from_file(path, cached, section, partial)
                assert got.size == want.size, (name, spec, partial)
                assert got.read() == want.read(), (name, spec, partial)


def test_message_wire_and_limits() -> None:
    from courierpy.mime.imapwire import message_wire
    from courierpy.mime.tree import MAX_DEPTH, MAX_PARTS

    w = message_wire(CORPUS["plain"])
    assert w.bodystructure == bodystructure(w.tree) and w.rfc822_size == w.tree.total_size
    many = (
        b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
        + b"--b\n\nx\n" * (MAX_PARTS + 50)
        + b"--b--\n"
    )
    assert sum(1 for _ in parse(many).walk()) == MAX_PARTS
    deep = b"MIME-Version: 1.0\n" + b"Content-Type: message/rfc822\n\nMIME-Version: 1.0\n" * (
        MAX_DEPTH + 20
    )
    assert sum(1 for _ in parse(deep).walk()) == MAX_DEPTH + 1


#: Golden ENVELOPE and BODYSTRUCTURE of corpus messages. They equal what the real
#: Courier imapd sends, except where docs/differences.md says we differ (groups,
#: routes, encapsulated-message sizes); the oracle test checks both live.
GOLDEN = {
    "nested_rfc822": (
        (
            b'(NIL "Fwd: original" ((NIL NIL "fwd" "example.com")) ((NIL NIL "fwd" "'
            b'example.com")) ((NIL NIL "fwd" "example.com")) ((NIL NIL "me" "example'
            b'.com")) NIL NIL NIL NIL)'
        ),
        (
            b'(("text" "plain" NIL NIL NIL "8bit" 16 0 NIL NIL NIL)("message" "rfc82'
            b'2" NIL NIL NIL "8bit" 324 ("Thu, 4 Jan 2024 09:00:00 +0000" "original"'
            b' (("Original Sender" NIL "orig" "example.net")) (("Original Sender" NI'
            b'L "orig" "example.net")) (("Original Sender" NIL "orig" "example.net")'
            b') ((NIL NIL "fwd" "example.com")) NIL NIL NIL "<orig@example.net>") (('
            b'"text" "plain" NIL NIL NIL "8bit" 13 0 NIL NIL NIL)("text" "html" NIL '
            b'NIL NIL "8bit" 15 0 NIL NIL NIL) "alternative" ("boundary" "B") NIL NI'
            b'L) 16 NIL ("attachment" ("filename" "orig.eml")) NIL) "mixed" ("bounda'
            b'ry" "A") NIL NIL)'
        ),
    ),
    "rfc2047": (
        (
            b'("Fri, 5 Jan 2024 10:00:00 +0200" "=?UTF-8?B?SGVsbG8gd29ybGQ=?= =?iso-'
            b'8859-1?q?caf=E9?=" (("=?ISO-8859-1?Q?Andr=E9?= Pirard" NIL "PIRARD" "v'
            b'm1.ulg.ac.be")) (("=?ISO-8859-1?Q?Andr=E9?= Pirard" NIL "PIRARD" "vm1.'
            b'ulg.ac.be")) (("=?ISO-8859-1?Q?Andr=E9?= Pirard" NIL "PIRARD" "vm1.ulg'
            b'.ac.be")) (("=?UTF-8?B?w4lyaWM=?=" NIL "eric" "example.fr")) NIL NIL N'
            b"IL NIL)"
        ),
        (b'("text" "plain" NIL NIL NIL "8bit" 40 1 NIL NIL NIL)'),
    ),
    "groups": (
        (
            b'(NIL "groups" (("Doe, John \\"JD\\"" NIL "john" "example.com")) (("Doe, '
            b'John \\"JD\\"" NIL "john" "example.com")) ((NIL "@relay.example,@other.e'
            b'xample" "routed" "example.com")) ((NIL NIL "Team" NIL)(NIL NIL "carol"'
            b' "x.org")("Dan" NIL "dan" "y.org")(NIL NIL NIL NIL)(NIL NIL "solo" "ex'
            b'ample.com")) ((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL))'
            b' (("Bcc Person" NIL "bcc" "example.com")) NIL NIL)'
        ),
        (b'("text" "plain" NIL NIL NIL "8bit" 6 1 NIL NIL NIL)'),
    ),
    "missing_headers": (
        (b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"),
        (b'("text" "plain" NIL NIL NIL "8bit" 30 1 NIL NIL NIL)'),
    ),
    "unterminated": (
        (b'(NIL "unterminated multipart" NIL NIL NIL NIL NIL NIL NIL NIL)'),
        (
            b'(("text" "plain" NIL NIL NIL "8bit" 8 0 NIL NIL NIL)("text" "html" NIL'
            b' NIL NIL "8bit" 6 0 NIL NIL NIL) "mixed" ("boundary" "zz") NIL NIL)'
        ),
    ),
    "digest": (
        (b'(NIL "digest" NIL NIL NIL NIL NIL NIL NIL NIL)'),
        (
            b'(("message" "rfc822" NIL NIL NIL "8bit" 44 (NIL "d1" ((NIL NIL "d1" "e'
            b'xample.com")) ((NIL NIL "d1" "example.com")) ((NIL NIL "d1" "example.c'
            b'om")) NIL NIL NIL NIL NIL) ("text" "plain" NIL NIL NIL "8bit" 7 0 NIL '
            b'NIL NIL) 3 NIL NIL NIL)("text" "plain" NIL NIL NIL "8bit" 13 0 NIL NIL'
            b' NIL) "digest" ("boundary" "D") NIL NIL)'
        ),
    ),
    "eightbit": (
        (
            b'(NIL "=?utf-8?B?Y2Fmw6kgY3LDqG1lICBicsO7bMOpZQ==?= end" (("=?utf-8?B?S'
            b'sO2cmcgTcO8bGxlcg==?=" NIL "joerg" "example.de")) (("=?utf-8?B?SsO2cmc'
            b'gTcO8bGxlcg==?=" NIL "joerg" "example.de")) (("=?utf-8?B?SsO2cmcgTcO8b'
            b'Gxlcg==?=" NIL "joerg" "example.de")) (("=?utf-8?B?WsO8?=" NIL "z" "ex'
            b'ample.de")) NIL NIL NIL NIL)'
        ),
        (
            b'("text" "plain" ("charset" "utf-8" "name" "=?utf-8?Q?f=C3=A9.txt?=") N'
            b'IL NIL "8bit" 9 1 NIL NIL NIL)'
        ),
    ),
    "cte_inherited": (
        (
            b'(NIL "parts inherit the multipart\'s transfer encoding" NIL NIL NIL NIL'
            b" NIL NIL NIL NIL)"
        ),
        (
            b'(("text" "plain" NIL NIL NIL "7bit" 1 0 NIL NIL NIL)(("text" "plain" N'
            b'IL NIL NIL "7bit" 1 0 NIL NIL NIL) "alternative" ("boundary" "c") NIL '
            b'NIL)("message" "rfc822" NIL NIL NIL "7bit" 42 (NIL "inner parts do not'
            b' inherit" NIL NIL NIL NIL NIL NIL NIL NIL) ("text" "plain" NIL NIL NIL'
            b' "8bit" 3 1 NIL NIL NIL) 3 NIL NIL NIL)("text" "plain" NIL NIL NIL "ba'
            b'se64" 4 0 NIL NIL NIL) "mixed" ("boundary" "b") NIL NIL)'
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_envelope_and_bodystructure(name: str) -> None:
    from courierpy.mime.imapwire import message_wire

    wire = message_wire(CORPUS[name])
    assert (wire.envelope, wire.bodystructure) == GOLDEN[name]


def test_decode_params_rfc2231() -> None:
    from courierpy.mime.tree import decode_params

    tree = parse(CORPUS["params_2231"])
    assert decode_params(tree.params) == {"name": "longname.txt", "x": "é", "quoted": 'a "q" b'}
    assert decode_params(tree.disposition_params) == {"filename": "a b"}
    # RFC 2231 §4.1's example, with an unknown charset falling back.
    assert decode_params(
        (
            ("title*0*", "us-ascii'en'This%20is%20even%20more%20"),
            ("title*1*", "%2A%2A%2Afun%2A%2A%2A%20"),
            ("title*2", "isn't it!"),
            ("t*", "x-unknown''caf%C3%A9"),
            ("bad*zz", "ignored"),
            ("pct*", "''100%"),
        )
    ) == {"title": "This is even more ***fun*** isn't it!", "t": "café", "pct": "100%"}
    assert decode_params((("n", "caf\xc3\xa9"),)) == {"n": "café"}
