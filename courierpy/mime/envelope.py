"""The IMAP ENVELOPE of a message, parsed from its header block.

RFC 3501 §7.4.2 defines the ENVELOPE structure; Courier's choices for what the
RFC leaves open are kept (they are what clients of a Courier server have been
seeing): every occurrence of a field counts, joined with ``", "``; values are
unfolded by removing line breaks only; a quoted display name keeps its
backslash escapes; comments inside a display phrase stay in the name; a bare
address's trailing comment becomes its name; an address without a domain gets
an empty host (``""``), never NIL, which would mean a group.

Where Courier breaks the RFC we follow the RFC (see docs/differences.md):
group syntax gives ``(NIL NIL "name" NIL)`` … ``(NIL NIL NIL NIL)`` and a
source route goes into the at-domain-list member.

Text is latin-1-decoded header bytes (one code point per byte); the wire layer
turns 8-bit text into RFC 2047 words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from courierpy.mime.headers import HeaderBlock

__all__ = ["Address", "Envelope", "parse_address_list"]

#: (name, at-domain-list, mailbox, host); group start is (None, None, NAME, None),
#: group end is (None, None, None, None).
Address = tuple[str | None, str | None, str | None, str | None]

_SPECIALS = '()<>,;:@"'
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)


Token = tuple[str, str, int, int]  # kind, text, start, end (in the header text)


def _tokenize(text: str) -> list[Token]:
    """Tokens of an address header: ('q', quoted inner), ('c', comment inner),
    ('s', special), ('a', atom), with their span. White space separates and is
    dropped."""
    out: list[Token] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
        elif ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(("q", text[i + 1 : min(j, n)], i, min(j + 1, n)))
            i = j + 1
        elif ch == "(":
            depth = 1
            j = i + 1
            while j < n and depth:
                c = text[j]
                if c == "\\":
                    j += 1
                elif c == "(":
                    depth += 1
                elif c == ")":
                    depth -= 1
                j += 1
            inner_end = j - 1 if depth == 0 else n
            out.append(("c", text[i + 1 : inner_end], i, min(j, n)))
            i = j
        elif ch in _SPECIALS:
            out.append(("s", ch, i, i + 1))
            i += 1
        else:
            j = i
            while j < n and text[j] not in _SPECIALS and text[j] not in " \t\r\n":
                j += 1
            out.append(("a", text[i:j], i, j))
            i = j
    return out


def _unescape(text: str) -> str:
    return _QUOTED_PAIR.sub(r"\1", text) if "\\" in text else text


def _phrase(text: str, tokens: list[Token]) -> str | None:
    """The display name of ``phrase <addr>``, as Courier writes it.

    Words and comments are joined by single spaces; a lone quoted string gives
    its content; a phrase mixing quoted strings with words, or holding a dot,
    is given as written (white space kept) less a leading and a trailing quote.
    """
    if not tokens:
        return None
    if len(tokens) == 1 and tokens[0][0] == "q":
        return _unescape(tokens[0][1]) or None
    if any(k == "q" or (k == "a" and "." in t) for k, t, _, _ in tokens):
        raw = unfold_spaces(text[tokens[0][2] : tokens[-1][3]])
        if raw.startswith('"'):
            raw = raw[1:]
        if raw.endswith('"'):
            raw = raw[:-1]
        return raw or None
    words = ["(" + t + ")" if k == "c" else t for k, t, _, _ in tokens]
    return " ".join(words) or None


def unfold_spaces(text: str) -> str:
    """Header text with its line breaks removed (already unfolded here)."""
    return text.replace("\r", "").replace("\n", "")


def _spec(tokens: list[Token]) -> str:
    return "".join('"' + t + '"' if k == "q" else t for k, t, _, _ in tokens if k != "c")


def _split_address(name: str | None, addr: str) -> Address:
    adl = None
    if addr.startswith("@") and ":" in addr:
        adl, addr = addr.split(":", 1)
    at = addr.rfind("@")
    if at < 0:
        return (name or None, adl, addr, "")
    return (name or None, adl, addr[:at], addr[at + 1 :])


def parse_address_list(text: str) -> list[Address]:
    """Parse an address header value into ENVELOPE address tuples."""
    result: list[Address] = []
    tokens = _tokenize(text)
    buf: list[Token] = []
    phrase: list[Token] = []
    angle: list[Token] | None = None
    in_group = False

    def flush() -> None:
        nonlocal buf, angle, phrase
        if angle is not None:
            result.append(_split_address(_phrase(text, phrase), _spec(angle)))
        elif buf:
            words = [t for t in buf if t[0] != "c"]
            comments = [t[1] for t in buf if t[0] == "c"]
            name = comments[-1] if comments else None
            if len(words) > 1 and not any(t[0] == "s" for t in words):
                # Words with no "@" between them: each is an address of its own.
                result.extend((None, None, w[1], "") for w in words)
            elif words:
                result.append(_split_address(name, _spec(words)))
        buf = []
        phrase = []
        angle = None

    i = 0
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        kind, val = tok[0], tok[1]
        if kind == "s" and val == "<":
            j = i + 1
            inner = []
            while j < n and tokens[j][:2] != ("s", ">"):
                inner.append(tokens[j])
                j += 1
            if angle is None:
                phrase = list(buf)
            angle = (angle or []) + inner
            i = j + 1
            continue
        if kind == "s" and val == ",":
            flush()
        elif kind == "s" and val == ":" and not in_group and angle is None and buf:
            result.append((None, None, _phrase(text, buf) or "", None))
            buf = []
            in_group = True
        elif kind == "s" and val == ";":
            flush()
            if in_group:
                result.append((None, None, None, None))
                in_group = False
        else:
            buf.append(tok)
        i += 1
    flush()
    if in_group:
        result.append((None, None, None, None))
    return result


def _joined(hb: HeaderBlock, name: str) -> str | None:
    """All occurrences of a field joined by "," (as Courier), ends stripped."""
    values = hb.get_all_raw(name)
    if not values:
        return None
    return ",".join(values).strip(" \t") or None


@dataclass(frozen=True, slots=True)
class Envelope:
    """The ten ENVELOPE members, as text (None is NIL)."""

    date: str | None
    subject: str | None
    from_: tuple[Address, ...]
    sender: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    bcc: tuple[Address, ...]
    in_reply_to: str | None
    message_id: str | None

    @classmethod
    def from_header(cls, hb: HeaderBlock) -> Envelope:
        def addrs(name: str) -> tuple[Address, ...]:
            text = _joined(hb, name)
            return tuple(parse_address_list(text)) if text else ()

        from_ = addrs("from")
        return cls(
            date=_joined(hb, "date"),
            subject=_joined(hb, "subject"),
            from_=from_,
            sender=addrs("sender") or from_,
            reply_to=addrs("reply-to") or from_,
            to=addrs("to"),
            cc=addrs("cc"),
            bcc=addrs("bcc"),
            in_reply_to=_joined(hb, "in-reply-to"),
            message_id=_joined(hb, "message-id"),
        )

    def to_json(self) -> list:
        """A JSON-able list (Sender/Reply-To equal to From are stored as null)."""
        return [
            self.date,
            self.subject,
            [list(a) for a in self.from_],
            None if self.sender == self.from_ else [list(a) for a in self.sender],
            None if self.reply_to == self.from_ else [list(a) for a in self.reply_to],
            [list(a) for a in self.to],
            [list(a) for a in self.cc],
            [list(a) for a in self.bcc],
            self.in_reply_to,
            self.message_id,
        ]

    @classmethod
    def from_json(cls, obj: list) -> Envelope:
        def al(v: list) -> tuple[Address, ...]:
            return tuple(tuple(a) for a in v)  # type: ignore[misc]

        from_ = al(obj[2])
        return cls(
            obj[0],
            obj[1],
            from_,
            from_ if obj[3] is None else al(obj[3]),
            from_ if obj[4] is None else al(obj[4]),
            al(obj[5]),
            al(obj[6]),
            al(obj[7]),
            obj[8],
            obj[9],
        )
