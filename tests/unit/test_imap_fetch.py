"""FETCH rendering (courierpy.imap.fetch) and flag mapping (courierpy.imap.flags)
on real Maildir files; the byte-for-byte comparison with Courier is in
tests/oracle/test_fetch_search_oracle.py."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from courierpy.imap.fetch import (
    STREAM_THRESHOLD,
    MessageView,
    fetch_response,
    internaldate,
    render_fetch,
)
from courierpy.imap.fetchatts import Section
from courierpy.imap.flags import SYSTEM_FLAGS, imap_flags, keywords_in, letters_for
from courierpy.imap.responses import LiteralStream
from courierpy.maildir.cache import MessageMeta, MetadataCache
from courierpy.mime.imapwire import Section as WireSection
from courierpy.mime.imapwire import fetch_section_from_file, message_wire
from tests.support import require
from tests.unit.test_imap_grammar import feed

MSG = (
    b"From: Alice <alice@example.com>\nTo: bob@example.org\nSubject: hi\n"
    b"Date: Mon, 1 Jan 2024 10:00:00 +0000\nMIME-Version: 1.0\n"
    b"Content-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\n\n"
    b"part one\n--B\nContent-Type: text/html\n\n<p>two</p>\n--B--\n"
)


def crlf(b: bytes) -> bytes:
    return b.replace(b"\n", b"\r\n")


def atts(text: str):
    (ev,) = [e for e in feed([b"a FETCH 1 " + text.encode() + b"\r\n"])
             if type(e).__name__ == "Command"]
    return ev.args.atts


def setup(tmp_path: Path, data: bytes = MSG, flags: tuple[str, ...] = ("\\Seen",)):
    md = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True, exist_ok=True)
    p = md / "cur" / "1700000000.M1P1.h:2,S"
    p.write_bytes(data)
    os.utime(p, (1704103200, 1704103200))
    view = MessageView(3, 17, p, "1700000000.M1P1.h", flags, 1704103200.0, len(data))
    return md, p, view


def render(view, text, cache) -> bytes:
    return b"".join(fetch_response(view.seq, render_fetch(view, atts(text), cache)).iter_bytes())


# -- flags --------------------------------------------------------------------------


def test_imap_flags_courier_order() -> None:
    assert imap_flags("DFRST", [], True) == (
        "\\Draft", "\\Flagged", "\\Answered", "\\Seen", "\\Deleted", "\\Recent")
    assert imap_flags("S", ["zeta", "Zeta2", "$Junk", "alpha", "alpha"], False) == (
        "\\Seen", "$Junk", "Zeta2", "alpha", "zeta")
    assert imap_flags("", [], False) == ()


def test_letters_for_and_keywords_in() -> None:
    assert letters_for(["\\Seen", "\\answered", "$Junk", "\\Recent", "\\DRAFT"]) == "DRS"
    assert letters_for(SYSTEM_FLAGS) == "DFRST"
    assert keywords_in(["\\Seen", "\\Recent", "$Junk", "Work"]) == {"$Junk", "Work"}
    for letters in ("", "S", "DFRST", "FT"):
        assert letters_for(imap_flags(letters, ["k"], True)) == letters


# -- items -----------------------------------------------------------------------------


def test_internaldate_in_local_time(monkeypatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        assert internaldate(1704103200) == b'"01-Jan-2024 10:00:00 +0000"'
        monkeypatch.setenv("TZ", "America/New_York")
        time.tzset()
        assert internaldate(1704103200) == b'"01-Jan-2024 05:00:00 -0500"'
        monkeypatch.setenv("TZ", "Asia/Kolkata")
        time.tzset()
        assert internaldate(1704103200) == b'"01-Jan-2024 15:30:00 +0530"'
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata",
                                  "Asia/Kathmandu", "Australia/Lord_Howe", "America/St_Johns",
                                  "Europe/Amsterdam", "America/Sao_Paulo", "Pacific/Apia"])
def test_internaldate_as_localtime_gives_it(monkeypatch, zone) -> None:
    """The memoized rendering agrees with time.localtime() second by second
    around DST changes, odd offsets (+0545, half-hour DST, LMT seconds), the
    1930s and the epoch."""
    from courierpy.imap.fetch import _internaldate

    require(f"/usr/share/zoneinfo/{zone}", "Debian's tzdata")
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        times = [0.0, 1.5, -1.0, -86401.25, 1e9 + 0.999, 1704103200.0]
        for year in (1935, 2011, 2024):
            start = time.mktime((year, 1, 1, 0, 0, 0, 0, 0, -1))
            times += [start + h * 1800 + s for h in range(0, 366 * 48, 7) for s in (0, 59.9)]
            for a, b in zip(times[-200:], times[-199:], strict=False):  # changes: by the second
                if time.localtime(a).tm_gmtoff != time.localtime(b).tm_gmtoff:
                    times += [a + s for s in range(0, int(b - a) + 1, 61)]
        for t in times:
            assert internaldate(t) == _internaldate(t), (zone, t)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_simple_items_in_request_order(tmp_path) -> None:
    md, p, view = setup(tmp_path)
    cache = MetadataCache(md)
    wire = message_wire(MSG)
    got = render(view, "(UID FLAGS RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE)", cache)
    assert got == (
        b"* 3 FETCH (UID 17 FLAGS (\\Seen) RFC822.SIZE %d ENVELOPE %s BODY %s BODYSTRUCTURE %s)"
        b"\r\n" % (wire.rfc822_size, wire.envelope, wire.body, wire.bodystructure))


def test_sections_and_rfc822_forms(tmp_path) -> None:
    md, p, view = setup(tmp_path)
    cache = MetadataCache(md)
    whole = crlf(MSG)
    head, _, text = whole.partition(b"\r\n\r\n")
    assert render(view, "RFC822", cache) == b"* 3 FETCH (RFC822 {%d}\r\n%s)\r\n" % (
        len(whole), whole)
    assert render(view, "(RFC822.HEADER RFC822.TEXT)", cache) == (
        b"* 3 FETCH (RFC822.HEADER {%d}\r\n%s\r\n\r\n RFC822.TEXT {%d}\r\n%s)\r\n"
        % (len(head) + 4, head, len(text), text))
    assert render(view, "BODY.PEEK[1]", cache) == b"* 3 FETCH (BODY[1] {8}\r\npart one)\r\n"
    assert render(view, "BODY[2]<3.4>", cache) == b"* 3 FETCH (BODY[2]<3> {4}\r\ntwo<)\r\n"
    assert render(view, "BODY[2.MIME]", cache) == (
        b"* 3 FETCH (BODY[2.MIME] {27}\r\nContent-Type: text/html\r\n\r\n)\r\n")
    assert render(view, "BODY.PEEK[HEADER.FIELDS (subject TO)]", cache) == (
        b'* 3 FETCH (BODY[HEADER.FIELDS ("subject" "TO")] {36}\r\n'
        b"To: bob@example.org\r\nSubject: hi\r\n\r\n)\r\n")
    assert render(view, "BODY[7]", cache) == b"* 3 FETCH (BODY[7] {0}\r\n)\r\n"
    assert render(view, "BODY[]<9999>", cache) == b"* 3 FETCH (BODY[]<9999> {0}\r\n)\r\n"


def test_one_section_class_for_grammar_and_mime() -> None:
    from courierpy.mime.imapwire import Section as WireSection
    from courierpy.mime.imapwire import parse_section

    assert Section is WireSection
    for spec in ("1.2.HEADER.FIELDS.NOT (From)", "", "3.MIME", "TEXT", "HEADER"):
        sec = parse_section(spec)
        assert parse_section(sec.wire(label=False).decode()) == sec
    assert Section((), "HEADER.FIELDS", ()).wire() == b"HEADER.FIELDS"
    assert Section((), "HEADER.FIELDS", ()).wire(label=False) == b"HEADER.FIELDS ()"

def test_big_sections_stream_from_the_file(tmp_path) -> None:
    big = b"Subject: big\n\n" + b"line of text\n" * (STREAM_THRESHOLD // 6)
    md, p, view = setup(tmp_path, big)
    items = render_fetch(view, atts("(BODY.PEEK[] BODY.PEEK[TEXT]<5.10>)"), MetadataCache(md))
    stream = items[1]
    assert isinstance(stream, LiteralStream)
    assert stream.size == len(crlf(big))
    assert b"".join(stream.source()) == crlf(big)
    assert items[3] == b"{10}\r\nof text\r\nl"


def test_warm_cache_needs_no_message_file(tmp_path) -> None:
    md, p, view = setup(tmp_path)
    cache = MetadataCache(md)
    first = render(view, "(ENVELOPE BODYSTRUCTURE RFC822.SIZE)", cache)
    cache.save()
    p.unlink()  # gone: a warm cache still answers everything but sections
    again = MetadataCache(md)
    assert render(view, "(ENVELOPE BODYSTRUCTURE RFC822.SIZE)", again) == first
    assert again.parsed == 0


def test_renamed_file_is_found_by_basename(tmp_path) -> None:
    md, p, view = setup(tmp_path)
    os.rename(p, p.with_name("1700000000.M1P1.h:2,FS"))  # another session flagged it
    got = render(view, "BODY.PEEK[1]", MetadataCache(md))
    assert got == b"* 3 FETCH (BODY[1] {8}\r\npart one)\r\n"


def test_expunged_message_raises_message_gone(tmp_path) -> None:
    from courierpy.maildir.store import MessageGone

    md, p, view = setup(tmp_path)
    p.unlink()
    with pytest.raises(MessageGone):
        render_fetch(view, atts("BODY[]"), MetadataCache(md))


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.binary(max_size=600),
                 st.lists(st.sampled_from([b"From: a@b\n", b"Subject: x\r\n", b"\n", b"\r\n",
                                           b"body line\n", b"\r", b"--B\n", b"no newline",
                                           b"Content-Type: multipart/mixed; boundary=B\n"]),
                          max_size=30).map(b"".join)))
def test_a_whole_small_message_read_at_once_equals_the_part_tree_way(tmp_path, data) -> None:
    """BODY[]/RFC822 of a small message skip the part tree and the cache: the bytes must
    be those the tree's range of the whole message gives, whatever the message is."""
    md, p, view = setup(tmp_path, data)
    whole = render(view, "BODY.PEEK[]", MetadataCache(md))
    tree = MessageMeta.parse(data, len(data), 0).tree()
    expected = fetch_section_from_file(p, tree, WireSection(), None).read()
    assert whole == b"* 3 FETCH (BODY[] {%d}\r\n%s)\r\n" % (len(expected), expected)


def test_a_large_whole_message_is_still_streamed(tmp_path) -> None:
    data = MSG + b"x" * 70 + (b"line of text\n" * (STREAM_THRESHOLD // 13))
    md, p, view = setup(tmp_path, data)
    streams = [i for i in render_fetch(view, atts("BODY.PEEK[]"), MetadataCache(md))
               if isinstance(i, LiteralStream)]
    assert len(streams) == 1 and streams[0].size == len(crlf(data))
