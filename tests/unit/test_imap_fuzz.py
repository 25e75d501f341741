"""Fuzzing the command reader: it raises nothing but its own error types,
its memory stays bounded, and how the input is split never matters."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from courierpy.imap.grammar import (
    NEED_DATA,
    BadCommand,
    Command,
    CommandReader,
    ConnectionClosed,
    ContinuationLine,
    LiteralChunk,
    NeedContinuation,
)
from courierpy.imap.state import State

# Fragments that make up plausible (and implausible) IMAP input
FRAGMENTS = [
    b"a1 ",
    b"UID ",
    b"FETCH ",
    b"STORE ",
    b"SEARCH ",
    b"APPEND ",
    b"LOGIN ",
    b"SELECT ",
    b"LIST ",
    b"STATUS ",
    b"COPY ",
    b"SORT ",
    b"THREAD ",
    b"AUTHENTICATE ",
    b"NOOP",
    b"INBOX",
    b'"INBOX"',
    b'"a\\"b"',
    b'"',
    b"\\",
    b"(",
    b")",
    b" ",
    b"*",
    b"%",
    b"1:*",
    b"0",
    b"4294967296",
    b"BODY[",
    b"]",
    b"BODY.PEEK[HEADER.FIELDS (FROM)]<0.5>",
    b"{3}\r\n",
    b"{3+}\r\n",
    b"{0}\r\n",
    b"{99999999999}\r\n",
    b"{5",
    b"}",
    b"\r\n",
    b"\n",
    b"\r",
    b"\x00",
    b"\xff",
    b"&",
    b"&-",
    b"NIL",
    b"CHARSET ",
    b"UTF-8 ",
    b"OR ",
    b"NOT ",
    b"(\\Seen)",
    b'" 1-Jan-2024 10:00:00 +0000"',
    b"DONE",
    b"abc",
    b"$",
]

input_bytes = st.one_of(
    st.lists(st.sampled_from(FRAGMENTS), max_size=40).map(b"".join),
    st.binary(max_size=300),
)

LIMITS = dict(max_line=200, max_literal=50, max_append=100, max_command=400, max_tokens=60)


def run(chunks: list[bytes], state: State | None, utf8: bool, choices) -> list:
    reader = CommandReader(state=state, utf8=utf8, **LIMITS)
    out: list = []
    for c in chunks:
        if not c:
            continue  # b"" would mean end of file
        reader.receive_data(c)
        while True:
            ev = reader.next_event()
            if ev is NEED_DATA:
                break
            assert isinstance(
                ev,
                Command
                | BadCommand
                | NeedContinuation
                | LiteralChunk
                | ContinuationLine
                | ConnectionClosed,
            )
            if isinstance(ev, BadCommand):
                ev.response().to_bytes()  # every refusal renders
            if isinstance(ev, NeedContinuation):
                assert ev.size <= LIMITS["max_append"]
                if choices(ev):
                    reader.accept_literal()
                else:
                    reader.reject_literal()
            if isinstance(ev, LiteralChunk) and out and isinstance(out[-1], LiteralChunk):
                out[-1] = LiteralChunk(out[-1].data + ev.data, ev.remaining)
                continue
            if isinstance(ev, Command) and ev.name in ("AUTHENTICATE", "IDLE"):
                reader.expect_line()
            out.append(ev)
        # bounded memory: only what one command may hold, plus what was fed
        held = (
            len(reader._buf)
            + len(reader._lit)
            + sum(len(v) for k, v in reader._tokens if isinstance(v, bytes))
        )
        assert held <= LIMITS["max_command"] + LIMITS["max_line"] + len(c) + 2
        assert len(reader._tokens) <= LIMITS["max_tokens"] + LIMITS["max_line"]
    return out


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    input_bytes,
    st.sampled_from([None, State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED]),
    st.booleans(),
    st.booleans(),
    st.integers(1, 50),
)
def test_reader_never_raises_and_split_does_not_matter(
    data: bytes, state, utf8: bool, accept: bool, step: int
) -> None:
    def choose(ev):
        return accept or ev.size % 2 == 0

    whole = run([data], state, utf8, choose)
    split = run([data[i : i + step] for i in range(0, len(data), step)], state, utf8, choose)
    assert split == whole


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 20))
def test_endless_line_stays_bounded(kb: int) -> None:
    reader = CommandReader(state=None, max_line=4096)
    for _ in range(kb):
        reader.receive_data(b"x" * 1024)
        ev = reader.next_event()
        if isinstance(ev, BadCommand):
            assert ev.fatal
        assert len(reader._buf) <= 4096 + 1024
