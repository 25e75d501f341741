"""Property tests: the parser never raises, and offsets give back the message.

Messages are generated as real MIME structures (nested multiparts, encapsulated
messages, missing or bogus boundaries, CRLF or LF lines, 8-bit bytes, junk
headers) and as arbitrary bytes.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from courierpy.mime.envelope import Envelope
from courierpy.mime.headers import HeaderBlock
from courierpy.mime.imapwire import (
    _crlf_chunks,
    body,
    bodystructure,
    envelope,
    fetch_section,
    parse_section,
)
from courierpy.mime.tree import Part, parse


def crlf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


_line = st.one_of(
    st.sampled_from([b"", b"hello", b"--", b"--b", b"--b--", b"--c", b" folded", b"x: y"]),
    st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"")),
)
_header = st.sampled_from(
    [
        b"Subject: s",
        b"From: A <a@x>, Team: b@y;",
        b"To: undisclosed:;",
        b"MIME-Version: 1.0",
        b"Content-Transfer-Encoding: base64",
        b'Content-Disposition: attachment; filename="f"',
        b"Content-ID: <i>",
        b"junk line",
        b"  continuation",
        b"Subject: caf\xc3\xa9 \xff",
    ]
)


def _lines(nl: bytes):
    return st.lists(_line, max_size=5).map(lambda ls: b"".join(x + nl for x in ls))


@st.composite
def entity(draw, depth: int = 0) -> bytes:
    nl = draw(st.sampled_from([b"\n", b"\r\n"]))
    heads = draw(st.lists(_header, max_size=3))
    kind = draw(st.sampled_from(["leaf", "multi", "message"] if depth < 3 else ["leaf"]))
    if kind == "leaf":
        heads.append(draw(st.sampled_from([b"Content-Type: text/plain", b"Content-Type: ;;"])))
        payload = draw(_lines(nl))
    elif kind == "message":
        heads.append(b"Content-Type: message/rfc822")
        payload = draw(entity(depth + 1))
    else:
        boundary = draw(st.sampled_from([b"b", b"c", b"b2"]))
        heads.append(b"Content-Type: multipart/mixed; boundary=" + boundary)
        children = draw(st.lists(entity(depth + 1), max_size=3))
        payload = draw(_lines(nl))  # preamble
        for child in children:
            payload += b"--" + boundary + nl + child + nl
        if draw(st.booleans()):
            payload += b"--" + boundary + b"--" + nl
        payload += draw(_lines(nl))  # epilogue
    blank = draw(st.sampled_from([nl, nl, b""]))
    return b"".join(h + nl for h in heads) + blank + payload


def paths(tree: Part, prefix=(), out=None, depth=0):
    out = [] if out is None else out
    node = tree.message if tree.message is not None else tree
    for i, child in enumerate(node.children, 1):
        out.append(prefix + (i,))
        if depth < 6:
            paths(child, prefix + (i,), out, depth + 1)
    return out


def check_tree(data: bytes, tree: Part) -> None:
    assert tree.header_start == 0 and tree.end == len(data)
    assert tree.total_size == len(crlf(data))
    for part in tree.walk():
        assert 0 <= part.header_start <= part.header_end <= part.body_start <= part.end
        region = data[part.body_start : part.end]
        assert part.size == len(crlf(region))
        assert part.lines == region.count(b"\n")
        assert part.header_size == len(crlf(data[part.header_start : part.body_start]))
        last = part.body_start
        for child in part.children:
            assert part.body_start <= last <= child.header_start and child.end <= part.end
            last = child.end
        if part.message is not None:
            assert (part.message.header_start, part.message.end) == (part.body_start, part.end)
    assert Part.from_json(json.loads(json.dumps(tree.to_json()))) == tree


def balanced(wire: bytes) -> bool:
    depth = 0
    i = 0
    while i < len(wire):
        c = wire[i : i + 1]
        if c == b'"':
            i += 1
            while wire[i : i + 1] != b'"':
                i += 2 if wire[i : i + 1] == b"\\" else 1
        elif c == b"(":
            depth += 1
        elif c == b")":
            depth -= 1
            if depth < 0:
                return False
        i += 1
    return depth == 0


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(entity())
def test_generated_messages(data: bytes) -> None:
    tree = parse(data)
    check_tree(data, tree)
    for wire in (bodystructure(tree), body(tree), envelope(tree.envelope)):
        assert balanced(wire), wire
        assert all(b < 0x80 for b in wire)
    whole = crlf(data)
    assert fetch_section(data, tree, parse_section("")).read() == whole
    for p in paths(tree):
        spec = ".".join(map(str, p))
        for suffix in ("", ".MIME", ".HEADER", ".TEXT", ".HEADER.FIELDS (Subject)"):
            got = fetch_section(data, tree, parse_section(spec + suffix))
            out = got.read()
            assert len(out) == got.size
            part = fetch_section(data, tree, parse_section(spec + suffix), (1, 3))
            assert part.read() == out[1:4]


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    tree = parse(data)
    check_tree(data, tree)
    bodystructure(tree)
    envelope(Envelope.from_header(HeaderBlock(data)))


@given(
    st.binary(max_size=200).map(lambda b: b.replace(b"x", b"\r\n")),
    st.integers(0, 250),
    st.one_of(st.none(), st.integers(0, 250)),
    st.integers(1, 9),
)
def test_streamed_chunks_equal_one_conversion(data, skip, limit, chunk) -> None:
    chunks = list(_crlf_chunks(data, 0, len(data), skip, limit, chunk))
    whole = crlf(data)[skip:]
    if limit is not None:
        whole = whole[:limit]
    assert b"".join(chunks) == whole
    assert all(chunks)


@given(st.text(alphabet='0123456789.HEADERFIELDSNOTMIXhfnot ()"', max_size=40))
def test_parse_section_raises_only_bad_section(spec: str) -> None:
    from courierpy.mime.imapwire import BadSection

    try:
        section = parse_section(spec)
    except BadSection:
        return
    assert parse_section(section.wire().decode()) == section


@given(
    st.lists(
        st.tuples(
            st.text(alphabet="abn*0123", min_size=1, max_size=6),
            st.text(alphabet="ab%'C3A9-x\u00e9", max_size=12),
        ),
        max_size=6,
    )
)
def test_decode_params_never_raises(params) -> None:
    from courierpy.mime.tree import decode_params

    assert isinstance(decode_params(tuple(params)), dict)
