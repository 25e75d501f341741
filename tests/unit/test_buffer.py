"""The receive buffer: lines, literals, limits, byte-at-a-time input."""

from __future__ import annotations

import pytest

from courierpy.wire.buffer import LineTooLong, ReceiveBuffer

STREAM = b"a1 LOGIN x y\r\na2 APPEND INBOX {5}\r\nhello\r\na3 NOOP\r\n"


def drive(chunks: list[bytes]) -> list[bytes]:
    """Read the STREAM as an IMAP server would: lines, and the 5-byte literal."""
    buf = ReceiveBuffer(max_line=100)
    out: list[bytes] = []
    want = 0
    lit = b""
    for chunk in chunks:
        buf.feed(chunk)
        while True:
            if want:
                part = buf.take(want)
                if not part:
                    break
                lit += part
                want -= len(part)
                if not want:
                    out.append(lit)
                continue
            line = buf.next_line()
            if line is None:
                break
            out.append(line)
            if line.endswith(b"{5}\r\n"):
                want, lit = 5, b""
    return out


EXPECTED = [b"a1 LOGIN x y\r\n", b"a2 APPEND INBOX {5}\r\n", b"hello", b"\r\n", b"a3 NOOP\r\n"]


def test_whole_stream() -> None:
    assert drive([STREAM]) == EXPECTED


def test_one_byte_at_a_time() -> None:
    assert drive([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


def test_every_split_point() -> None:
    for i in range(len(STREAM) + 1):
        assert drive([STREAM[:i], STREAM[i:]]) == EXPECTED


def test_too_long_line_is_reported_before_its_end() -> None:
    buf = ReceiveBuffer(max_line=10)
    buf.feed(b"x" * 11)
    with pytest.raises(LineTooLong):
        buf.next_line()
    buf.feed(b"yyy\nnext\n")
    assert buf.skip_line()
    assert buf.next_line() == b"next\n"


def test_too_long_complete_line() -> None:
    buf = ReceiveBuffer(max_line=4)
    buf.feed(b"0123456789\nok\n")
    with pytest.raises(LineTooLong):
        buf.next_line()
    assert buf.next_line() == b"ok\n"


def test_byte_at_a_time_is_linear() -> None:
    """Feeding a long line byte by byte does not rescan what was already searched."""
    buf = ReceiveBuffer(max_line=1 << 20)
    for _ in range(200_000):
        buf.feed(b"x")
        assert buf.next_line() is None
    buf.feed(b"\n")
    assert len(buf.next_line() or b"") == 200_001
