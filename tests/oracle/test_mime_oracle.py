"""Differential test: courierpy.mime against the real Courier imapd's FETCH output.

Every message of the corpus (tests/unit/test_mime_corpus.py) goes into a fresh
Maildir (cur/, ``:2,S`` names, LF endings). The real imapd runs pre-authenticated
over a pipe, EXAMINEs INBOX and answers a FETCH per message and item: ENVELOPE,
BODYSTRUCTURE, BODY, RFC822.SIZE, BODY[], [HEADER], [TEXT], [HEADER.FIELDS],
[HEADER.FIELDS.NOT], partials, and every part of the message (n, n.MIME, and
n.HEADER/n.TEXT for encapsulated messages). We render the same responses from
courierpy.mime and compare them byte for byte.

Where Courier breaks RFC 3501 and we follow the RFC instead, KNOWN_DIFFERENCES
lists the exact bytes Courier sends and the bytes we send instead; the test
asserts that Courier still sends them (so the list cannot go stale) and that the
rest matches. Each difference is explained in docs/differences.md.

The environment comes from the shared harness (tests/oracle/courier_imapd.py:
``courier_env``, /etc/courier/imapd's keys); the runner here is our own because
this test needs the raw response bytes (8-bit literals, exact CRLFs) and sends
hundreds of pipelined commands in one go.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from courierpy.mime.imapwire import (
    Section,
    body,
    bodystructure,
    envelope,
    fetch_section,
    parse_section,
)
from courierpy.mime.tree import Part, parse
from tests.oracle.courier_imapd import IMAPD, courier_env
from tests.support import require
from tests.unit.test_mime_corpus import CORPUS

pytestmark = pytest.mark.oracle

#: Messages in the Maildir, in Courier's order (by name).
ALL = sorted(CORPUS)
#: Messages compared item by item (crlf_stored has its own test below).
NAMES = [n for n in ALL if n != "crlf_stored"]

_LONG_SUBJECT = b"long " * 1999 + b"long"
_LONG_LINE = b"X-Long: " + b"x" * 20000 + b"\r\n"

#: message name -> [(what Courier sends, what we send)]: Courier's RFC breaks.
#: Each is explained in docs/differences.md under the heading named in the comment.
KNOWN_DIFFERENCES: dict[str, list[tuple[bytes, bytes]]] = {
    # "Address groups and source routes in ENVELOPE"
    "groups": [
        (
            b'(NIL NIL "" NIL)(NIL NIL "carol" "x.org")("Dan" NIL "dan" "y.org")(NIL NIL "" NIL)',
            b'(NIL NIL "Team" NIL)(NIL NIL "carol" "x.org")("Dan" NIL "dan" "y.org")'
            b"(NIL NIL NIL NIL)",
        ),
        (
            b'((NIL NIL "" NIL)(NIL NIL "" NIL))',
            b'((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL))',
        ),
        (
            b'((NIL NIL "@relay.example,@other.example:routed" "example.com"))',
            b'((NIL "@relay.example,@other.example" "routed" "example.com"))',
        ),
    ],
    "angle_extras": [
        (
            b'(("Alice" NIL "alice" "example.com")(NIL NIL "" NIL))',
            b'(("Alice" NIL "alice" "example.com"))',
        ),
        (
            b'((NIL NIL "bob" "example.com")(NIL NIL "trailing" ""))',
            b'((NIL NIL "bob" "example.com"))',
        ),
    ],
    # "Encapsulated messages end before the boundary's line break"
    "nested_simple": [
        (b'"8bit" 57 (NIL "the lost one"', b'"8bit" 56 (NIL "the lost one"'),
        (b'"8bit" 10 2', b'"8bit" 9 2'),
        (
            b"{57}\r\nSubject: the lost one\r\nFrom: me@example.com\r\n\r\nline1\r\n\r\n\r",
            b"{56}\r\nSubject: the lost one\r\nFrom: me@example.com\r\n\r\nline1\r\n\r\n",
        ),
        (b"{10}\r\nline1\r\n\r\n\r", b"{9}\r\nline1\r\n\r\n"),
    ],
    "nested_rfc822": [
        (b'"8bit" 325 (', b'"8bit" 324 ('),
        (b"{325}\r\n", b"{324}\r\n"),
        (b"{103}\r\n", b"{102}\r\n"),
        (b"\r\n--B--\r BODY[", b"\r\n--B-- BODY["),
    ],
    "digest": [
        (b'"8bit" 45 (NIL "d1"', b'"8bit" 44 (NIL "d1"'),
        (b'"8bit" 8 0', b'"8bit" 7 0'),
        (
            b"{45}\r\nSubject: d1\r\nFrom: d1@example.com\r\n\r\nd1 body\r",
            b"{44}\r\nSubject: d1\r\nFrom: d1@example.com\r\n\r\nd1 body",
        ),
        (b"{8}\r\nd1 body\r", b"{7}\r\nd1 body"),
    ],
    # (the same rule: a multipart part whose last line is a close delimiter)
    "adjacent_close": [
        (b"{182}\r\n", b"{181}\r\n"),
        (b"--000000000000inner--\r)", b"--000000000000inner--)"),
        (b"--000000000000inner--\r BODY[", b"--000000000000inner-- BODY["),
    ],
    "toplevel_rfc822": [
        (b'"8bit" 11 0', b'"8bit" 12 1'),
        (b"{11}\r\ninner body\r", b"{12}\r\ninner body\r\n"),
    ],
    # "Parts inherit ..." is matched; the message/rfc822 part is the usual off-by-one.
    "cte_inherited": [
        (b'"7bit" 43 (NIL', b'"7bit" 42 (NIL'),
        (b'"8bit" 4 1 NIL NIL NIL) 3', b'"8bit" 3 1 NIL NIL NIL) 3'),
        (b'"8bit" 4 1) 3', b'"8bit" 3 1) 3'),
        (
            b"{43}\r\nSubject: inner parts do not inherit\r\n\r\nw\r\n\r",
            b"{42}\r\nSubject: inner parts do not inherit\r\n\r\nw\r\n",
        ),
        (b"{4}\r\nw\r\n\r", b"{3}\r\nw\r\n"),
        (b"{2}\r\n\n\r", b"{1}\r\n\n"),
    ],
    # "Headers without an empty line"
    "empty_parts": [
        (b"BODY[2.HEADER] {1}\r\n\r BODY", b"BODY[2.HEADER] {2}\r\n\r\n BODY"),
    ],
    "header_only": [
        (b'"8bit" 1 0', b'"8bit" 0 0'),
        (
            b"{40}\r\nSubject: header only\r\nFrom: a@b.example\r",
            b"{41}\r\nSubject: header only\r\nFrom: a@b.example\r\n",
        ),
        (
            b"{35}\r\nct: header only\r\nFrom: a@b.example\r)",
            b"{36}\r\nct: header only\r\nFrom: a@b.example\r\n)",
        ),
        (b"{1}\r\n\r", b"{0}\r\n"),
    ],
    "unterminated_part_header": [
        (b'("text" "plain" NIL "<y>"', b'("text" "html" NIL "<y>"'),
        (b"{27}\r\nContent-Type: text/html\r\n\r\n)", b"{25}\r\nContent-Type: text/html\r\n)"),
    ],
    # "Long header lines"
    "huge_header": [
        (b'"' + _LONG_SUBJECT[:8182] + b'"', b'"' + _LONG_SUBJECT + b'"'),
        (b"{20014}\r\n" + _LONG_LINE + b"\r\n\r\n", b"{20012}\r\n" + _LONG_LINE + b"\r\n"),
    ],
}


def run_imapd(home: Path, commands: list[bytes]) -> dict[bytes, bytes]:
    """Send *commands* (tag first) to a pre-authenticated real imapd; tag -> its output.

    The output of a tag is everything after the previous tagged reply, up to and
    including its own tagged reply line.
    """
    imapd = require(IMAPD, "the oracle is the real Courier imapd")
    script = b"".join(c + b"\r\n" for c in commands) + b"zz LOGOUT\r\n"
    env = courier_env("testuser", HOME=str(home))
    proc = subprocess.run(
        [imapd, "Maildir"], input=script, env=env, cwd=home, capture_output=True, timeout=60
    )
    out = proc.stdout
    assert out.startswith(b"* PREAUTH"), out[:200]
    result: dict[bytes, bytes] = {}
    pos = out.index(b"\r\n") + 2
    for c in commands:
        tag = c.split(b" ", 1)[0]
        marker = b"\r\n" + tag + b" "
        # Tagged replies start a line; search from just before pos for line starts.
        idx = out.find(marker, pos - 2)
        assert idx >= 0, (tag, out[pos : pos + 300])
        line_end = out.index(b"\r\n", idx + 2) + 2
        result[tag] = out[pos:line_end]
        pos = line_end
    return result


def part_paths(tree: Part) -> list[tuple[tuple[int, ...], Part]]:
    """Part numbers worth asking for, with their entities (Courier's numbering:
    see courierpy.mime.imapwire._parts; a non-multipart message repeats as its
    own part 1, followed one level only)."""
    out: list[tuple[tuple[int, ...], Part]] = []

    def parts(node: Part, top: bool) -> list[Part]:
        if node.children:
            return node.children
        if node.message is not None:
            return [node.message] if top else parts(node.message, False)
        if node.is_message:
            return [node]
        return []

    def walk(node: Part, prefix: tuple[int, ...]) -> None:
        for i, child in enumerate(parts(node, not prefix), 1):
            path = prefix + (i,)
            out.append((path, child))
            if (child is not node or child.message is not None) and len(path) < 6:
                walk(child, path)

    walk(tree, ())
    return out


def fetch_items(tree: Part, multipart_bodies: bool = True) -> list[str]:
    """The FETCH item lists asked for one message (BODY[n] of multipart parts
    only if *multipart_bodies*)."""
    items = [
        "ENVELOPE BODYSTRUCTURE BODY RFC822.SIZE",
        "BODY.PEEK[]",
        "BODY.PEEK[HEADER]",
        "BODY.PEEK[TEXT]",
        "BODY.PEEK[1]",
        "BODY.PEEK[1.MIME]",
        "BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)]",
        "BODY.PEEK[HEADER.FIELDS.NOT (From subject X-A)]",
        "BODY.PEEK[]<10.20>",
        "BODY.PEEK[]<0.0>",
        "BODY.PEEK[TEXT]<3.7>",
        "BODY.PEEK[HEADER]<5.10000>",
    ]
    for path, ent in part_paths(tree):
        p = ".".join(map(str, path))
        if ent.children and not multipart_bodies:
            items.append(f"BODY.PEEK[{p}.MIME]")
            continue
        items.append(f"BODY.PEEK[{p}] BODY.PEEK[{p}.MIME]")
        items.append(f"BODY.PEEK[{p}]<2.5>")
        if ent.message is None:
            # Not an encapsulated message: Courier gives the part's own header
            # (all of it) and body.
            items.append(f"BODY.PEEK[{p}.HEADER] BODY.PEEK[{p}.TEXT]")
        else:
            items.append(
                f"BODY.PEEK[{p}.HEADER] BODY.PEEK[{p}.TEXT] BODY.PEEK[{p}.HEADER.FIELDS (Subject)]"
            )
    return list(dict.fromkeys(items))


def render(n: int, data: bytes, tree: Part, items: str) -> bytes:
    """Our FETCH response for *items* (a tiny renderer for the items used here)."""
    out = []
    rest = items
    while rest:
        rest = rest.lstrip()
        if rest.startswith("BODY.PEEK["):
            close = rest.index("]")
            spec = rest[len("BODY.PEEK[") : close]
            rest = rest[close + 1 :]
            partial = None
            label = b""
            if rest.startswith("<"):
                pend = rest.index(">")
                a, b = rest[1:pend].split(".")
                partial = (int(a), int(b))
                label = b"<%d>" % partial[0]
                rest = rest[pend + 1 :]
            section: Section = parse_section(spec)
            got = fetch_section(data, tree, section, partial)
            payload = got.read()
            assert len(payload) == got.size
            out.append(b"BODY[" + section.wire() + b"]" + label + b" {%d}\r\n" % got.size + payload)
            continue
        word, _, rest = rest.partition(" ")
        if word == "ENVELOPE":
            out.append(b"ENVELOPE " + envelope(tree.envelope))
        elif word == "BODYSTRUCTURE":
            out.append(b"BODYSTRUCTURE " + bodystructure(tree))
        elif word == "BODY":
            out.append(b"BODY " + body(tree))
        elif word == "RFC822.SIZE":
            out.append(b"RFC822.SIZE %d" % tree.total_size)
        else:  # pragma: no cover - the test only asks for the items above
            raise AssertionError(word)
    return b"* %d FETCH (" % n + b" ".join(out) + b")\r\n"


@pytest.fixture(scope="module")
def courier_answers(tmp_path_factory) -> dict[bytes, bytes]:
    home = tmp_path_factory.mktemp("mimeoracle")
    maildir = home / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for i, name in enumerate(ALL):
        # Courier orders messages by name here (all new to its uid db, same mtime).
        path = maildir / "cur" / f"1700000000.M{i:04d}P1.test:2,S"
        path.write_bytes(CORPUS[name])
        os.utime(path, (1700000000 + i, 1700000000 + i))
    commands = [b"x EXAMINE INBOX"]
    for n, name in enumerate(ALL, 1):
        tree = parse(CORPUS[name])
        for k, items in enumerate(fetch_items(tree)):
            commands.append(b"m%d.%d FETCH %d (%s)" % (n, k, n, items.encode()))
    return run_imapd(home, commands)


@pytest.mark.parametrize("name", NAMES)
def test_fetch_matches_courier(name: str, courier_answers: dict[bytes, bytes]) -> None:
    n = ALL.index(name) + 1
    data = CORPUS[name]
    tree = parse(data)
    known = list(KNOWN_DIFFERENCES.get(name, []))
    used = set()
    mismatches = []
    for k, items in enumerate(fetch_items(tree)):
        tag = b"m%d.%d" % (n, k)
        theirs = courier_answers[tag]
        assert theirs.endswith(tag + b" OK FETCH completed.\r\n"), theirs[-200:]
        theirs = theirs[: -len(tag + b" OK FETCH completed.\r\n")]
        for i, (courier_bytes, our_bytes) in enumerate(known):
            if courier_bytes in theirs:
                theirs = theirs.replace(courier_bytes, our_bytes)
                used.add(i)
        ours = render(n, data, tree, items)
        if ours != theirs:
            mismatches.append((items, theirs, ours))
    assert not mismatches, "\n".join(
        f"FETCH {n} ({items})\n courier: {t!r}\n ours:    {o!r}" for items, t, o in mismatches[:6]
    )
    # Every listed difference must still be one: Courier sends it somewhere.
    assert used == set(range(len(known))), [known[i] for i in range(len(known)) if i not in used]


def test_crlf_stored_message_differs_only_by_doubled_cr(courier_answers) -> None:
    """A file stored with CRLF: Courier sends CR CR LF and counts the extra CRs
    ("Messages stored with CRLF line endings" in docs/differences.md); we send
    CRLF. Structure, envelope and part sizes are otherwise the same."""
    name = "crlf_stored"
    n = ALL.index(name) + 1
    data = CORPUS[name]
    tree = parse(data)
    lines = data.count(b"\n")
    items = fetch_items(tree)
    theirs = courier_answers[b"m%d.0" % n]
    ours = render(n, data, tree, items[0])
    assert theirs.startswith(
        ours.replace(b"RFC822.SIZE %d" % len(data), b"RFC822.SIZE %d" % (len(data) + lines))
    )
    assert tree.total_size == len(data)
    whole = render(n, data, tree, "BODY.PEEK[]")
    assert b"\r\r\n" not in whole
    doubled = whole.replace(b"{%d}" % len(data), b"{%d}" % (len(data) + lines))
    body = doubled.split(b"}\r\n", 1)
    expected = body[0] + b"}\r\n" + body[1][:-3].replace(b"\r\n", b"\r\r\n") + b")\r\n"
    assert courier_answers[b"m%d.1" % n].startswith(expected)


# --- generated messages ------------------------------------------------------------

#: Lines a generated body may hold: boundary look-alikes, 8-bit, CR, empty lines.
_BODY_LINES = [
    b"",
    b"text",
    b"--",
    b"--b",
    b"--bx",
    b"--b--",
    b"--c",
    b" x",
    b"caf\xc3\xa9",
    b"a\rb",
]
_HEADERS = [
    b"Subject: s",
    b"Subject: =?utf-8?q?x?= two",
    b"From: A <a@x>, b@y",
    b"From: J\xc3\xb6rg <j@x>",
    b"To: c@z (Comment Name)",
    b"MIME-Version: 1.0",
    b"Content-Transfer-Encoding: QUOTED-PRINTABLE",
    b'Content-Disposition: attachment; filename="f.txt"',
    b"Content-Disposition: inline",
    b"Content-ID: <i@x>",
    b"Content-Description: d\xc3\xa9",
    b"Content-MD5: bWQ1",
    b"junk line",
    b"X-Folded: a\n b",
]
_LEAF_TYPES = [
    b"Content-Type: text/plain",
    b"Content-Type: TEXT/HTML; CHARSET=UTF-8",
    b"Content-Type: application/octet-stream; name=x.bin",
    b"Content-Type: image/png",
    b"Content-Type: text",
    b"Content-Type: ;;",
]


def _generate(rng, depth: int = 0, messages: bool = False) -> bytes:
    """A random MIME entity with LF lines; message/rfc822 parts only if *messages*
    (their sizes differ from Courier's: KNOWN_DIFFERENCES)."""
    heads = rng.sample(_HEADERS, rng.randint(0, 3))
    body = b""
    if messages and depth < 3 and rng.random() < 0.25:
        heads.append(b"Content-Type: message/rfc822")
        inner = _generate(rng, depth + 1, messages)
        body = (b"MIME-Version: 1.0\n" if rng.random() < 0.7 else b"") + inner
    elif depth < 3 and rng.random() < 0.45:
        # One boundary per depth, so nested multiparts never share one; an outer
        # boundary may be a prefix of an inner one (RFC 2046 forbids it, mail
        # has it, and Courier and we both split the outer part there too).
        boundary = b"b" + b"x" * depth + rng.choice([b"", b"-1"]) * (depth == 0)
        heads.append(b"Content-Type: multipart/" + rng.choice([b"mixed", b"alternative"]))
        heads[-1] += b"; boundary=" + boundary if rng.random() < 0.9 else b""
        body += b"".join(rng.choice(_BODY_LINES[:2]) + b"\n" for _ in range(rng.randint(0, 2)))
        for _ in range(rng.randint(0, 3)):
            body += b"--" + boundary + b"\n" + _generate(rng, depth + 1, messages) + b"\n"
        if rng.random() < 0.8:
            # A blank line after the close delimiter keeps clear of Courier's
            # adjacent-close off-by-one (docs/differences.md).
            body += b"--" + boundary + b"--\n\n"
        body += b"".join(b"epilogue\n" for _ in range(rng.randint(0, 1)))
    else:
        if rng.random() < 0.8:
            heads.append(rng.choice(_LEAF_TYPES))
        body = b"".join(rng.choice(_BODY_LINES) + b"\n" for _ in range(rng.randint(0, 4)))
        if rng.random() < 0.3:
            body = body.rstrip(b"\n")
    if depth == 0 and rng.random() < 0.8:
        heads.append(b"MIME-Version: 1.0")
    # Always an empty line after the header: Courier mangles headers without one
    # (the corpus pins that case: "header_only", "unterminated_part_header").
    return b"".join(h + b"\n" for h in heads) + b"\n" + body


_HEADER_LITERAL = re.compile(rb"BODY\[([0-9.]+)HEADER\] \{(\d+)\}\r\n")


def undo_truncated_blank_line(response: bytes) -> bytes:
    """Courier's BODY[n.HEADER] of a part whose header is ended by the next
    boundary's line break stops one byte short, inside the empty line
    ("...\\r\\n\\r"); docs/differences.md "Parts end before the boundary's line
    break". Complete exactly those literals; leave everything else alone."""
    out = b""
    pos = 0
    for m in _HEADER_LITERAL.finditer(response):
        if m.start() < pos:
            continue
        size = int(m.group(2))
        body_start = m.end()
        payload = response[body_start : body_start + size]
        out += response[pos : m.start()]
        if payload == b"\r" or payload.endswith(b"\r\n\r"):
            out += b"BODY[%sHEADER] {%d}\r\n" % (m.group(1), size + 1) + payload + b"\n"
        else:
            out += response[m.start() : body_start + size]
        pos = body_start + size
    return out + response[pos:]


def test_generated_messages_match_courier(tmp_path) -> None:
    import random

    rng = random.Random(int(os.environ.get("MIME_ORACLE_SEED", "20241125")))
    messages = [_generate(rng) for _ in range(120)]
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for i, data in enumerate(messages):
        (maildir / "cur" / f"1700000000.M{i:04d}P1.gen:2,S").write_bytes(data)
    commands = [b"x EXAMINE INBOX"]
    plan = []
    for n, data in enumerate(messages, 1):
        tree = parse(data)
        # BODY[n] of a multipart part: Courier's off-by-one (docs/differences.md,
        # pinned by the corpus) depends on what ends the part; leave it out here.
        for k, items in enumerate(fetch_items(tree, multipart_bodies=False)):
            commands.append(b"g%d.%d FETCH %d (%s)" % (n, k, n, items.encode()))
            plan.append((b"g%d.%d" % (n, k), n, data, tree, items))
    answers = run_imapd(tmp_path, commands)
    mismatches = []
    for tag, n, data, tree, items in plan:
        theirs = answers[tag]
        theirs = undo_truncated_blank_line(theirs[: theirs.rindex(tag + b" ")])
        ours = render(n, data, tree, items)
        if ours != theirs:
            mismatches.append((data, items, theirs, ours))
    assert not mismatches, "\n".join(
        f"{d!r}\nFETCH ({i})\n courier: {t!r}\n ours:    {o!r}" for d, i, t, o in mismatches[:4]
    )


def test_generated_encapsulated_messages_match_courier(tmp_path) -> None:
    """Messages with message/rfc822 parts: structure, envelopes, parameters and
    part headers must match; sizes are masked (Courier's are one byte off for
    encapsulated messages, see KNOWN_DIFFERENCES; the corpus pins them)."""
    import random

    rng = random.Random(int(os.environ.get("MIME_ORACLE_SEED", "20241125")) + 2)
    messages = []
    while len(messages) < 80:
        data = _generate(rng, messages=True)
        if any(p.message is not None for p in parse(data).walk()):
            messages.append(data)
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for i, data in enumerate(messages):
        (maildir / "cur" / f"1700000000.M{i:04d}P1.msg:2,S").write_bytes(data)
    commands = [b"x EXAMINE INBOX"]
    plan = []
    for n, data in enumerate(messages, 1):
        tree = parse(data)
        items = ["ENVELOPE BODYSTRUCTURE BODY"]
        for path, ent in part_paths(tree):
            p = ".".join(map(str, path))
            items.append(f"BODY.PEEK[{p}.MIME]")
            if ent.message is not None:
                items.append(f"BODY.PEEK[{p}.HEADER] BODY.PEEK[{p}.HEADER.FIELDS (Subject)]")
        for k, item in enumerate(items):
            commands.append(b"r%d.%d FETCH %d (%s)" % (n, k, n, item.encode()))
            plan.append((b"r%d.%d" % (n, k), n, data, tree, item))
    answers = run_imapd(tmp_path, commands)
    digits = re.compile(rb"\d+")
    mismatches = []
    for tag, n, data, tree, item in plan:
        theirs = answers[tag]
        theirs = undo_truncated_blank_line(theirs[: theirs.rindex(tag + b" ")])
        ours = render(n, data, tree, item)
        if item.startswith("ENVELOPE"):
            theirs, ours = digits.sub(b"N", theirs), digits.sub(b"N", ours)
        if ours != theirs:
            mismatches.append((data, item, theirs, ours))
    assert not mismatches, "\n".join(
        f"{d!r}\nFETCH ({i})\n courier: {t!r}\n ours:    {o!r}" for d, i, t, o in mismatches[:4]
    )


_NAMES = [
    b"Alice",
    b"Alice  B. Example",
    b'"Doe, John"',
    b'"quote \\" and \\\\ backslash"',
    b'""',
    b"=?UTF-8?B?w4lyaWM=?=",
    b"J\xc3\xb6rg M\xc3\xbcller",
    b'"Z\xc3\xbc"',
    b"Name (comment)",
    b"(leading comment) Name",
    b"O'Brien",
    b"a.b",
]
_SPECS = [
    b"user@example.com",
    b"first.last@sub.example.org",
    b"nodomain",
    b'"quoted local"@example.com',
    b"user@[192.0.2.1]",
    b"UPPER@EXAMPLE.COM",
    b"caf\xc3\xa9@example.com",
]


def _address(rng) -> bytes:
    spec = rng.choice(_SPECS)
    style = rng.randrange(4)
    if style == 0:
        return spec
    if style == 1:
        return spec + b" (" + rng.choice([b"Comment Name", b"x", b"nested (c) c"]) + b")"
    if style == 2:
        return b"<" + spec + b">"
    return rng.choice(_NAMES) + b" <" + spec + b">"


def _address_list(rng) -> bytes:
    seps = [b", ", b",", b" , ", b",\n  ", b", ,"]
    out = _address(rng)
    for _ in range(rng.randrange(3)):
        out += rng.choice(seps) + _address(rng)
    return out


def _envelope_message(rng) -> bytes:
    heads = []
    for field in (b"From", b"Sender", b"Reply-To", b"To", b"Cc", b"Bcc"):
        for _ in range(
            rng.choice([0, 1, 1, 1, 2]) if field in (b"From", b"To") else rng.choice([0, 0, 1])
        ):
            heads.append(field + b": " + _address_list(rng))
    subjects = [
        b"plain subject",
        b'with "quotes" and \\ backslash',
        b"folded\n  over\n\tlines",
        b"caf\xc3\xa9 cr\xc3\xa8me and more",
        b"=?iso-8859-1?q?caf=E9?= encoded",
        b"   spaced   ",
        b"",
        b"x" * 3000,
        b"tab\there",
    ]
    for _ in range(rng.choice([0, 1, 1, 1, 2])):
        heads.append(b"Subject: " + rng.choice(subjects))
    for field, values in (
        (b"Date", [b"Mon, 1 Jan 2024 10:00:00 +0000", b"garbage", b"  Tue, 2 Jan 2024 (comment)"]),
        (b"Message-ID", [b"<a@b>", b"<a@b> trailing", b"no-brackets"]),
        (b"In-Reply-To", [b"<x@y>", b"<x@y> <z@w>", b"\n <folded@x>"]),
    ):
        if rng.random() < 0.6:
            heads.append(field + b": " + rng.choice(values))
    rng.shuffle(heads)
    return b"".join(h + b"\n" for h in heads) + b"\nbody\n"


def test_generated_envelopes_match_courier(tmp_path) -> None:
    import random

    rng = random.Random(int(os.environ.get("MIME_ORACLE_SEED", "20241125")) + 1)
    messages = [_envelope_message(rng) for _ in range(200)]
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for i, data in enumerate(messages):
        (maildir / "cur" / f"1700000000.M{i:04d}P1.env:2,S").write_bytes(data)
    commands = [b"x EXAMINE INBOX"]
    commands += [b"e%d FETCH %d (ENVELOPE)" % (n, n) for n in range(1, len(messages) + 1)]
    answers = run_imapd(tmp_path, commands)
    mismatches = []
    for n, data in enumerate(messages, 1):
        theirs = answers[b"e%d" % n]
        theirs = theirs[: theirs.rindex(b"e%d " % n)]
        ours = b"* %d FETCH (ENVELOPE " % n + envelope(parse(data).envelope) + b")\r\n"
        if ours != theirs:
            mismatches.append((data, theirs, ours))
    assert not mismatches, f"{len(mismatches)} differ\n" + "\n".join(
        f"{d!r}\n courier: {t!r}\n ours:    {o!r}" for d, t, o in mismatches[:5]
    )


def test_undo_truncated_blank_line_touches_only_that_case() -> None:
    courier = (
        b"* 1 FETCH (BODY[2.HEADER] {5}\r\nA:\r\n\r BODY[1.HEADER] {1}\r\n\r"
        b" BODY[3.HEADER] {6}\r\nA:\r\n\r\n BODY[4] {3}\r\nx\r\r)\r\n"
    )
    assert undo_truncated_blank_line(courier) == (
        b"* 1 FETCH (BODY[2.HEADER] {6}\r\nA:\r\n\r\n BODY[1.HEADER] {2}\r\n\r\n"
        b" BODY[3.HEADER] {6}\r\nA:\r\n\r\n BODY[4] {3}\r\nx\r\r)\r\n"
    )
