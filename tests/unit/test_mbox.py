"""The mbox core of mbox2maildir: splitting, mboxrd/mboxo unquoting, flags, dates."""

from __future__ import annotations

import calendar
import io
import random
import re
import time

import pytest

from courierpy.cli.mbox2maildir import (
    MboxError,
    message_flags,
    parse_from_date,
    split_mbox,
)

_QUOTE = re.compile(rb"^>*From ")


def mboxrd_quote(content: bytes) -> bytes:
    return b"".join(
        b">" + line if _QUOTE.match(line) else line for line in content.splitlines(keepends=True)
    )


def asctime(t: int) -> str:
    return time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(t))


STATUSES = ["", "O", "RO", "R"]
XSTATUSES = ["", "A", "F", "D", "T", "AF", "DFAT"]
WANT_FLAGS = {"A": "R", "F": "F", "D": "T", "T": "D"}


def generate(seed: int, count: int) -> list[tuple[bytes, int, str, str]]:
    """(content, date, Status, X-Status) of *count* realistic-enough messages."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        status = rng.choice(STATUSES)
        xstatus = rng.choice(XSTATUSES)
        date = 1_600_000_000 + rng.randrange(200_000_000)
        head = [f"From: user{i}@example.org", f"To: dest{rng.randrange(9)}@example.net"]
        head.append(f"Subject: message {i} {'x' * rng.randrange(40)}")
        head.append(f"Message-ID: <{i}.{seed}@gen>")
        if status:
            head.append(f"Status: {status}")
        if xstatus:
            head.append(f"X-Status: {xstatus}")
        body = []
        for _ in range(rng.randrange(1, 30)):
            kind = rng.random()
            if kind < 0.1:
                body.append("From here on, a line that looks like a separator")
            elif kind < 0.15:
                body.append(">From an already quoted line")
            elif kind < 0.18:
                body.append(">>From twice quoted")
            elif kind < 0.25:
                body.append("")
            elif kind < 0.27:
                body.append(f"From someone@example.org {asctime(date)}")
            else:
                body.append("".join(rng.choice("abc def\tghi-é") for _ in range(rng.randrange(80))))
        trailing = "\n" * rng.choice([0, 0, 0, 1, 2])
        content = ("\n".join(head) + "\n\n" + "\n".join(body) + "\n" + trailing).encode()
        out.append((content, date, status, xstatus))
    return out


def write_mboxrd(messages) -> bytes:
    parts = []
    for content, date, _, _ in messages:
        parts.append(f"From MAILER-DAEMON {asctime(date)}\n".encode())
        parts.append(mboxrd_quote(content))
        parts.append(b"\n")
    return b"".join(parts)


def test_generated_mbox_round_trips_byte_for_byte():
    messages = generate(seed=4, count=3000)
    data = write_mboxrd(messages)
    got = list(split_mbox(io.BytesIO(data), "gen.mbox"))
    assert len(got) == len(messages)
    for (content, date, status, xstatus), msg in zip(messages, got, strict=True):
        assert msg.content == content
        assert msg.mtime == date
        want = {"S"} if "R" in status else set()
        want |= {WANT_FLAGS[c] for c in xstatus}
        assert msg.flags == "".join(sorted(want))
        assert msg.old == ("O" in status)


def test_mboxo_and_no_unquoting():
    data = b"From a Thu Nov 25 16:00:00 2026\n\n>From x\n>>From y\n"
    (rd,) = split_mbox(io.BytesIO(data))
    (o,) = split_mbox(io.BytesIO(data), quoting="mboxo")
    (raw,) = split_mbox(io.BytesIO(data), quoting="none")
    assert rd.content == b"\nFrom x\n>From y\n"
    assert o.content == b"\nFrom x\n>>From y\n"
    assert raw.content == b"\n>From x\n>>From y\n"


def test_separator_needs_a_blank_line_and_a_date():
    data = (
        b"From a Thu Nov 25 16:00:00 2026\nSubject: 1\n\nbody\nFrom b Thu Nov 25 16:00:00 2026\n"
        b"\nFrom the desk of nobody\nmore\n\nFrom c Fri Nov 26 10:00 2026\nSubject: 2\n\nx\n"
    )
    msgs = list(split_mbox(io.BytesIO(data)))
    assert [m.line_number for m in msgs] == [1, 10]
    assert msgs[0].content.endswith(b"\nFrom the desk of nobody\nmore\n")
    assert msgs[1].content == b"Subject: 2\n\nx\n"
    assert msgs[1].mtime == calendar.timegm((2026, 11, 26, 10, 0, 0))


def test_crlf_blank_lines_separate_too():
    data = (
        b"From a Thu Nov 25 16:00:00 2026\r\nA: b\r\n\r\nx\r\n\r\n"
        b"From b Thu Nov 25 16:00:00 2026\r\ny\r\n"
    )
    msgs = list(split_mbox(io.BytesIO(data)))
    assert [m.content for m in msgs] == [b"A: b\r\n\r\nx\r\n", b"y\r\n"]


@pytest.mark.parametrize(
    ("line", "want"),
    [
        (b"From a@b Thu Nov 25 16:00:00 2026", calendar.timegm((2026, 11, 25, 16, 0, 0))),
        (b"From a@b  Thu Nov  5 16:00:00 2026", calendar.timegm((2026, 11, 5, 16, 0, 0))),
        (b"From a@b Thu Nov 25 16:00:00 +0200 2026", calendar.timegm((2026, 11, 25, 14, 0, 0))),
        (b"From a@b Thu Nov 25 16:00 2026 -0100", calendar.timegm((2026, 11, 25, 17, 0, 0))),
        (b"From a@b Thu Nov 25 16:00:00 PST 2026", calendar.timegm((2026, 11, 25, 16, 0, 0))),
        (b"From - Thu Nov 25 16:00:00 2026", calendar.timegm((2026, 11, 25, 16, 0, 0))),
        (b"From a@b no date here", None),
    ],
)
def test_from_line_dates(line, want):
    assert parse_from_date(line) == want


def test_date_header_is_the_fallback():
    data = b"From someone\nDate: Thu, 25 Nov 2026 16:00:00 +0000\n\nx\n"
    (msg,) = split_mbox(io.BytesIO(data))
    assert msg.mtime == calendar.timegm((2026, 11, 25, 16, 0, 0))


def test_flags_read_only_from_the_header_block():
    flags, old, _ = message_flags(b"Subject: x\nStatus: O\n\nStatus: R\nX-Status: F\n")
    assert (flags, old) == ("", True)


def test_malformed_and_empty_mbox_name_file_and_line():
    with pytest.raises(MboxError, match=r"^box:1: not an mbox file"):
        list(split_mbox(io.BytesIO(b"Subject: hi\n\nx\n"), "box"))
    with pytest.raises(MboxError, match=r"^box:1: not an mbox file"):
        list(split_mbox(io.BytesIO(b"\nFrom a Thu Nov 25 16:00:00 2026\n"), "box"))
    with pytest.raises(MboxError, match=r"^empty:1: empty mbox file"):
        list(split_mbox(io.BytesIO(b""), "empty"))
