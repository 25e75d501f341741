"""IMAP's modified UTF-7 for mailbox names (RFC 3501 section 5.1.3).

Printable US-ASCII other than ``&`` stands for itself, ``&`` is written ``&-``,
and any other run of characters is UTF-16BE, base64 with ``,`` instead of
``/`` and no padding, between ``&`` and ``-``.  Decoding is strict: a name that
a conforming client could not have produced is an error, so two different
wire names never map to one folder on disk.
"""

from __future__ import annotations

import base64
import binascii

__all__ = ["UTF7Error", "decode", "encode"]


class UTF7Error(ValueError):
    """A mailbox name is not valid modified UTF-7."""


def _is_direct(ch: str) -> bool:
    return 0x20 <= ord(ch) <= 0x7E


def encode(name: str) -> str:
    """Encode a Unicode mailbox name in modified UTF-7."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            raw = "".join(run).encode("utf-16-be", "surrogatepass")
            b64 = base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",")
            out.append("&" + b64 + "-")
            run.clear()

    for ch in name:
        if _is_direct(ch):
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


def decode(name: str) -> str:
    """Decode a modified UTF-7 mailbox name; raise :class:`UTF7Error` if malformed."""
    out: list[str] = []
    i = 0
    n = len(name)
    while i < n:
        ch = name[i]
        if not _is_direct(ch):
            raise UTF7Error(f"character {ch!r} must be encoded")
        if ch != "&":
            out.append(ch)
            i += 1
            continue
        end = name.find("-", i + 1)
        if end < 0:
            raise UTF7Error("unterminated &...- sequence")
        chunk = name[i + 1 : end]
        i = end + 1
        if not chunk:
            out.append("&")
            continue
        if len(chunk) % 4 == 1:
            raise UTF7Error(f"bad base64 length in &{chunk}-")
        try:
            raw = base64.b64decode(chunk.replace(",", "/") + "=" * (-len(chunk) % 4), validate=True)
        except binascii.Error:
            raise UTF7Error(f"bad base64 in &{chunk}-") from None
        if len(raw) % 2:
            raise UTF7Error(f"odd number of UTF-16 bytes in &{chunk}-")
        try:
            text = raw.decode("utf-16-be")
        except UnicodeDecodeError:
            raise UTF7Error(f"invalid UTF-16 in &{chunk}-") from None
        if any(_is_direct(c) for c in text):
            raise UTF7Error(f"&{chunk}- encodes characters that must be written directly")
        out.append(text)
    result = "".join(out)
    if encode(result) != name:
        raise UTF7Error(f"{name!r} is not in canonical modified UTF-7")
    return result
