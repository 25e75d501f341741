"""FETCH attributes: parsing, the data each needs, the label it answers with."""

from __future__ import annotations

import pytest

from courierpy.imap.errors import BadSyntax
from courierpy.imap.fetchatts import MACROS, FetchAtt, FetchNeeds, Section, parse_fetch_atts
from courierpy.imap.grammar import BadCommand
from courierpy.imap.tokens import Cursor, lex_segment
from tests.unit.test_imap_grammar import events


def parse(text: bytes) -> tuple[FetchAtt, ...]:
    """Parse through the whole reader, fed whole, byte by byte and at every split."""
    (ev,) = events(b"a FETCH 1 " + text + b"\r\n")
    if isinstance(ev, BadCommand):
        raise ev.error
    return ev.args.atts


def test_parse_fetch_atts_directly() -> None:
    toks: list = []
    assert lex_segment(b"(FLAGS UID)", toks) is None
    cur = Cursor(toks)
    assert parse_fetch_atts(cur) == (FetchAtt("FLAGS"), FetchAtt("UID"))
    assert cur.at_end()


@pytest.mark.parametrize(
    "text,label,needs,seen",
    [
        (b"FLAGS", b"FLAGS", FetchNeeds.FLAGS, False),
        (b"uid", b"UID", FetchNeeds.UID, False),
        (b"INTERNALDATE", b"INTERNALDATE", FetchNeeds.INTERNALDATE, False),
        (b"RFC822.SIZE", b"RFC822.SIZE", FetchNeeds.SIZE, False),
        (b"ENVELOPE", b"ENVELOPE", FetchNeeds.STRUCTURE, False),
        (b"BODYSTRUCTURE", b"BODYSTRUCTURE", FetchNeeds.STRUCTURE, False),
        (b"BODY", b"BODY", FetchNeeds.STRUCTURE, False),
        (b"RFC822", b"RFC822", FetchNeeds.BODY, True),
        (b"RFC822.HEADER", b"RFC822.HEADER", FetchNeeds.HEADER, False),
        (b"RFC822.TEXT", b"RFC822.TEXT", FetchNeeds.BODY, True),
        (b"BODY[]", b"BODY[]", FetchNeeds.BODY, True),
        (b"BODY.PEEK[]", b"BODY[]", FetchNeeds.BODY, False),
        (b"body[]<0.100>", b"BODY[]<0>", FetchNeeds.BODY, True),
        (b"BODY.PEEK[]<5.10>", b"BODY[]<5>", FetchNeeds.BODY, False),
        (b"BODY[HEADER]", b"BODY[HEADER]", FetchNeeds.HEADER, True),
        (b"BODY.PEEK[TEXT]", b"BODY[TEXT]", FetchNeeds.BODY, False),
        (b"BODY[1]", b"BODY[1]", FetchNeeds.BODY, True),
        (b"BODY[1.2.3]", b"BODY[1.2.3]", FetchNeeds.BODY, True),
        (b"BODY[2.MIME]", b"BODY[2.MIME]", FetchNeeds.BODY, True),
        (b"BODY[2.HEADER]", b"BODY[2.HEADER]", FetchNeeds.BODY, True),
        (b"BODY[1.TEXT]<0.5>", b"BODY[1.TEXT]<0>", FetchNeeds.BODY, True),
        # Courier echoes header field names quoted
        (
            b"BODY.PEEK[HEADER.FIELDS (SUBJECT)]",
            b'BODY[HEADER.FIELDS ("SUBJECT")]',
            FetchNeeds.HEADER,
            False,
        ),
        (
            b'BODY[HEADER.FIELDS.NOT (from "To")]<0.10>',
            b'BODY[HEADER.FIELDS.NOT ("from" "To")]<0>',
            FetchNeeds.HEADER,
            True,
        ),
        (b"BODY[1.HEADER.FIELDS (X-A)]", b'BODY[1.HEADER.FIELDS ("X-A")]', FetchNeeds.BODY, True),
        # what Courier also accepts, with the labels it answers with
        (b"BODY.PEEK[]<0>", b"BODY[]<0>", FetchNeeds.BODY, False),
        (b"BODY.PEEK[]<5.0>", b"BODY[]<5>", FetchNeeds.BODY, False),
        (b"BODY.PEEK[HEADER.FIELDS ()]", b"BODY[HEADER.FIELDS]", FetchNeeds.HEADER, False),
        (
            b'BODY.PEEK[HEADER.FIELDS ("X:Y" subject)]',
            b'BODY[HEADER.FIELDS ("X:Y" "subject")]',
            FetchNeeds.HEADER,
            False,
        ),
    ],
)
def test_single(text: bytes, label: bytes, needs: FetchNeeds, seen: bool) -> None:
    (att,) = parse(text)
    assert att.label == label
    assert att.needs == needs
    assert att.sets_seen == seen
    # str() gives back a canonical form that parses to the same attribute
    assert parse(str(att).encode()) == (att,)


def test_macros() -> None:
    assert parse(b"ALL") == MACROS["ALL"]
    assert [a.name for a in parse(b"fast")] == ["FLAGS", "INTERNALDATE", "RFC822.SIZE"]
    assert [a.name for a in parse(b"FULL")] == [
        "FLAGS",
        "INTERNALDATE",
        "RFC822.SIZE",
        "ENVELOPE",
        "BODY",
    ]
    # RFC 3501 has macros only alone; Courier expands them inside lists too
    assert parse(b"(ALL)") == MACROS["ALL"]
    assert parse(b"(FAST UID)") == MACROS["FAST"] + (FetchAtt("UID"),)


def test_list_and_needs_union() -> None:
    atts = parse(b"(UID FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)] ENVELOPE)")
    assert atts[2] == FetchAtt("BODY", Section((), "HEADER.FIELDS", ("FROM", "TO")), True)
    need = FetchNeeds.NONE
    for a in atts:
        need |= a.needs
    assert need == FetchNeeds.UID | FetchNeeds.FLAGS | FetchNeeds.HEADER | FetchNeeds.STRUCTURE
    assert FetchNeeds.BODY not in need


@pytest.mark.parametrize(
    "text",
    [
        b"FOO",
        b"()",
        b"BODY[",
        b"BODY[X]",
        b"BODY[0]",
        b"BODY[01]",
        b"BODY[MIME]",
        b"BODY[HEADER.FIELDS]",
        b"BODY[TEXT (X)]",
        b"BODY[]<>",
        b"BODY[]<1.>",
        b"BODY[]<.1>",
        b"BODY[]<a.b>",
        b"BODY[]x",
        b"BODY.PEEK",
        b"BODYX[]",
        b"BODY[HEADER.FIELDS (\x7f)]",
        b"(FLAGS",
        b"RFC822.FOO",
        b"BODY[]<4294967296.1>",
    ],
)
def test_invalid(text: bytes) -> None:
    with pytest.raises(BadSyntax):
        parse(text)
