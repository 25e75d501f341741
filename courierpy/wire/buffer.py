"""A receive buffer for line-based protocols with literals (IMAP, POP3, authdaemon).

Bytes go in with :meth:`ReceiveBuffer.feed`; complete lines come out of
:meth:`next_line`, and the bytes of a literal (IMAP ``{n}``) come out in
chunks of at most the size still wanted through :meth:`take`, so a large
literal can be streamed to disk instead of being held in memory.

Searching for the end of a line resumes where the previous search stopped,
so feeding one byte at a time costs O(n) in total, not O(n^2). A line longer
than ``max_line`` raises :class:`LineTooLong` as soon as it is known to be too
long — without waiting for its end — and the caller decides how to answer.
"""

from __future__ import annotations

__all__ = ["LineTooLong", "ReceiveBuffer"]


class LineTooLong(Exception):
    """The peer sent a line longer than the buffer accepts."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"line longer than {limit} bytes")
        self.limit = limit


class ReceiveBuffer:
    def __init__(self, max_line: int = 65536, terminator: bytes = b"\n") -> None:
        self.max_line = max_line
        self._data = bytearray()
        self._searched = 0  # bytes of _data already known to hold no terminator
        self._term = terminator

    def __len__(self) -> int:
        return len(self._data)

    def feed(self, data: bytes) -> None:
        """Append bytes received from the peer."""
        self._data += data

    def next_line(self) -> bytes | None:
        """Remove and return the next line including its terminator, or ``None``.

        Lines end with the terminator (LF by default; a preceding CR stays in
        the returned bytes for the caller to strip). Raises
        :class:`LineTooLong` when more than ``max_line`` bytes arrive without
        one; the buffered bytes of that line are then discarded up to what was
        received, and :meth:`skip_line` can discard the rest.
        """
        idx = self._data.find(self._term, self._searched)
        if idx < 0:
            self._searched = max(0, len(self._data) - len(self._term) + 1)
            if len(self._data) > self.max_line:
                self._data.clear()
                self._searched = 0
                raise LineTooLong(self.max_line)
            return None
        end = idx + len(self._term)
        if end > self.max_line + len(self._term) + 1:
            del self._data[:end]
            self._searched = 0
            raise LineTooLong(self.max_line)
        line = bytes(self._data[:end])
        del self._data[:end]
        self._searched = 0
        return line

    def skip_line(self) -> bool:
        """Discard bytes up to and including the next terminator; True if one was found."""
        idx = self._data.find(self._term)
        if idx < 0:
            self._data.clear()
            self._searched = 0
            return False
        del self._data[: idx + len(self._term)]
        self._searched = 0
        return True

    def take(self, n: int) -> bytes:
        """Remove and return up to *n* buffered bytes (for literals); may be empty."""
        chunk = bytes(self._data[:n])
        del self._data[:n]
        self._searched = 0
        return chunk
