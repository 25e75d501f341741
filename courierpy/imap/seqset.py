"""Sequence sets (RFC 3501 section 9, RFC 5182 ``$``).

::

    sequence-set    = (seq-number / seq-range) *("," sequence-set)
    seq-range       = seq-number ":" seq-number      ; either order: 4:2 == 2:4
    seq-number      = nz-number / "*"
    search-res      = "$"                             ; RFC 5182

A :class:`SeqSet` is a frozen value; :meth:`SeqSet.resolve` turns it into the
sorted numbers it names, either message sequence numbers (against a message
count) or UIDs (against the sorted UID list of the mailbox), with ``*`` being
the largest one.  A set that names nothing that exists resolves to an empty
list; the caller decides whether that is an error (Courier answers
``NO Error in IMAP command received by server.`` for a sequence number beyond
the mailbox, and nothing at all for UIDs).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from courierpy.imap.errors import BadSyntax

__all__ = ["STAR", "SeqSet", "compress"]

#: Stands for ``*`` in a range.
STAR = 0

_MAX = 4294967295
_MAX_RANGES = 100_000


@dataclass(frozen=True, slots=True)
class SeqSet:
    """Ranges ``(lo, hi)`` as sent (``STAR`` = ``*``), or the saved result ``$``."""

    ranges: tuple[tuple[int, int], ...]
    saved: bool = False

    @classmethod
    def parse(cls, data: bytes, *, allow_saved: bool = True) -> SeqSet:
        """Parse the bytes of one atom; raise :class:`BadSyntax` if invalid."""
        if data == b"$":
            if not allow_saved:
                raise BadSyntax("Invalid message set.")
            return cls((), saved=True)
        if not data:
            raise BadSyntax("Invalid message set.")
        # Courier skips empty elements ("1,") — but a set needs at least one
        parts = [p for p in data.split(b",") if p]
        if not parts:
            raise BadSyntax("Invalid message set.")
        if len(parts) > _MAX_RANGES:
            raise BadSyntax("Message set too long.")
        ranges = []
        for part in parts:
            a, sep, b = part.partition(b":")
            lo = _seq_number(a)
            hi = _seq_number(b) if sep else lo
            ranges.append((lo, hi))
        return cls(tuple(ranges))

    def __str__(self) -> str:
        if self.saved:
            return "$"
        return ",".join(
            _fmt(lo) if lo == hi else f"{_fmt(lo)}:{_fmt(hi)}" for lo, hi in self.ranges
        )

    def to_wire(self) -> bytes:
        return str(self).encode("ascii")

    def _bounds(self, largest: int) -> Iterator[tuple[int, int]]:
        for lo, hi in self.ranges:
            lo = largest if lo == STAR else lo
            hi = largest if hi == STAR else hi
            if lo > hi:
                lo, hi = hi, lo
            yield lo, hi

    def resolve_seq(self, count: int) -> list[int]:
        """Message sequence numbers in 1..count named by the set, sorted, unique.

        ``*`` is *count*; numbers beyond *count* are dropped (see
        :meth:`out_of_range` to detect them).
        """
        if self.saved:
            raise ValueError("resolve $ through the session's saved result")
        if count == 0:
            return []
        out: list[int] = []
        for lo, hi in self.merged(count):
            out.extend(range(lo, min(hi, count) + 1))
        return out

    def merged(self, largest: int) -> list[tuple[int, int]]:
        """The set as sorted, disjoint, inclusive intervals (``*`` = *largest*).

        Work is O(r log r) in the number of ranges, whatever their width.
        """
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted(self._bounds(largest)):
            if merged and lo <= merged[-1][1] + 1:
                if hi > merged[-1][1]:
                    merged[-1] = (merged[-1][0], hi)
            else:
                merged.append((lo, hi))
        return merged

    def out_of_range(self, count: int) -> bool:
        """True if any explicit number exceeds *count* (or there are no messages)."""
        if self.saved:
            return False
        if count == 0:
            return True
        return any(x != STAR and x > count for r in self.ranges for x in r)

    def resolve_uids(self, uids: Sequence[int]) -> list[int]:
        """The UIDs of *uids* (sorted ascending) that the set names.

        ``*`` is the largest UID in the mailbox; per RFC 3501 6.4.8 a range
        ``n:*`` always includes the largest UID even if it is below *n*.
        """
        if self.saved:
            raise ValueError("resolve $ through the session's saved result")
        if not uids:
            return []
        out: list[int] = []
        for lo, hi in self.merged(uids[-1]):
            i = bisect.bisect_left(uids, lo)
            j = bisect.bisect_right(uids, hi)
            out.extend(uids[i:j])
        return out

    def contains(self, n: int, largest: int) -> bool:
        """True if *n* is in the set when ``*`` stands for *largest* (for SEARCH)."""
        merged = self.merged(largest)
        i = bisect.bisect_right(merged, (n, _MAX + 1)) - 1
        return i >= 0 and merged[i][0] <= n <= merged[i][1]


def _seq_number(data: bytes) -> int:
    if data == b"*":
        return STAR
    # leading zeros are accepted, as Courier does ("01"); zero itself is not
    if not data or not data.isdigit() or not data.isascii() or len(data) > 20:
        raise BadSyntax("Invalid message set.")
    n = int(data)
    if n == 0 or n > _MAX:
        raise BadSyntax("Invalid message set.")
    return n


def _fmt(n: int) -> str:
    return "*" if n == STAR else str(n)


def compress(numbers: Sequence[int]) -> str:
    """``[1, 2, 3, 5]`` → ``"1:3,5"`` (for COPYUID/APPENDUID and SEARCH results).

    Keeps the input order, joining runs of consecutive ascending numbers, so
    COPYUID's two sets stay paired element by element.
    """
    out: list[str] = []
    i = 0
    n = len(numbers)
    while i < n:
        j = i
        while j + 1 < n and numbers[j + 1] == numbers[j] + 1:
            j += 1
        out.append(str(numbers[i]) if i == j else f"{numbers[i]}:{numbers[j]}")
        i = j + 1
    return ",".join(out)
