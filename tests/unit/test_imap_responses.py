"""Response serialization and the error family's rendering."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courierpy.errors import CourierError
from courierpy.imap import errors
from courierpy.imap.grammar import Command, CommandReader
from courierpy.imap.responses import (
    Atom,
    Bye,
    Continuation,
    Literal,
    RespCode,
    ResponseCode,
    Tagged,
    Untagged,
    UntaggedStatus,
    astring,
    render,
    string,
)
from courierpy.imap.seqset import SeqSet


@pytest.mark.parametrize(
    "value,wire",
    [
        (None, b"NIL"),
        (0, b"0"),
        (4294967295, b"4294967295"),
        ("INBOX.Sent", b'"INBOX.Sent"'),
        ("", b'""'),
        ('a "b" \\c', b'"a \\"b\\" \\\\c"'),
        ("two\r\nlines", b"{10}\r\ntwo\r\nlines"),
        ("lf\nonly", b"{7}\r\nlf\nonly"),
        ("nul\0", b"{4}\r\nnul\0"),
        ("Résumé", b"{8}\r\nR\xc3\xa9sum\xc3\xa9"),  # 8-bit: literal unless UTF8=ACCEPT
        (b"raw", b'"raw"'),
        (Atom("\\Seen"), b"\\Seen"),
        (Literal(b"x"), b"{1}\r\nx"),
        ((Atom("\\Seen"), "x", None, 3, ()), b'(\\Seen "x" NIL 3 ())'),
        ([[1, 2], []], b"((1 2) ())"),
        (SeqSet.parse(b"1:3,5,*"), b"1:3,5,*"),
    ],
)
def test_render(value: object, wire: bytes) -> None:
    assert render(value) == wire


def test_utf8_accept_quotes_8bit() -> None:
    assert render("Résumé", utf8=True) == '"Résumé"'.encode()
    assert string("a\r\nb", utf8=True) == b"{4}\r\na\r\nb"


@pytest.mark.parametrize(
    "value,wire",
    [
        ("INBOX", b"INBOX"),
        ("a]b", b"a]b"),
        ("NIL", b'"NIL"'),
        ("nil", b'"nil"'),
        ("a b", b'"a b"'),
        ("a%", b'"a%"'),
        ("a*", b'"a*"'),
        ("a{", b'"a{"'),
        ("", b'""'),
        ("x\r", b"{2}\r\nx\r"),
    ],
)
def test_astring(value: str, wire: bytes) -> None:
    assert astring(value) == wire


def test_render_rejects_what_has_no_wire_form() -> None:
    for v in (True, -1, 1.5, object()):
        with pytest.raises((TypeError, ValueError)):
            render(v)
    with pytest.raises(ValueError):
        Atom("two words")


def test_status_responses() -> None:
    assert (
        Tagged("a1", "OK", "CAPABILITY completed").to_bytes() == b"a1 OK CAPABILITY completed\r\n"
    )
    assert (
        Tagged("a021", "OK", "Ok", ResponseCode(RespCode.READ_WRITE)).to_bytes()
        == b"a021 OK [READ-WRITE] Ok\r\n"
    )
    assert (
        Tagged(
            "a022", "OK", "APPEND Ok.", ResponseCode(RespCode.APPENDUID, (795618769, 1))
        ).to_bytes()
        == b"a022 OK [APPENDUID 795618769 1] APPEND Ok.\r\n"
    )
    copyuid = ResponseCode(RespCode.COPYUID, (795618769, Atom("1:2"), Atom("1:2")))
    assert (
        Tagged("a035", "OK", "COPY completed.", copyuid).to_bytes()
        == b"a035 OK [COPYUID 795618769 1:2 1:2] COPY completed.\r\n"
    )
    perm = ResponseCode(RespCode.PERMANENTFLAGS, ((Atom("Junk"), Atom("\\*"), Atom("\\Seen")),))
    assert (
        UntaggedStatus("OK", "Limited", perm).to_bytes()
        == b"* OK [PERMANENTFLAGS (Junk \\* \\Seen)] Limited\r\n"
    )
    assert UntaggedStatus("PREAUTH", "Ready.").to_bytes() == b"* PREAUTH Ready.\r\n"
    assert (
        Bye("Courier-IMAP server shutting down").to_bytes()
        == b"* BYE Courier-IMAP server shutting down\r\n"
    )
    assert Continuation().to_bytes() == b"+ OK\r\n"
    assert Continuation("VXNlcm5hbWU6").to_bytes() == b"+ VXNlcm5hbWU6\r\n"
    assert Untagged((3, Atom("EXISTS"))).to_bytes() == b"* 3 EXISTS\r\n"
    assert (
        Untagged(
            (Atom("STATUS"), "INBOX.Sent", (Atom("MESSAGES"), 2, Atom("UIDNEXT"), 3))
        ).to_bytes()
        == b'* STATUS "INBOX.Sent" (MESSAGES 2 UIDNEXT 3)\r\n'
    )


def test_status_responses_validate() -> None:
    with pytest.raises(ValueError):
        Tagged("a1", "BYE", "x")
    with pytest.raises(ValueError):
        Tagged("a+1", "OK", "x")
    with pytest.raises(ValueError):
        Tagged("", "OK", "x")
    with pytest.raises(ValueError):
        Tagged("a1", "OK", "two\r\nlines")
    with pytest.raises(ValueError):
        UntaggedStatus("FETCH", "x")
    with pytest.raises(ValueError):
        Continuation("x\n")


def test_resp_codes_cover_the_brief() -> None:
    names = {c.value for c in RespCode}
    for n in (
        "ALERT BADCHARSET CAPABILITY PARSE PERMANENTFLAGS READ-ONLY READ-WRITE TRYCREATE "
        "UIDNEXT UIDVALIDITY UNSEEN APPENDUID COPYUID NONEXISTENT ALREADYEXISTS OVERQUOTA "
        "NOPERM AUTHENTICATIONFAILED CANNOT UNAVAILABLE"
    ).split():
        assert n in names


@pytest.mark.parametrize(
    "err,wire",
    [
        (errors.BadSyntax(), b"t BAD Error in IMAP command received by server.\r\n"),
        (errors.UnknownCommand(), b"t BAD Error in IMAP command received by server.\r\n"),
        (
            errors.TryCreate("Must create mailbox before append"),
            b"t NO [TRYCREATE] Must create mailbox before append\r\n",
        ),
        (
            errors.Nonexistent(),
            b"t NO [NONEXISTENT] Mailbox does not exist, or must be subscribed to.\r\n",
        ),
        (errors.AlreadyExists(), b"t NO [ALREADYEXISTS] Cannot create this folder.\r\n"),
        (errors.OverQuota(), b"t NO [OVERQUOTA] You exceeded your mail quota.\r\n"),
        (errors.NoPerm(), b"t NO [NOPERM] Permission denied.\r\n"),
        (errors.AuthenticationFailed(), b"t NO [AUTHENTICATIONFAILED] Login failed.\r\n"),
        (
            errors.Cannot("Can't RENAME the currently-open folder"),
            b"t NO [CANNOT] Can't RENAME the currently-open folder\r\n",
        ),
        (
            errors.Unavailable(),
            b"t NO [UNAVAILABLE] Temporary problem, please try again later.\r\n",
        ),
        (errors.BadCharset(), b"t NO [BADCHARSET (UTF-8 US-ASCII)] Unknown search charset.\r\n"),
        (
            errors.Fatal("Temporary problem, please try again later"),
            b"* BYE Temporary problem, please try again later\r\n",
        ),
    ],
)
def test_errors_render_themselves(err: errors.ImapError, wire: bytes) -> None:
    assert isinstance(err, CourierError)
    assert err.response("t").to_bytes() == wire
    assert err.fatal == (err.status == "BYE")


def test_untagged_error_when_tag_unknown() -> None:
    assert errors.BadSyntax().response(None).to_bytes() == (
        b"* BAD Error in IMAP command received by server.\r\n"
    )


# Round trip: whatever string we render, our own reader reads back unchanged.
@given(st.binary(max_size=200).filter(lambda b: b"\0" not in b))
def test_string_round_trip(data: bytes) -> None:
    wire = b"a LOGIN " + astring(data) + b" " + string(data) + b"\r\n"
    r = CommandReader(state=None)
    r.receive_data(wire)
    ev = r.next_event()
    while not isinstance(ev, Command):
        r.accept_literal()
        ev = r.next_event()
    want = data.decode("utf-8", "surrogateescape")
    assert ev.args.userid == want and ev.args.password == want


def test_fetch_response_with_raw_label_and_literal() -> None:
    from courierpy.imap.fetchatts import FetchAtt, Section
    from courierpy.imap.responses import Raw

    att = FetchAtt("BODY", Section((), "HEADER.FIELDS", ("SUBJECT",)), peek=True)
    resp = Untagged(
        (1, Atom("FETCH"), (Raw(att.label), Literal(b"Subject: first\r\n\r\n"), Atom("UID"), 1))
    )
    assert resp.to_bytes() == (
        b'* 1 FETCH (BODY[HEADER.FIELDS ("SUBJECT")] {18}\r\nSubject: first\r\n\r\n UID 1)\r\n'
    )


def test_literal_stream_is_sent_in_chunks(tmp_path) -> None:
    from courierpy.imap.responses import LiteralStream, iter_render

    body = tmp_path / "msg"
    body.write_bytes(b"Subject: x\r\n\r\n" + b"y" * 100000)
    size = body.stat().st_size

    def source():
        with body.open("rb") as f:
            while chunk := f.read(8192):
                yield chunk

    resp = Untagged(
        (7, Atom("FETCH"), (Atom("UID"), 9, Atom("BODY[]"), LiteralStream(size, source)))
    )
    pieces = list(resp.iter_bytes())
    assert max(len(p) for p in pieces) <= 8192  # never the whole message in one piece
    whole = b"".join(pieces)
    assert whole == b"* 7 FETCH (UID 9 BODY[] {%d}\r\n" % size + body.read_bytes() + b")\r\n"
    assert resp.to_bytes() == whole
    # a source that does not deliver what was announced is an error, not a broken stream
    with pytest.raises(ValueError):
        b"".join(iter_render(LiteralStream(size + 1, source)))
    with pytest.raises(ValueError):
        b"".join(iter_render(LiteralStream(size - 1, source)))


def test_violation_counter_closes_on_the_tenth() -> None:
    c = errors.ViolationCounter()
    for _ in range(9):
        assert isinstance(c.check(errors.UnknownCommand()), errors.UnknownCommand)
    bye = c.check(errors.BadSyntax())
    assert isinstance(bye, errors.TooManyViolations) and bye.fatal
    assert bye.response("x").to_bytes() == (
        b"* BYE [ALERT] Fatal error: TOO MANY CONSECUTIVE PROTOCOL VIOLATIONS: \r\n"
    )
    # an answer that is not "Error in IMAP command" starts the count again
    c = errors.ViolationCounter()
    for _ in range(5):
        c.check(errors.BadSyntax())
    c.check(errors.Nonexistent())
    for _ in range(9):
        assert not c.check(errors.BadSyntax()).fatal
    c.check(None)
    assert c.count == 0
