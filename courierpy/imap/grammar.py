"""The resumable IMAP command reader: bytes in, events out, no I/O.

Usage (the I/O loop, in outline)::

    reader = CommandReader(state=State.NOT_AUTHENTICATED)
    while True:
        ev = reader.next_event()
        if ev is NEED_DATA:
            reader.receive_data(sock.recv(65536))     # b"" at end of file
        elif isinstance(ev, NeedContinuation):
            # check ev.append (APPEND: mailbox exists? quota?) then either
            reader.accept_literal()
            if ev.synchronizing:
                send(b"+ OK\\r\\n")
            # ... or reader.reject_literal() and send a NO/BAD for ev.tag
        elif isinstance(ev, LiteralChunk):
            tmpfile.write(ev.data)                    # APPEND message, streamed
        elif isinstance(ev, Command):
            dispatch(ev)                              # may set reader.state / reader.utf8
        elif isinstance(ev, BadCommand):
            send(ev.response().to_bytes())
            if ev.fatal: close()
        elif isinstance(ev, ContinuationLine):        # after reader.expect_line()
            ...                                       # SASL response or IDLE's DONE
        elif isinstance(ev, ConnectionClosed):
            break

How a command is read: each line segment is lexed once (``tokens.lex_segment``)
and its tokens appended; a segment ending in ``{n}`` is followed by *n* bytes
of literal data, kept as one token (bounded by ``max_literal``) or, for the
message of an APPEND, handed out as :class:`LiteralChunk` events and never
held whole.  When the last segment arrives the command's grammar
(``state.py``) runs over the tokens once.  Nothing is re-parsed after a
literal, and feeding one byte at a time costs O(n) in total.

Limits, each answered before the data it would need arrives:

* a line longer than ``max_line`` → ``* BYE`` and the reader closes (Courier
  does the same: ``* BYE [ALERT] Fatal error: max atom size too small``);
* a literal over ``max_literal`` (``max_append`` for an APPEND message) →
  tagged ``BAD [TOOBIG]`` (``NO [TOOBIG]`` for APPEND) *instead of* ``+``; a
  non-synchronizing one (``{n+}``) is then skipped without being stored;
* more than ``max_tokens`` tokens or ``max_command`` bytes in one command
  → ``BAD [TOOBIG]``.

Courier's defects here (design.md §5) are not copied: ``LOGIN {4294967296}``
before login gets an immediate ``BAD`` (Courier never answers), and
``APPEND INBOX {4294967296}`` gets ``NO [TOOBIG]`` instead of ``+ OK``.
(Courier refuses other literals over 8192 bytes with ``* NO [ALERT] IMAP
command too long.`` and ``BAD Invalid command``; our limit is ``max_literal``.)
Courier has no LITERAL+: it refuses ``{n+}`` and then reads the literal's
bytes as a command.  We accept ``{n+}``, which no client sends unless the
capability is advertised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from courierpy.errors import CourierError
from courierpy.imap import state as _state
from courierpy.imap.errors import (
    BadSyntax,
    Fatal,
    ImapError,
    MessageTooBig,
    TooBig,
)
from courierpy.imap.responses import Tagged, UntaggedStatus
from courierpy.imap.state import AppendPrefix, CmdFlag, Spec, State
from courierpy.imap.tokens import (
    MAX_NUMBER,
    Cursor,
    LiteralMarker,
    StreamedLiteral,
    Tok,
    Token,
    is_tag,
    lex_segment,
)
from courierpy.wire.buffer import LineTooLong, ReceiveBuffer

__all__ = [
    "NEED_DATA",
    "BadCommand",
    "Command",
    "CommandReader",
    "ConnectionClosed",
    "ContinuationLine",
    "LiteralChunk",
    "NeedContinuation",
    "ReaderMisuse",
]


class _NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


#: Returned by :meth:`CommandReader.next_event` when more bytes are needed.
NEED_DATA = _NeedData()


class ReaderMisuse(CourierError):
    """The caller used the reader out of order (a bug in the I/O loop)."""


@dataclass(frozen=True, slots=True)
class Command:
    """A complete, well-formed command allowed in the current state."""

    tag: str
    name: str
    args: object
    spec: Spec = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class BadCommand:
    """A command that was refused while being read; answer ``response()``.

    *tag* is ``None`` when the tag itself could not be read (the answer is
    then untagged).  *fatal* means: send the answer, then close.
    """

    tag: str | None
    error: ImapError

    @property
    def message(self) -> str:
        """The text the client sees."""
        return self.error.text

    @property
    def detail(self) -> str:
        """What exactly was wrong, for the log."""
        return self.error.detail

    @property
    def fatal(self) -> bool:
        return self.error.fatal

    def response(self) -> Tagged | UntaggedStatus:
        return self.error.response(self.tag)


@dataclass(frozen=True, slots=True)
class NeedContinuation:
    """A literal is about to be read; the loop must decide.

    Emitted for every synchronizing literal ``{n}`` and for the message
    literal of APPEND even when non-synchronizing (``{n+}``), so the loop can
    check the target mailbox (``append``) before any data is read.  Call
    :meth:`CommandReader.accept_literal` — and send ``+ OK`` when
    *synchronizing* — or :meth:`CommandReader.reject_literal` and answer the
    tag with a NO/BAD.
    """

    tag: str
    name: str
    size: int
    synchronizing: bool
    #: the APPEND arguments before the message, when the literal is streamed
    append: AppendPrefix | None = None

    @property
    def streamed(self) -> bool:
        return self.append is not None


@dataclass(frozen=True, slots=True)
class LiteralChunk:
    """Part of a streamed literal (the APPEND message), in order."""

    data: bytes
    #: bytes of the literal still to come after this chunk
    remaining: int


@dataclass(frozen=True, slots=True)
class ContinuationLine:
    """A raw client line requested with :meth:`CommandReader.expect_line`
    (a SASL response, or ``DONE`` ending IDLE), CRLF removed."""

    data: bytes


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed its side (``receive_data(b"")``) and all input is consumed."""


_LINE, _LITERAL, _STREAM, _DECIDE, _SKIP, _RAWLINE, _CLOSED = range(7)

_TRAILING_MARKER = re.compile(rb"(?:^|[ (])\{(\d{1,20})(\+?)\}$")


class CommandReader:
    """Reads IMAP commands from a byte stream; see the module docstring.

    The session keeps :attr:`state` (for the wrong-state check, ``None`` to
    skip it) and :attr:`utf8` (after ``ENABLE UTF8=ACCEPT``) current;
    :attr:`searchres` allows ``$`` as a sequence set (RFC 5182).
    """

    def __init__(
        self,
        *,
        state: State | None = State.NOT_AUTHENTICATED,
        utf8: bool = False,
        searchres: bool = False,
        max_line: int = 65536,
        max_literal: int = 65536,
        max_append: int = 1 << 30,
        max_command: int = 1 << 20,
        max_tokens: int = 10000,
    ) -> None:
        self.state = state
        self.utf8 = utf8
        self.searchres = searchres
        self.max_literal = max_literal
        self.max_append = max_append
        self.max_command = max_command
        self.max_tokens = max_tokens
        self._buf = ReceiveBuffer(max_line=max_line)
        self._mode = _LINE
        self._eof = False
        self._closed_reported = False
        self._reset()

    # --- public API

    @property
    def closed(self) -> bool:
        """True after a fatal error: the loop must close the connection."""
        return self._mode == _CLOSED

    @property
    def at_rest(self) -> bool:
        """Nothing of a command or continuation line is received or buffered yet.

        (A server stopping cleanly may end the connection now without cutting
        a command in half.)
        """
        return (self._mode in (_LINE, _RAWLINE) and not self._tokens and self._tag is None
                and not self._discarding and not len(self._buf))

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the client; ``b""`` means end of file."""
        if not data:
            self._eof = True
        elif self._mode != _CLOSED:
            self._buf.feed(data)

    def next_event(self) -> object:
        """The next event, or :data:`NEED_DATA`."""
        while True:
            mode = self._mode
            if mode == _LINE:
                ev = self._step_line()
            elif mode == _LITERAL:
                ev = self._step_literal()
            elif mode == _STREAM:
                ev = self._step_stream()
            elif mode == _SKIP:
                ev = self._step_skip()
            elif mode == _RAWLINE:
                ev = self._step_rawline()
            elif mode == _DECIDE:
                raise ReaderMisuse("call accept_literal() or reject_literal() first")
            else:
                return NEED_DATA
            if ev is None:
                continue
            if ev is NEED_DATA and self._eof and not self._closed_reported:
                self._closed_reported = True
                return ConnectionClosed()
            return ev

    def accept_literal(self) -> None:
        """Read the literal announced by :class:`NeedContinuation`."""
        if self._mode != _DECIDE:
            raise ReaderMisuse("no literal is waiting for a decision")
        assert self._marker is not None
        self._remaining = self._marker.size
        self._mode = _STREAM if self._streaming else _LITERAL

    def reject_literal(self) -> None:
        """Drop the command whose literal was announced (the loop answers it).

        A synchronizing literal is never sent by the client; a
        non-synchronizing one is skipped without being stored.
        """
        if self._mode != _DECIDE:
            raise ReaderMisuse("no literal is waiting for a decision")
        assert self._marker is not None
        self._discard_pending(self._marker)

    def expect_line(self) -> None:
        """Make the next line a :class:`ContinuationLine`, not a command."""
        if self._mode != _LINE or self._tokens or self._discarding:
            raise ReaderMisuse("expect_line() only between commands")
        self._mode = _RAWLINE

    # --- internals

    def _reset(self) -> None:
        self._tokens: list[Token] = []
        self._tag: str | None = None
        self._spec: Spec | None = None
        self._args_pos = 0
        self._size = 0
        self._marker: LiteralMarker | None = None
        self._streaming = False
        self._lit = bytearray()
        self._remaining = 0
        self._discarding = False

    def _fail(self, error: ImapError) -> BadCommand:
        ev = BadCommand(self._tag, error)
        if error.fatal:
            self._mode = _CLOSED
            self._buf = ReceiveBuffer(max_line=1)
        return ev

    def _read_line(self) -> bytes | None | BadCommand:
        try:
            line = self._buf.next_line()
        except LineTooLong:
            tag = self._tag
            self._reset()
            self._tag = tag
            return self._fail(Fatal("Command line too long."))
        if line is None:
            return None
        if line.endswith(b"\r\n"):
            return line[:-2]
        return line[:-1]  # a bare LF is accepted as the end of line

    def _discard_pending(self, marker: LiteralMarker) -> None:
        """Forget the current command; skip a non-synchronizing literal's bytes."""
        self._reset()
        if marker.synchronizing:
            self._mode = _LINE
        else:
            self._discarding = True
            self._remaining = marker.size
            self._mode = _SKIP

    def _reject(self, error: ImapError, line: bytes) -> BadCommand:
        """Answer *error* for the current command; skip what the client still sends."""
        if self._tag is None and self._tokens:
            kind, value = self._tokens[0]
            if kind == Tok.ATOM and is_tag(value):  # type: ignore[arg-type]
                self._tag = value.decode("ascii")  # type: ignore[union-attr]
        ev = self._fail(error)
        if self._mode == _CLOSED:
            return ev
        m = _TRAILING_MARKER.search(line)
        if m and m.group(2):
            self._discard_pending(LiteralMarker(int(m.group(1)), False))
        else:
            self._reset()
            self._mode = _LINE
        return ev

    def _step_line(self) -> object:
        line = self._read_line()
        if line is None:
            return NEED_DATA
        if isinstance(line, BadCommand):
            return line
        if self._discarding:
            # the rest of a command already answered: skip its literals too
            m = _TRAILING_MARKER.search(line)
            if m and m.group(2):
                self._remaining = int(m.group(1))
                self._mode = _SKIP
            else:
                self._reset()
            return None
        first = not self._tokens and self._tag is None
        if first and not line:
            return self._fail(BadSyntax())
        self._size += len(line) + 2
        if self._size > self.max_command:
            return self._reject(TooBig("Command too long."), line)
        try:
            marker = lex_segment(line, self._tokens)
            if first:
                self._start_command()
            if len(self._tokens) > self.max_tokens:
                raise TooBig("Too many arguments.")
            if marker is None:
                return self._finish()
            return self._start_literal(marker)
        except ImapError as e:
            return self._reject(e, line)

    def _start_command(self) -> None:
        toks = self._tokens
        if not toks or toks[0][0] != Tok.ATOM or not is_tag(toks[0][1]):  # type: ignore[arg-type]
            raise BadSyntax()
        self._tag = toks[0][1].decode("ascii")  # type: ignore[union-attr]
        cur = Cursor(toks, 1, self.utf8, self.searchres)
        name = _state.read_name(cur)
        self._spec = _state.lookup(name, self.state)
        self._args_pos = cur.pos

    def _finish(self) -> object:
        assert self._spec is not None and self._tag is not None
        spec, tag = self._spec, self._tag
        cur = Cursor(self._tokens, self._args_pos, self.utf8, self.searchres)
        args = _state.parse_arguments(spec, cur)
        self._reset()
        return Command(tag, spec.name, args, spec)

    def _start_literal(self, marker: LiteralMarker) -> object:
        assert self._spec is not None and self._tag is not None
        spec = self._spec
        prefix = None
        if spec.flags & CmdFlag.STREAMS_LITERAL:
            rest = self._tokens[self._args_pos :]
            if rest != [(Tok.SP, None)]:  # not the mailbox name itself
                cur = Cursor(self._tokens, self._args_pos, self.utf8, self.searchres)
                prefix = _state.parse_append_prefix(cur)
                if not cur.at_end():
                    raise BadSyntax()
        self._marker = marker
        self._streaming = prefix is not None
        if prefix is not None:
            if marker.size > min(self.max_append, MAX_NUMBER):
                raise MessageTooBig()
        else:
            if marker.size > min(self.max_literal, MAX_NUMBER):
                raise TooBig()
            if self._size + marker.size > self.max_command:
                raise TooBig("Command too long.")
        if marker.synchronizing or prefix is not None:
            self._mode = _DECIDE
            return NeedContinuation(self._tag, spec.name, marker.size, marker.synchronizing, prefix)
        self._remaining = marker.size
        self._mode = _LITERAL
        return None

    def _step_literal(self) -> object:
        if self._remaining:
            chunk = self._buf.take(self._remaining)
            if not chunk:
                return NEED_DATA
            self._lit += chunk
            self._remaining -= len(chunk)
            if self._remaining:
                return NEED_DATA
        self._size += len(self._lit)
        self._tokens.append((Tok.LITERAL, bytes(self._lit)))
        self._lit = bytearray()
        self._mode = _LINE
        return None

    def _step_stream(self) -> object:
        if self._remaining:
            chunk = self._buf.take(self._remaining)
            if not chunk:
                return NEED_DATA
            self._remaining -= len(chunk)
            return LiteralChunk(chunk, self._remaining)
        assert self._marker is not None
        self._tokens.append((Tok.STREAMED, StreamedLiteral(self._marker.size)))
        self._mode = _LINE
        return None

    def _step_skip(self) -> object:
        while self._remaining:
            chunk = self._buf.take(self._remaining)
            if not chunk:
                return NEED_DATA
            self._remaining -= len(chunk)
        self._mode = _LINE
        return None

    def _step_rawline(self) -> object:
        line = self._read_line()
        if line is None:
            return NEED_DATA
        if isinstance(line, BadCommand):
            return line
        self._mode = _LINE
        return ContinuationLine(line)
