"""A corpus of typical and nasty messages (LF endings, as Courier stores mail).

The oracle test (tests/oracle/test_mime_oracle.py) feeds every message here to
the real Courier imapd and to courierpy.mime and compares the FETCH output; the
tests in this file check the tree's offsets on the same corpus.
"""

from __future__ import annotations

import json

import pytest

from courierpy.mime.tree import Part, parse

CORPUS: dict[str, bytes] = {
    "plain": (
        b"From: Alice Example <alice@example.com>\n"
        b"To: Bob <bob@example.org>\n"
        b"Subject: Lunch tomorrow?\n"
        b"Date: Mon, 1 Jan 2024 10:00:00 +0000\n"
        b"Message-ID: <plain-1@example.com>\n"
        b"\n"
        b"Shall we meet at noon?\n"
        b"\n"
        b"-- \nAlice\n"
    ),
    "alternative": (
        b'From: "Shop" <news@shop.example>\n'
        b"To: customer@example.net\n"
        b"Subject: Offers\n"
        b"Date: Tue, 2 Jan 2024 08:30:00 -0500\n"
        b"Message-ID: <alt@shop.example>\n"
        b"MIME-Version: 1.0\n"
        b'Content-Type: multipart/alternative; boundary="=_alt_01"\n'
        b"\n"
        b"This is a multi-part message in MIME format.\n"
        b"\n"
        b"--=_alt_01\n"
        b'Content-Type: text/plain; charset="UTF-8"\n'
        b"Content-Transfer-Encoding: quoted-printable\n"
        b"\n"
        b"Big offers =E2=82=AC\n"
        b"--=_alt_01\n"
        b"Content-Type: text/html; charset=UTF-8\n"
        b"Content-Transfer-Encoding: 7bit\n"
        b"\n"
        b"<html><body><p>Big offers</p></body></html>\n"
        b"\n"
        b"--=_alt_01--\n"
        b"\n"
        b"epilogue text\n"
    ),
    "mixed_attachments": (
        b"From: Carol <carol@example.com>\n"
        b"To: Dan <dan@example.com>, Erin <erin@example.com>\n"
        b"Cc: frank@example.com\n"
        b"Subject: Report and pictures\n"
        b"Date: Wed, 3 Jan 2024 12:00:00 +0100\n"
        b"Message-ID: <mixed@example.com>\n"
        b"In-Reply-To: <prev@example.com>\n"
        b"MIME-Version: 1.0\n"
        b"Content-Type: multipart/mixed;\n"
        b'\tboundary="outer"\n'
        b"\n"
        b"--outer\n"
        b"Content-Type: multipart/alternative; boundary=inner\n"
        b"\n"
        b"--inner\n"
        b"Content-Type: text/plain; charset=us-ascii\n"
        b"\n"
        b"See attached.\n"
        b"--inner\n"
        b"Content-Type: text/html; charset=us-ascii\n"
        b"\n"
        b"<p>See attached.</p>\n"
        b"--inner--\n"
        b"\n"
        b"--outer\n"
        b'Content-Type: application/pdf; name="report.pdf"\n'
        b'Content-Disposition: attachment; filename="report.pdf"; size=12\n'
        b"Content-Transfer-Encoding: base64\n"
        b"Content-Description: Quarterly report\n"
        b"Content-ID: <report@example.com>\n"
        b"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n"
        b"X-Attachment-Id: f_1\n"
        b"\n"
        b"JVBERi0xLjQK\n"
        b"JVBERi0xLjQK\n"
        b"--outer\n"
        b"Content-Type: image/png; name=pic.png\n"
        b"Content-Disposition: inline\n"
        b"Content-Transfer-Encoding: BASE64\n"
        b"Content-Language: en\n"
        b"Content-Location: http://example.com/pic.png\n"
        b"\n"
        b"iVBORw0KGgo=\n"
        b"--outer--\n"
    ),
    "nested_rfc822": (
        b"From: fwd@example.com\n"
        b"To: me@example.com\n"
        b"Subject: Fwd: original\n"
        b"MIME-Version: 1.0\n"
        b"Content-Type: multipart/mixed; boundary=A\n"
        b"\n"
        b"--A\n"
        b"Content-Type: text/plain\n"
        b"\n"
        b"Forwarded below.\n"
        b"--A\n"
        b"Content-Type: message/rfc822\n"
        b"Content-Disposition: attachment; filename=orig.eml\n"
        b"\n"
        b"From: Original Sender <orig@example.net>\n"
        b"To: fwd@example.com\n"
        b"Subject: original\n"
        b"Date: Thu, 4 Jan 2024 09:00:00 +0000\n"
        b"Message-ID: <orig@example.net>\n"
        b"MIME-Version: 1.0\n"
        b"Content-Type: multipart/alternative; boundary=B\n"
        b"\n"
        b"--B\n"
        b"Content-Type: text/plain\n"
        b"\n"
        b"original text\n"
        b"--B\n"
        b"Content-Type: text/html\n"
        b"\n"
        b"<b>original</b>\n"
        b"--B--\n"
        b"--A--\n"
    ),
    "nested_simple": (
        b"Subject: bounce\n"
        b"MIME-Version: 1.0\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=R\n"
        b"\n"
        b"--R\n"
        b"\n"
        b"Delivery failed.\n"
        b"--R\n"
        b"Content-Type: message/rfc822\n"
        b"\n"
        b"Subject: the lost one\n"
        b"From: me@example.com\n"
        b"\n"
        b"line1\n"
        b"\n"
        b"\n"
        b"--R--\n"
    ),
    "toplevel_rfc822": (
        b"Subject: wrapper\n"
        b"MIME-Version: 1.0\n"
        b"Content-Type: message/rfc822\n"
        b"\n"
        b"Subject: inside\n"
        b"From: In Side <in@side.example>\n"
        b"\n"
        b"inner body\n"
    ),
    "digest": (
        b"Subject: digest\n"
        b"MIME-Version: 1.0\n"
        b"Content-Type: multipart/digest; boundary=D\n"
        b"\n"
        b"--D\n"
        b"\n"
        b"Subject: d1\n"
        b"From: d1@example.com\n"
        b"\n"
        b"d1 body\n"
        b"--D\n"
        b"Content-Type: text/plain\n"
        b"\n"
        b"not a message\n"
        b"--D--\n"
    ),
    "rfc2047": (
        b"From: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>\n"
        b"To: =?UTF-8?B?w4lyaWM=?= <eric@example.fr>\n"
        b"Subject: =?UTF-8?B?SGVsbG8gd29ybGQ=?= =?iso-8859-1?q?caf=E9?=\n"
        b"Date: Fri, 5 Jan 2024 10:00:00 +0200\n"
        b"\n"
        b"encoded words stay encoded in ENVELOPE\n"
    ),
    "groups": (
        b'From: "Doe, John \\"JD\\"" <john@example.com>\n'
        b"To: Team: carol@x.org, Dan <dan@y.org>;, solo@example.com\n"
        b"Cc: undisclosed-recipients:;\n"
        b"Bcc: (hidden) bcc@example.com (Bcc Person)\n"
        b"Reply-To: <@relay.example,@other.example:routed@example.com>\n"
        b"Subject: groups\n"
        b"\n"
        b"body\n"
    ),
    "missing_headers": (b"X-Nothing: here\n\nno from, no subject, no date\n"),
    "no_header": b"\nbody without any header\n",
    "no_body": b"Subject: no body at all",
    "eightbit": (
        b"From: J\xc3\xb6rg M\xc3\xbcller <joerg@example.de>\n"
        b'To: "Z\xc3\xbc" <z@example.de>\n'
        b"Subject: caf\xc3\xa9 cr\xc3\xa8me  br\xc3\xbbl\xc3\xa9e end\n"
        b"MIME-Version: 1.0\n"
        b'Content-Type: text/plain; charset=utf-8; name="f\xc3\xa9.txt"\n'
        b"Content-Transfer-Encoding: 8bit\n"
        b"\n"
        b"Gr\xc3\xbc\xc3\x9fe\n"
    ),
    "folded_multi": (
        b"Subject: folded\n"
        b"  subject line\n"
        b"\there\n"
        b"Subject: second subject\n"
        b"From: a@example.com\n"
        b"From: b@example.com\n"
        b"Date: one\n"
        b"Message-ID: <1@x>\n"
        b"To: first@example.com,\n"
        b"    second@example.com\n"
        b"\n"
        b"body\n"
    ),
    "no_mime_version": (
        b"Subject: no MIME-Version\n"
        b"Content-Type: multipart/mixed; boundary=A\n"
        b"Content-Transfer-Encoding: base64\n"
        b"Content-Disposition: attachment; filename=x\n"
        b"Content-ID: <cid@x>\n"
        b"Content-Description: described\n"
        b"Content-MD5: bWQ1\n"
        b"\n"
        b"--A\n"
        b"\n"
        b"hi\n"
        b"--A--\n"
    ),
    "unterminated": (
        b"Subject: unterminated multipart\n"
        b"MIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="zz"\n'
        b"\n"
        b"--zz\n"
        b"Content-Type: text/plain\n"
        b"\n"
        b"part one\n"
        b"--zz\n"
        b"Content-Type: text/html\n"
        b"\n"
        b"<b>two\n"
    ),
    "missing_boundary": (
        b"Subject: boundary never appears\n"
        b"MIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="zz"\n'
        b"\n"
        b"no boundary ever\nhere\n"
    ),
    "no_boundary_param": (
        b"Subject: no boundary parameter\n"
        b"MIME-Version: 1.0\n"
        b"Content-Type: multipart/mixed\n"
        b"\n"
        b"text\n"
    ),
    "empty_parts": (
        b"Subject: empty parts\n"
        b"MIME-Version: 1.0\n"
        b"Content-Type: multipart/mixed; boundary=A\n"
        b"\n"
        b"--A\n"
        b"--A\n"
        b"\n"
        b"--A\n"
        b"Content-Type: text/plain\n"
        b"--A--\n"
    ),
    "junk_headers": (
        b"junk line without colon\n"
        b"Subject: junk\n"
        b" continuation after junk\n"
        b"X-Weird :  spaced name\n"
        b"MIME-Version: 1.0\n"
        b"Content-Type: ;;; garbage\n"
        b"\n"
        b"body\n"
    ),
    "params_2231": (
        b"Subject: rfc 2231\n"
        b"MIME-Version: 1.0\n"
        b'Content-Type: APPLICATION/Octet-Stream; name*0="long"; name*1="name.txt";\n'
        b'  x*=utf-8\'\'%C3%A9; quoted="a \\"q\\" b"\n'
        b"Content-Disposition: ATTACHMENT; filename*=utf-8''a%20b\n"
        b"Content-Transfer-Encoding: Base64\n"
        b"\n"
        b"YWJj\n"
    ),
    "huge_header": (
        b"Subject: " + b"long " * 2000 + b"\n"
        b"X-Long: " + b"x" * 20000 + b"\n"
        b"From: huge@example.com\n"
        b"\n"
        b"body\n"
    ),
    "crlf_stored": (
        b"Subject: stored with CRLF\r\n"
        b"From: a@example.com\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=C\r\n"
        b"\r\n"
        b"--C\r\n"
        b"\r\n"
        b"line\r\n"
        b"--C--\r\n"
    ),
    "bad_utf8_and_nul": (
        b"Subject: end \xff\xfe bad \xc3\n"
        b'From: "N\xc3\xa4me" <x@example.com>\n'
        b"MIME-Version: 1.0\n"
        b'Content-Type: text/plain; charset="iso-8859-1"\n'
        b"Content-Description: caf\xe9\n"
        b"\n"
        b"nul \x00 byte and bare \r carriage return\n"
    ),
    "deep_nesting": (
        b"Subject: deep\nMIME-Version: 1.0\n"
        + b"".join(
            b"Content-Type: multipart/mixed; boundary=lvl%03d-x\n\n--lvl%03d-x\n" % (i, i)
            for i in range(45)
        )
        + b"Content-Type: text/plain\n\ndeepest\n"
        + b"".join(b"--lvl%03d-x--\n\n" % i for i in reversed(range(45)))
    ),
    "adjacent_close": (
        b"From: Gmail Style <gs@example.com>\n"
        b"Subject: inner close delimiter right before the outer one\n"
        b"MIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="000000000000outer"\n'
        b"\n"
        b"--000000000000outer\n"
        b'Content-Type: multipart/alternative; boundary="000000000000inner"\n'
        b"\n"
        b"--000000000000inner\n"
        b'Content-Type: text/plain; charset="UTF-8"\n'
        b"\n"
        b"hello\n"
        b"\n"
        b"--000000000000inner\n"
        b'Content-Type: text/html; charset="UTF-8"\n'
        b"\n"
        b"<div>hello</div>\n"
        b"\n"
        b"--000000000000inner--\n"
        b"--000000000000outer\n"
        b'Content-Type: text/plain; name="notes.txt"\n'
        b'Content-Disposition: attachment; filename="notes.txt"\n'
        b"\n"
        b"notes\n"
        b"--000000000000outer--\n"
    ),
    "big_attachment": (
        b"Subject: big\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=BIG\n\n"
        b"--BIG\nContent-Type: text/plain\n\nsee attachment\n"
        b"--BIG\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
        + b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\n" * 40000
        + b"--BIG--\n"
    ),
    "cte_inherited": (
        b"Subject: parts inherit the multipart's transfer encoding\n"
        b"MIME-Version: 1.0\n"
        b"Content-Transfer-Encoding: 7bit\n"
        b"Content-Type: multipart/mixed; boundary=b\n"
        b"\n"
        b"--b\n"
        b"Content-Type: text/plain\n"
        b"\n"
        b"x\n"
        b"--b\n"
        b"Content-Type: multipart/alternative; boundary=c\n"
        b"\n"
        b"--c\n"
        b"\n"
        b"y\n"
        b"--c--\n"
        b"\n"
        b"--b\n"
        b"Content-Type: message/rfc822\n"
        b"\n"
        b"Subject: inner parts do not inherit\n"
        b"\n"
        b"w\n"
        b"\n"
        b"--b\n"
        b"Content-Type: text/plain\n"
        b"Content-Transfer-Encoding: base64\n"
        b"\n"
        b"eg==\n"
        b"--b--\n"
    ),
    "repeated_fields": (
        b"MIME-Version: 1.0\n"
        b"Subject: first\n"
        b'Content-Disposition: attachment; filename="f.txt"\n'
        b"Content-Disposition: inline; size=3\n"
        b"Content-Type: text/plain; charset=a; x=1\n"
        b"Content-Type: text/html; charset=b; y=2\n"
        b"Content-ID: <1>\n"
        b"Content-ID: <2>\n"
        b"Content-Description: one\n"
        b"Content-Description: two\n"
        b"Content-Transfer-Encoding: base64\n"
        b"Content-Transfer-Encoding: 7bit\n"
        b"Content-MD5: one\n"
        b"Content-MD5: two\n"
        b"Subject: second\n"
        b"\n"
        b"body\n"
    ),
    "header_only": b"Subject: header only\nFrom: a@b.example\n",
    "unterminated_part_header": (
        b"MIME-Version: 1.0\n"
        b"Content-Type: multipart/mixed; boundary=A\n"
        b"\n"
        b"--A\n"
        b"Content-Type: text/html\n"
        b"X-Other: 1\n"
        b"--A\n"
        b"Content-ID: <y>\n"
        b"Content-Type: text/html\n"
        b"--A--\n"
    ),
    "long_body_lines": (
        b"Subject: long lines in bodies\nMIME-Version: 1.0\n"
        b"Content-Type: multipart/mixed; boundary=L\n\n"
        b"--L\nContent-Type: text/plain\n\n" + b"y" * 70000 + b"\nshort\n" + b"z" * 9000 + b"\n"
        b"--L\nContent-Type: text/html\n\n" + b"<p>" * 30000 + b"\n--L--\n"
    ),
    "report_signed": (
        b"From: MAILER-DAEMON@example.com\n"
        b"Subject: Undelivered Mail Returned to Sender\n"
        b"MIME-Version: 1.0\n"
        b"Content-Type: multipart/report; report-type=delivery-status;\n"
        b'\tboundary="RPT"\n'
        b"\n"
        b"--RPT\n"
        b"Content-Description: Notification\n"
        b"Content-Type: text/plain; charset=us-ascii\n"
        b"\n"
        b"I'm sorry to have to inform you...\n"
        b"\n"
        b"--RPT\n"
        b"Content-Description: Delivery report\n"
        b"Content-Type: message/delivery-status\n"
        b"\n"
        b"Reporting-MTA: dns; mx.example.com\n"
        b"\n"
        b"Final-Recipient: rfc822; gone@example.org\n"
        b"Action: failed\n"
        b"\n"
        b"--RPT\n"
        b"Content-Description: Undelivered Message Headers\n"
        b"Content-Type: text/rfc822-headers\n"
        b"\n"
        b"From: me@example.com\n"
        b"Subject: hello\n"
        b"\n"
        b"--RPT\n"
        b'Content-Type: multipart/signed; micalg=pgp-sha256; protocol="application/pgp-signature";'
        b' boundary="SIG"\n'
        b"\n"
        b"--SIG\n"
        b'Content-Type: multipart/related; boundary=REL; type="text/html"\n'
        b"\n"
        b"--REL\n"
        b"Content-Type: text/html\n"
        b"\n"
        b'<img src="cid:img1">\n'
        b"--REL\n"
        b"Content-Type: image/gif\n"
        b"Content-ID: <img1>\n"
        b"Content-Transfer-Encoding: base64\n"
        b"\n"
        b"R0lGODlhAQABAAAAACw=\n"
        b"--REL--\n"
        b"\n"
        b"--SIG\n"
        b'Content-Type: application/pgp-signature; name="signature.asc"\n'
        b"\n"
        b"-----BEGIN PGP SIGNATURE-----\n"
        b"iQEzBAEBCAAdFiEE\n"
        b"-----END PGP SIGNATURE-----\n"
        b"\n"
        b"--SIG--\n"
        b"\n"
        b"--RPT--\n"
    ),
    "angle_extras": (
        b"From: Alice <alice@example.com> (work)\n"
        b"To: <bob@example.com> trailing\n"
        b"Subject: extras after angle addresses\n"
        b"\n"
        b"body\n"
    ),
    "case_fields": (
        b"subject: lower\nSUBJECT: upper\nfrom: a@b.example\nFROM: c@d.example\nx-a: 1\n\nbody\n"
    ),
}


def _reassemble(data: bytes, part: Part) -> bytes:
    """Header + body of *part* from its offsets (the blank line kept)."""
    return data[part.header_start : part.end]


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_offsets_are_consistent(name: str) -> None:
    data = CORPUS[name]
    tree = parse(data)
    assert tree.header_start == 0 and tree.end == len(data)
    assert _reassemble(data, tree) == data
    for part in tree.walk():
        assert part.header_start <= part.header_end <= part.body_start <= part.end <= len(data)
        for child in part.children:
            assert part.body_start <= child.header_start <= child.end <= part.end
        if part.message is not None:
            assert part.message.header_start == part.body_start
            assert part.message.end == part.end
    assert Part.from_json(json.loads(json.dumps(tree.to_json()))) == tree
