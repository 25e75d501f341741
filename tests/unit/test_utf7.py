"""Modified UTF-7 mailbox names (RFC 3501 5.1.3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courierpy.wire.utf7 import UTF7Error, decode, encode

# Pairs from RFC 3501 5.1.3 and from Courier's own folder names (spec 7.3).
KNOWN = [
    ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
    ("Résumé", "R&AOk-sum&AOk-"),
    ("a&b", "a&-b"),
    ("&", "&-"),
    ("INBOX", "INBOX"),
    ("😀", "&2D3eAA-"),
]


@pytest.mark.parametrize(("text", "wire"), KNOWN)
def test_known_pairs(text: str, wire: str) -> None:
    assert encode(text) == wire
    assert decode(wire) == text


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",))))
def test_round_trip(text: str) -> None:
    wire = encode(text)
    assert wire.isascii()
    assert decode(wire) == text


@pytest.mark.parametrize(
    "bad",
    [
        "&U,BTFw",  # unterminated
        "&Jjo!",  # bad base64 / unterminated
        "&AGE-",  # encodes "a", which must be written directly
        "&AOk-&AOk-",  # two adjacent runs: canonical form is one run
        "ä",  # 8-bit character on the wire
        "&A-",  # bad length
        "&2D3-",  # lone surrogate / truncated
    ],
)
def test_malformed_names_are_rejected(bad: str) -> None:
    with pytest.raises(UTF7Error):
        decode(bad)
