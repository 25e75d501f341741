"""courierpy.mime.headers: the header splitter, checked by hand and against the stdlib."""

from __future__ import annotations

import datetime
import email.header
import email.utils

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courierpy.mime import headers
from courierpy.mime.headers import (
    HeaderBlock,
    count_crlf_size,
    decode_addresses,
    decode_date,
    decode_words,
    find_header_end,
    split_fields,
    unfold,
)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"A: 1\nB: 2\n\nbody\n", (10, 11, True)),
        (b"A: 1\r\nB: 2\r\n\r\nbody\r\n", (12, 14, True)),
        (b"\nbody\n", (0, 1, True)),
        (b"\r\nbody\r\n", (0, 2, True)),
        (b"A: 1\nB: 2\n", (10, 10, False)),
        (b"A: 1", (4, 4, False)),
        (b"", (0, 0, False)),
        # A CRLF empty line after LF lines, and the other way round.
        (b"A: 1\n\r\nbody", (5, 7, True)),
        (b"A: 1\r\n\nbody", (6, 7, True)),
        # A bare CR does not end a line.
        (b"A: 1\r\rB: 2\n\nx", (11, 12, True)),
    ],
)
def test_find_header_end(data: bytes, expected: tuple[int, int, bool]) -> None:
    assert find_header_end(data) == expected


def test_find_header_end_stays_inside_its_region() -> None:
    data = b"xxA: 1\n\nbody\nyy"
    assert find_header_end(data, 2, 6) == (6, 6, False)
    assert find_header_end(data, 2, 8) == (7, 8, True)
    # An empty region, or one ending in a line break, right before a line break
    # (the next boundary's): that break ends the header.
    assert find_header_end(b"ab\n\ncd", 2, 2) == (2, 2, True)
    assert find_header_end(b"ab\n\ncd", 1, 1) == (1, 1, False)
    assert find_header_end(b"A: 1\n\n--b", 0, 5) == (5, 5, True)
    assert find_header_end(b"A: 1\n--b", 0, 4) == (4, 4, False)


def test_split_fields_folding_and_junk() -> None:
    data = b"junk without colon\nSubject: a\n  folded\n\tmore\nX-Weird :  spaced\nFrom:a@b\n"
    fields = split_fields(data, 0, len(data))
    assert [f.name for f in fields] == ["junk without colon", "subject", "x-weird", "from"]
    assert fields[0].colon == -1 and fields[0].value(data) == ""
    assert fields[1].raw(data) == b"Subject: a\n  folded\n\tmore\n"
    assert fields[1].value(data) == "a  folded\tmore"
    assert fields[2].value(data) == "spaced"
    assert fields[3].value(data) == "a@b"
    # The fields tile the block: nothing is lost.
    assert b"".join(f.raw(data) for f in fields) == data


def test_split_fields_leading_continuation_and_no_final_newline() -> None:
    data = b" starts folded\nA: 1\nB: 2"
    fields = split_fields(data, 0, len(data))
    assert b"".join(f.raw(data) for f in fields) == data
    assert fields[-1].name == "b" and fields[-1].value(data) == "2"


def test_header_block_lookup() -> None:
    data = b"Subject: one\nsubject: two\nTo: x@y\nJunk\n\nbody"
    hb = HeaderBlock(data)
    assert hb.get("subject") == "one"
    assert hb.get_all("subject") == ["one", "two"]
    assert hb.get("cc") is None and hb.get_all("cc") == []
    assert "to" in hb and "junk" not in hb
    assert hb.body_start == data.index(b"body")
    assert hb.terminated


def test_header_values_keep_8bit_bytes_as_latin1() -> None:
    data = b"Subject: caf\xc3\xa9\n\n"
    value = HeaderBlock(data).get("subject")
    assert value is not None
    assert value.encode("latin-1") == b"caf\xc3\xa9"


def test_unfold_removes_line_breaks_only() -> None:
    assert unfold(b" a\r\n  b\n\tc") == " a  b\tc"


@pytest.mark.parametrize(
    ("data", "size", "lfs"),
    [
        (b"", 0, 0),
        (b"abc", 3, 0),
        (b"a\nb\n", 6, 2),
        (b"a\r\nb\r\n", 6, 2),
        (b"a\rb", 3, 0),
        (b"a\r\r\n", 4, 1),
    ],
)
def test_count_crlf_size(data: bytes, size: int, lfs: int) -> None:
    assert count_crlf_size(data, 0, len(data)) == (size, lfs)


def test_count_crlf_size_crlf_across_chunk_edge(tmp_path) -> None:
    from courierpy.mime.imapwire import open_message

    chunk = headers._CHUNK
    data = b"x" * (chunk - 1) + b"\r\n" + b"y\n" * 3
    expected = len(data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    assert count_crlf_size(data, 0, len(data)) == (expected, 4)
    path = tmp_path / "m"
    path.write_bytes(data)
    with open_message(path) as buf:  # an mmap: counted chunk by chunk
        assert count_crlf_size(buf, 0, len(data)) == (expected, 4)
        assert count_crlf_size(buf, 5, len(data) - 1) == (expected - 7, 3)


@given(st.binary(max_size=300))
def test_count_crlf_size_matches_conversion(data: bytes) -> None:
    converted = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert count_crlf_size(data, 0, len(data)) == (len(converted), data.count(b"\n"))


# --- decoding helpers against the standard library --------------------------------


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("=?UTF-8?B?SGVsbG8gd29ybGQ=?= test", "Hello world test"),
        ("=?iso-8859-1?q?caf=E9?=", "café"),
        ("=?ISO-8859-1?Q?Andr=E9?= Pirard", "André Pirard"),
        ("plain text", "plain text"),
        ("=?unknown-charset?Q?x?=", "=?unknown-charset?Q?x?="),
        ("caf\xc3\xa9", "café"),  # 8-bit header bytes (latin-1 text) read as UTF-8
    ],
)
def test_decode_words(raw: str, text: str) -> None:
    assert decode_words(raw) == text


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=40))
def test_decode_words_inverts_stdlib_encoding(text: str) -> None:
    encoded = email.header.Header(text, "utf-8").encode()
    assert decode_words(encoded) == str(
        email.header.make_header(email.header.decode_header(encoded))
    )


def test_decode_addresses() -> None:
    values = ['"Doe, John" <john@example.com>, =?UTF-8?B?w4lyaWM=?= <eric@x.fr>', "a@b"]
    assert decode_addresses(values) == [
        ("Doe, John", "john@example.com"),
        ("Éric", "eric@x.fr"),
        ("", "a@b"),
    ]
    assert decode_addresses(values) == [
        p for p in email.utils.getaddresses([decode_words(v) for v in values]) if any(p)
    ]


def test_decode_date() -> None:
    assert decode_date("Mon, 1 Jan 2024 10:00:00 +0000") == datetime.datetime(
        2024, 1, 1, 10, 0, tzinfo=datetime.UTC
    )
    assert decode_date("garbage date") is None
    assert decode_date(None) is None
    assert decode_date("") is None
