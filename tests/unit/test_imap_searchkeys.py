"""SEARCH keys: every RFC 3501 key, charsets, what each key needs."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from courierpy.imap.errors import BadCharset, BadSyntax
from courierpy.imap.fetchatts import FetchNeeds
from courierpy.imap.grammar import BadCommand, Command, NeedContinuation
from courierpy.imap.searchkeys import (
    ALL,
    And,
    DateKey,
    HasFlag,
    Header,
    Not,
    Or,
    SeqKey,
    SizeKey,
    Text,
    UidKey,
    to_wire,
)
from courierpy.imap.seqset import SeqSet
from tests.unit.test_imap_grammar import events, feed

D = dt.date(2024, 1, 2)


def parse(text: bytes, *literals: bytes):
    """Parse ``SEARCH <text>`` through the whole reader (whole, byte by byte,
    at every split); each NUL in *text* stands for the next of *literals*."""
    segs = text.split(b"\x00")
    wire = b"a SEARCH "
    for i, seg in enumerate(segs[:-1]):
        wire += seg + b"{%d}\r\n" % len(literals[i]) + literals[i]
    wire += segs[-1] + b"\r\n"
    evs = [e for e in events(wire) if not isinstance(e, NeedContinuation)]
    (ev,) = evs
    if isinstance(ev, BadCommand):
        raise ev.error
    return ev.args.program


KEYS = [
    (b"ALL", ALL, FetchNeeds.NONE),
    (b"ANSWERED", HasFlag("\\Answered"), FetchNeeds.FLAGS),
    (b"BCC x", Header("BCC", "x"), FetchNeeds.STRUCTURE),
    (b"BEFORE 2-Jan-2024", DateKey("BEFORE", D), FetchNeeds.INTERNALDATE),
    (b'BODY "hello world"', Text("BODY", "hello world"), FetchNeeds.BODY),
    (b"CC x", Header("CC", "x"), FetchNeeds.STRUCTURE),
    (b"DELETED", HasFlag("\\Deleted"), FetchNeeds.FLAGS),
    (b"DRAFT", HasFlag("\\Draft"), FetchNeeds.FLAGS),
    (b"FLAGGED", HasFlag("\\Flagged"), FetchNeeds.FLAGS),
    (b"FROM alice", Header("FROM", "alice"), FetchNeeds.STRUCTURE),
    (b"HEADER X-Spam yes", Header("X-SPAM", "yes"), FetchNeeds.STRUCTURE),
    (b'HEADER "Message-ID" ""', Header("MESSAGE-ID", ""), FetchNeeds.STRUCTURE),
    (b"HEADER Fr:om x", Header("FR:OM", "x"), FetchNeeds.STRUCTURE),  # as Courier
    (b"KEYWORD $Label1", HasFlag("$Label1"), FetchNeeds.FLAGS),
    (b"LARGER 100", SizeKey("LARGER", 100), FetchNeeds.SIZE),
    (b"NEW", And((HasFlag("\\Recent"), Not(HasFlag("\\Seen")))), FetchNeeds.FLAGS),
    (b"NOT SEEN", Not(HasFlag("\\Seen")), FetchNeeds.FLAGS),
    (b"OLD", Not(HasFlag("\\Recent")), FetchNeeds.FLAGS),
    (b'ON "2-Jan-2024"', DateKey("ON", D), FetchNeeds.INTERNALDATE),
    (
        b"OR SEEN FROM x",
        Or(HasFlag("\\Seen"), Header("FROM", "x")),
        FetchNeeds.FLAGS | FetchNeeds.STRUCTURE,
    ),
    (b"RECENT", HasFlag("\\Recent"), FetchNeeds.FLAGS),
    (b"SEEN", HasFlag("\\Seen"), FetchNeeds.FLAGS),
    (b"SENTBEFORE 02-jan-2024", DateKey("BEFORE", D, True), FetchNeeds.STRUCTURE),
    (b"SENTON 2-Jan-2024", DateKey("ON", D, True), FetchNeeds.STRUCTURE),
    (b"SENTSINCE 2-Jan-2024", DateKey("SINCE", D, True), FetchNeeds.STRUCTURE),
    (b"SINCE 2-Jan-2024", DateKey("SINCE", D), FetchNeeds.INTERNALDATE),
    (b"SMALLER 5", SizeKey("SMALLER", 5), FetchNeeds.SIZE),
    (b"SUBJECT hi", Header("SUBJECT", "hi"), FetchNeeds.STRUCTURE),
    (b"TEXT hi", Text("TEXT", "hi"), FetchNeeds.BODY),
    (b"TO bob", Header("TO", "bob"), FetchNeeds.STRUCTURE),
    (b"UID 1:*", UidKey(SeqSet.parse(b"1:*")), FetchNeeds.UID),
    (b"UNANSWERED", Not(HasFlag("\\Answered")), FetchNeeds.FLAGS),
    (b"UNDELETED", Not(HasFlag("\\Deleted")), FetchNeeds.FLAGS),
    (b"UNDRAFT", Not(HasFlag("\\Draft")), FetchNeeds.FLAGS),
    (b"UNFLAGGED", Not(HasFlag("\\Flagged")), FetchNeeds.FLAGS),
    (b"UNKEYWORD Junk", Not(HasFlag("Junk")), FetchNeeds.FLAGS),
    (b"UNSEEN", Not(HasFlag("\\Seen")), FetchNeeds.FLAGS),
    (b"2,4:*", SeqKey(SeqSet.parse(b"2,4:*")), FetchNeeds.NONE),
    (b"(SEEN DELETED)", And((HasFlag("\\Seen"), HasFlag("\\Deleted"))), FetchNeeds.FLAGS),
    (b"(SEEN)", HasFlag("\\Seen"), FetchNeeds.FLAGS),
    (b"seen unseen", And((HasFlag("\\Seen"), Not(HasFlag("\\Seen")))), FetchNeeds.FLAGS),
]


@pytest.mark.parametrize("text,key,needs", KEYS, ids=[k[0].decode() for k in KEYS])
def test_keys(text: bytes, key: object, needs: FetchNeeds) -> None:
    prog = parse(text)
    assert prog.key == key
    assert prog.needs == needs
    assert prog.charset is None


def test_flag_searches_never_need_the_message() -> None:
    prog = parse(b"OR (UNSEEN FLAGGED) NOT (DELETED KEYWORD $Junk) UID 1:100")
    assert not prog.needs & (FetchNeeds.BODY | FetchNeeds.HEADER | FetchNeeds.STRUCTURE)


def test_charsets() -> None:
    assert parse(b"CHARSET utf-8 SUBJECT \x00", b"caf\xc3\xa9").key == Header("SUBJECT", "café")
    assert parse(b"CHARSET UTF-8 ALL").charset == "UTF-8"
    assert parse(b"CHARSET US-ASCII ALL").charset == "US-ASCII"
    assert parse(b"CHARSET ISO-8859-1 TEXT \x00", b"caf\xe9").key == Text("TEXT", "café")
    # no charset: UTF-8 if it decodes, Latin-1 otherwise
    assert parse(b"SUBJECT \x00", b"caf\xc3\xa9").key == Header("SUBJECT", "café")
    assert parse(b"SUBJECT \x00", b"caf\xe9").key == Header("SUBJECT", "café")
    with pytest.raises(BadCharset):
        parse(b"CHARSET X-UNKNOWN-CS ALL")
    with pytest.raises(BadSyntax):
        parse(b"CHARSET UTF-8 SUBJECT \x00", b"\xff")


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"FOO",
        b"SEEN ",
        b"FROM",
        b"OR SEEN",
        b"NOT",
        b"(SEEN",
        b"SEEN)",
        b"()",
        b"BEFORE 2024-01-02",
        b"BEFORE 30-Feb-2024",
        b"LARGER -1",
        b"LARGER 4294967296",
        b"KEYWORD \\Foo",
        b"KEYWORD (x)",
        b"HEADER (x) x",
        b"UID x",
        b"0",
        b"1:0",
        b'"SEEN"',
        b"CHARSET",
        b"CHARSET UTF-8",
    ],
)
def test_invalid(text: bytes) -> None:
    with pytest.raises(BadSyntax):
        parse(text)


def test_nesting_is_bounded() -> None:
    parse(b"NOT " * 60 + b"ALL")
    with pytest.raises(BadSyntax):
        parse(b"NOT " * 1000 + b"ALL")
    with pytest.raises(BadSyntax):
        parse(b"(" * 1000 + b"ALL" + b")" * 1000)


# --- round trip: any key tree -> SEARCH syntax -> the same tree ------------


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_seqset = st.lists(st.tuples(st.integers(0, 99), st.integers(0, 99)), min_size=1, max_size=3).map(
    lambda rs: SeqSet.parse(
        ",".join(
            ("*" if a == 0 else str(a)) + ("" if a == b else ":" + ("*" if b == 0 else str(b)))
            for a, b in rs
        ).encode()
    )
)
_leaf = st.one_of(
    st.just(ALL),
    st.sampled_from(["\\Answered", "\\Deleted", "\\Draft", "\\Flagged", "\\Recent", "\\Seen"]).map(
        HasFlag
    ),
    st.from_regex(r"[A-Za-z$][A-Za-z0-9_$.-]{0,8}", fullmatch=True).map(HasFlag),
    st.builds(Header, st.sampled_from(["FROM", "TO", "CC", "BCC", "SUBJECT"]), _text),
    st.builds(Header, st.from_regex(r"X-[A-Z0-9-]{1,8}", fullmatch=True), _text),
    st.builds(Text, st.sampled_from(["BODY", "TEXT"]), _text),
    st.builds(
        DateKey,
        st.sampled_from(["BEFORE", "ON", "SINCE"]),
        st.dates(dt.date(1000, 1, 1), dt.date(9999, 12, 31)),
        st.booleans(),
    ),
    st.builds(SizeKey, st.sampled_from(["LARGER", "SMALLER"]), st.integers(0, 4294967295)),
    st.builds(SeqKey, _seqset),
    st.builds(UidKey, _seqset),
)
_keys = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.builds(Or, inner, inner),
        st.lists(inner, min_size=2, max_size=4).map(lambda ks: And(tuple(ks))),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(_keys)
def test_search_keys_round_trip(key) -> None:
    wire = b"a SEARCH CHARSET UTF-8 " + to_wire(key) + b"\r\n"
    for chunks in ([wire], [bytes([b]) for b in wire]):
        evs = [e for e in feed(chunks) if isinstance(e, Command)]
        assert len(evs) == 1, wire
        assert evs[0].args.program.key == key, wire
