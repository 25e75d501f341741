"""CommandReader.at_rest: what a stopping imapd asks before it says BYE (server.py)."""

from __future__ import annotations

from courierpy.imap.grammar import NEED_DATA, CommandReader, LiteralChunk, NeedContinuation
from courierpy.imap.state import State


def _events(reader: CommandReader, data: bytes) -> list[object]:
    reader.receive_data(data)
    out = []
    while (ev := reader.next_event()) is not NEED_DATA:
        out.append(ev)
        if isinstance(ev, NeedContinuation):
            reader.accept_literal()
    return out


def test_at_rest_between_commands_only() -> None:
    r = CommandReader(state=State.AUTHENTICATED)
    assert r.at_rest
    _events(r, b"a1 NOOP\r\n")
    assert r.at_rest
    _events(r, b"a2 NOO")  # half a command line
    assert not r.at_rest
    _events(r, b"P\r\n")
    assert r.at_rest


def test_not_at_rest_during_an_append_literal() -> None:
    r = CommandReader(state=State.AUTHENTICATED)
    evs = _events(r, b"a1 APPEND INBOX {10}\r\n")
    assert isinstance(evs[0], NeedContinuation) and not r.at_rest
    evs = _events(r, b"12345")
    assert isinstance(evs[0], LiteralChunk) and not r.at_rest
    _events(r, b"67890")  # the literal is in, the command line not ended
    assert not r.at_rest
    _events(r, b"\r\n")
    assert r.at_rest


def test_at_rest_waiting_for_a_continuation_line() -> None:
    r = CommandReader(state=State.AUTHENTICATED)
    r.expect_line()  # IDLE waits for DONE: nothing of it received yet
    assert r.at_rest
    _events(r, b"DO")
    assert not r.at_rest
