"""IMAP flags ↔ Maildir info letters, in the order Courier's imapd sends them.

Maildir keeps the system flags as info letters after ``:2,`` (``D`` Draft,
``F`` Flagged, ``R`` Replied = ``\\Answered``, ``S`` Seen, ``T`` Trashed =
``\\Deleted``), sorted; keywords live in ``courierimapkeywords/``
(:mod:`courierpy.maildir.keywords`).

In ``* n FETCH (FLAGS (...))`` Courier's imapd lists the system flags as
``\\Draft \\Flagged \\Answered \\Seen \\Deleted \\Recent``, then the keywords
in byte order (checked against the real imapd by
tests/oracle/test_fetch_search_oracle.py).  The untagged ``* FLAGS`` list uses
another order (:func:`courierpy.maildir.keywords.hash_order`).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["SYSTEM_FLAGS", "imap_flags", "keywords_in", "letters_for"]

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")

#: Courier's FETCH FLAGS order of the system flags, with their info letters.
_FETCH_ORDER = (
    ("D", "\\Draft"),
    ("F", "\\Flagged"),
    ("R", "\\Answered"),
    ("S", "\\Seen"),
    ("T", "\\Deleted"),
)
_LETTER = {flag.lower(): letter for letter, flag in _FETCH_ORDER}
_SYSTEM_LOWER = frozenset(f.lower() for f in SYSTEM_FLAGS) | {"\\recent"}


def imap_flags(letters: str, keywords: Iterable[str], recent: bool) -> tuple[str, ...]:
    """The FLAGS of a message with info *letters*, *keywords* and \\Recent state,
    in Courier's FETCH order (system flags, ``\\Recent``, keywords by bytes)."""
    out = [flag for letter, flag in _FETCH_ORDER if letter in letters]
    if recent:
        out.append("\\Recent")
    out.extend(sorted(set(keywords), key=lambda k: k.encode("utf-8")))
    return tuple(out)


def letters_for(flags: Iterable[str]) -> str:
    """The Maildir info letters (sorted) for the system flags among *flags*
    (case-insensitive, as IMAP flag names are); keywords and ``\\Recent`` are
    ignored."""
    return "".join(sorted({_LETTER[f.lower()] for f in flags if f.lower() in _LETTER}))


def keywords_in(flags: Iterable[str]) -> set[str]:
    """The keywords among *flags*: everything but the system flags and ``\\Recent``."""
    return {f for f in flags if f.lower() not in _SYSTEM_LOWER}
