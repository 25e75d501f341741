"""Sequence sets: parsing, resolution against counts and UID lists."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courierpy.imap.errors import BadSyntax
from courierpy.imap.seqset import STAR, SeqSet, compress


@pytest.mark.parametrize(
    "text,ranges",
    [
        (b"1", ((1, 1),)),
        (b"*", ((STAR, STAR),)),
        (b"1:*", ((1, STAR),)),
        (b"4:2", ((4, 2),)),
        (b"1,3:5,*:7", ((1, 1), (3, 5), (STAR, 7))),
        (b"4294967295", ((4294967295, 4294967295),)),
    ],
)
def test_parse(text: bytes, ranges: tuple) -> None:
    s = SeqSet.parse(text)
    assert s.ranges == ranges
    assert str(s).encode() == text


def test_parse_lenient_as_courier() -> None:
    # Courier accepts leading zeros and empty elements; so do we
    assert SeqSet.parse(b"01").ranges == ((1, 1),)
    assert SeqSet.parse(b"1,").ranges == ((1, 1),)
    assert SeqSet.parse(b",1,,2").ranges == ((1, 1), (2, 2))


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"0",
        b"1:0",
        b"00",
        b",",
        b",,",
        b"1::2",
        b"a",
        b"1:x",
        b"-1",
        b"4294967296",
        b"1 2",
        b"**",
        b"1:2:3",
        b"\xd9\xa1",
        b"$$",
    ],
)
def test_parse_invalid(text: bytes) -> None:
    with pytest.raises(BadSyntax):
        SeqSet.parse(text)


def test_saved_result() -> None:
    s = SeqSet.parse(b"$")
    assert s.saved and str(s) == "$"
    with pytest.raises(BadSyntax):
        SeqSet.parse(b"$", allow_saved=False)
    with pytest.raises(ValueError):
        s.resolve_seq(3)


def test_resolve_seq() -> None:
    assert SeqSet.parse(b"1:*").resolve_seq(3) == [1, 2, 3]
    assert SeqSet.parse(b"*").resolve_seq(3) == [3]
    assert SeqSet.parse(b"*:2").resolve_seq(5) == [2, 3, 4, 5]
    assert SeqSet.parse(b"2,2,1:2").resolve_seq(5) == [1, 2]
    assert SeqSet.parse(b"4:9").resolve_seq(5) == [4, 5]
    assert SeqSet.parse(b"1:*").resolve_seq(0) == []
    assert SeqSet.parse(b"4").out_of_range(3)
    assert not SeqSet.parse(b"1:*").out_of_range(3)
    assert SeqSet.parse(b"*").out_of_range(0)  # Courier: FETCH * on an empty mailbox -> NO


def test_resolve_uids() -> None:
    uids = [3, 7, 9, 20]
    assert SeqSet.parse(b"1:*").resolve_uids(uids) == uids
    assert SeqSet.parse(b"*").resolve_uids(uids) == [20]
    # RFC 3501 6.4.8: "n:*" always includes the largest UID, even when n is above it
    assert SeqSet.parse(b"100:*").resolve_uids(uids) == [20]
    assert SeqSet.parse(b"8:4").resolve_uids(uids) == [7]
    assert SeqSet.parse(b"1,2").resolve_uids(uids) == []
    assert SeqSet.parse(b"1:*").resolve_uids([]) == []


def test_wide_ranges_cost_nothing() -> None:
    s = SeqSet.parse(b",".join([b"1:4294967295"] * 5000))
    assert s.resolve_seq(3) == [1, 2, 3]
    assert s.merged(10) == [(1, 4294967295)]


def test_contains() -> None:
    s = SeqSet.parse(b"2:4,*")
    assert [n for n in range(1, 11) if s.contains(n, 10)] == [2, 3, 4, 10]


def test_compress() -> None:
    assert compress([1, 2, 3, 5, 7, 8]) == "1:3,5,7:8"
    assert compress([]) == ""
    assert compress([5, 1, 2]) == "5,1:2"  # order kept for COPYUID pairs


ranges = st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)), min_size=1, max_size=8)


@given(ranges, st.integers(0, 25))
def test_resolve_seq_matches_naive(rs: list, count: int) -> None:
    text = ",".join(
        ("*" if a == 0 else str(a)) + ("" if a == b else ":" + ("*" if b == 0 else str(b)))
        for a, b in rs
    )
    s = SeqSet.parse(text.encode())
    naive = set()
    for a, b in rs:
        a = count if a == 0 else a
        b = count if b == 0 else b
        naive.update(n for n in range(min(a, b), max(a, b) + 1) if 1 <= n <= count)
    assert s.resolve_seq(count) == sorted(naive)
    uids = sorted({n * 2 for n in range(1, count + 1)})
    largest = uids[-1] if uids else 0
    naive_u = set()
    for a, b in rs:
        a = largest if a == 0 else a
        b = largest if b == 0 else b
        naive_u.update(u for u in uids if min(a, b) <= u <= max(a, b))
    assert s.resolve_uids(uids) == sorted(naive_u)
