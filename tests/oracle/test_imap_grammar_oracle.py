"""Differential test: which commands the real Courier imapd refuses as
malformed, against which ones our command reader refuses.

The real imapd runs pre-authenticated over a pipe on a Maildir of three
messages, SELECTs INBOX and gets the corpus below, one tagged command each.
Courier answers a command it cannot parse with ``NO Error in IMAP command
received by server.`` (sometimes ``BAD Invalid command``); anything else —
OK, or a NO with another text such as ``[TRYCREATE]`` or ``[BADCHARSET]`` —
means it parsed the command.  Our reader must agree command by command:
``Command`` (or a refusal that is not a syntax error) where Courier parsed it,
a syntax ``BadCommand`` where Courier did not.

KNOWN_DIFFERENCES lists where we deliberately differ, with the reason; the
test asserts Courier still behaves as recorded there, so the list cannot go
stale.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from courierpy.imap.errors import BadSyntax
from courierpy.imap.grammar import (
    NEED_DATA,
    BadCommand,
    Command,
    CommandReader,
    NeedContinuation,
)
from courierpy.imap.state import State
from tests.support import require

pytestmark = pytest.mark.oracle

IMAPD = "/usr/bin/imapd"

CORPUS: list[bytes] = [
    b"FETCH 1 FLAGS",
    b"FETCH 1:* (FLAGS UID)",
    b"FETCH 1 (BODY[HEADER.FIELDS (FROM)])",
    b"FETCH 1 BODY[HEADER.FIELDS (FROM)]",
    b"FETCH 1 (BODY.PEEK[HEADER.FIELDS.NOT (FROM TO)]<0.10>)",
    b'FETCH 1 BODY.PEEK[HEADER.FIELDS ("X:Y" subject)]',
    b"FETCH 1 BODY.PEEK[HEADER.FIELDS ()]",
    b"FETCH 1 BODY.PEEK[1.MIME]",
    b"FETCH 1 BODY.PEEK[MIME]",
    b"FETCH 1 BODY.PEEK[TEXT]<2.3>",
    b"FETCH 1 BODY.PEEK[]<0.0>",
    b"FETCH 1 BODY.PEEK[]<0>",
    b"FETCH 1 BODY.PEEK[0]",
    b"FETCH 1 BODY.PEEK[1.TEXT]",
    b"FETCH 1 BODY.PEEK[X]",
    b"FETCH 1 ALL",
    b"FETCH 1 FAST",
    b"FETCH 1 FULL",
    b"FETCH 1 (ALL)",
    b"FETCH 1 (FAST UID)",
    b"FETCH 1 ()",
    b"FETCH 1 FOO",
    b"FETCH 1 (FLAGS",
    b"FETCH 1 FLAGS extra",
    b"FETCH 3:1 FLAGS",
    b"FETCH 1,2 FLAGS",
    b"FETCH 1, FLAGS",
    b"FETCH 01 FLAGS",
    b"FETCH 1:x FLAGS",
    b"FETCH 0 FLAGS",
    b"FETCH  1 FLAGS",
    b"FETCH 1 (RFC822.SIZE RFC822.HEADER ENVELOPE BODYSTRUCTURE BODY INTERNALDATE UID)",
    b"FETCH 1 RFC822.FOO",
    b"UID FETCH 1:* FLAGS",
    b"UID FETCH 100:* FLAGS",
    b"UID FETCH 1 (UID BODY.PEEK[HEADER])",
    b"SEARCH ALL",
    b"SEARCH FOO",
    b"SEARCH OR SEEN",
    b"SEARCH OR SEEN UNSEEN",
    b"SEARCH (SEEN",
    b"SEARCH SEEN)",
    b"SEARCH (SEEN UNSEEN) NOT DELETED",
    b"SEARCH NOT SEEN",
    b"SEARCH NEW OLD RECENT ANSWERED UNANSWERED DRAFT UNDRAFT FLAGGED UNFLAGGED",
    b"SEARCH BEFORE 1-Jan-2024 ON 2-Jan-2024 SINCE 3-Jan-2024",
    b'SEARCH SENTBEFORE "1-Jan-2024" SENTON 01-Jan-2024 SENTSINCE 1-Jan-2024',
    b"SEARCH BEFORE 32-Jan-2024",
    b"SEARCH BEFORE 2024-01-01",
    b"SEARCH LARGER 10 SMALLER 1000",
    b"SEARCH LARGER x",
    b"SEARCH KEYWORD $Label1 UNKEYWORD Junk",
    b"SEARCH KEYWORD \\Foo",
    b"SEARCH HEADER Fr:om x",
    b"SEARCH HEADER X-Foo x",
    b'SEARCH FROM a TO d CC x BCC y SUBJECT "msg 1" BODY body TEXT body',
    b"SEARCH UID 1:*",
    b"SEARCH 1:*",
    b"SEARCH 1,",
    b"SEARCH 01",
    b"SEARCH CHARSET UTF-8 ALL",
    b"SEARCH CHARSET ISO-8859-1 SUBJECT x",
    b"SEARCH CHARSET X-NO-SUCH ALL",
    b"SEARCH SUBJECT {3}\r\nmsg",
    b"SEARCH",
    b"SEARCH ()",
    b"SEARCH 1:x",
    b"SEARCH FROM",
    b"STORE 1 +FLAGS (\\Flagged)",
    b"STORE 1 +FLAGS.SILENT (\\Flagged)",
    b"STORE 1 -FLAGS \\Flagged",
    b"STORE 1 FLAGS (\\Bogus)",
    b"STORE 1 FLAGS (\\Recent)",
    b"STORE 1 XFLAGS (\\Seen)",
    b"STORE 1 +FLAGS ()",
    b"STORE 1 FLAGS (a b c)",
    b"STORE 1 FLAGS \\Seen \\Flagged",
    b"STORE 1 FLAGS (\\Seen)",
    b"STORE 1 FLAGS",
    b"STATUS INBOX (MESSAGES)",
    b"STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)",
    b"STATUS INBOX ()",
    b"STATUS INBOX MESSAGES",
    b"STATUS INBOX (MESSAGES FOO)",
    b"STATUS INBOX (MESSAGES",
    b'LIST "" "*"',
    b'LIST "" *',
    b'LIST "" %',
    b'LIST ""',
    b'LSUB "" "*"',
    b"LIST {0}\r\n {1}\r\n*",
    b"COPY 1 INBOX.Nope",
    b"COPY 1",
    b"CREATE INBOX.Bad&name",
    b"CREATE INBOX.a&AOk-b",
    b"CREATE INBOX.a b",
    b'CREATE "INBOX.R\xc3\xa9sum\xc3\xa9"',
    b"STORE 1 +FLAGS ($Foo\\Bar)",
    b'SEARCH SUBJECT "unterminated',
    b"FETCH 1 BODY.PEEK[HEADER.FIELDS (FROM)] extra",
    b"NOOP extra",
    b"CHECK",
    b"UNSELECT",
    b"ID NIL",
    b"MOVE 1 INBOX",
    b"FOO",
    b"UID FOO",
    b"NAMESPACE",
    b"GETQUOTAROOT INBOX",
    b'GETQUOTA ""',
    b"MYRIGHTS INBOX",
    b"GETACL INBOX",
    b"LISTRIGHTS INBOX anyone",
    b"SORT (DATE) UTF-8 ALL",
    b"SORT (REVERSE SUBJECT ARRIVAL) UTF-8 SEEN",
    b"SORT DATE UTF-8 ALL",
    b"SORT (FOO) UTF-8 ALL",
    b"THREAD REFERENCES UTF-8 ALL",
    b"THREAD ORDEREDSUBJECT UTF-8 ALL",
    b"UID SEARCH ALL",
    b"UID STORE 1 +FLAGS (\\Seen)",
    b"UID COPY 1 INBOX.Nope",
    b"UID EXPUNGE 99",
    b"ENABLE",
    # last: these change the session (a failed SELECT closes INBOX; UTF-8 names)
    b'SELECT "INBOX.Ba&d"',
    b"ENABLE UTF8=ACCEPT",
    b"SELECT",
]

#: command -> (Courier parses it, we parse it, why we differ)
KNOWN_DIFFERENCES: dict[bytes, tuple[bool, bool, str]] = {
    b"FETCH  1 FLAGS": (True, False, "Courier skips repeated spaces; RFC 3501 has one SP"),
    b"SEARCH BEFORE 32-Jan-2024": (True, False, "no 32nd of January: we refuse the date"),
    b"SEARCH KEYWORD \\Foo": (True, False, "a keyword is an atom; '\\' is not an atom char"),
    b"SEARCH BEFORE 2024-01-01": (
        True,
        False,
        "Courier reads any date it can guess; RFC 3501 date",
    ),
    b'CREATE "INBOX.R\xc3\xa9sum\xc3\xa9"': (
        True,
        False,
        "8-bit name before ENABLE UTF8=ACCEPT: Courier creates a folder with a mangled"
        " name (bytes sign-extended to U+FFxx); we refuse it",
    ),
    b'SELECT "INBOX.Ba&d"': (
        True,
        False,
        "invalid modified UTF-7: Courier says the mailbox does not exist, we say BAD"
        " (as Courier itself does for CREATE)",
    ),
    b"FETCH 0 FLAGS": (True, False, "0 is not a message number (Courier: OK and no data)"),
    b"STORE 1 FLAGS \\Seen \\Flagged": (
        False,
        True,
        "RFC 3501 allows a flag list without parentheses; Courier takes only one flag",
    ),
}


def _courier_parsed(reply: bytes) -> bool:
    return not (
        reply.startswith(b"BAD") or reply == b"NO Error in IMAP command received by server."
    )


def _ours_parsed(line: bytes, utf8: bool) -> bool:
    reader = CommandReader(state=State.SELECTED, utf8=utf8)
    reader.receive_data(b"t " + line + b"\r\n")
    while True:
        ev = reader.next_event()
        if isinstance(ev, NeedContinuation):
            reader.accept_literal()
            continue
        assert ev is not NEED_DATA, line
        if isinstance(ev, Command):
            return True
        assert isinstance(ev, BadCommand), ev
        return not isinstance(ev.error, BadSyntax)


MESSAGE = (
    b"From: a@b.c\nTo: d@e.f\nSubject: msg %d\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n"
    b"Message-ID: <m%d@x>\n\nbody %d\n"
)


@pytest.fixture(scope="module")
def courier_replies(tmp_path_factory) -> dict[int, bytes]:
    require(IMAPD, "the real Courier imapd is the oracle")
    require("/etc/courier/imapd", "Courier's imapd settings (IMAP_KEYWORDS, ...)")
    home = tmp_path_factory.mktemp("oracle-home")
    for sub in ("cur", "new", "tmp"):
        (home / "Maildir" / sub).mkdir(parents=True)
    for i in (1, 2, 3):
        name = f"100000000{i}.M1P1.host,S=100:2,S"
        (home / "Maildir" / "cur" / name).write_bytes(MESSAGE % (i, i, i))
    env_dump = subprocess.run(
        ["sh", "-c", "set -a; . /etc/courier/imapd; env -0"],
        capture_output=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    ).stdout
    env = dict(x.split("=", 1) for x in env_dump.decode().split("\0") if "=" in x)
    env.update({"AUTHENTICATED": "oracle", "HOME": str(home)})
    script = (
        b"s SELECT INBOX\r\n"
        + b"".join(b"t%d %s\r\n" % (i, line) for i, line in enumerate(CORPUS))
        + b"z LOGOUT\r\n"
    )
    proc = subprocess.run(
        [IMAPD, "Maildir"], input=script, capture_output=True, cwd=home, env=env, timeout=60
    )
    replies: dict[int, bytes] = {}
    for line in proc.stdout.split(b"\r\n"):
        tag, _, rest = line.partition(b" ")
        if tag[:1] == b"t" and tag[1:].isdigit():
            replies[int(tag[1:])] = rest
    assert b"s OK [READ-WRITE]" in proc.stdout
    assert len(replies) == len(CORPUS), proc.stdout[-2000:]
    return replies


def test_we_refuse_what_courier_refuses(courier_replies: dict[int, bytes]) -> None:
    mismatches = []
    utf8 = False
    for i, line in enumerate(CORPUS):
        theirs = _courier_parsed(courier_replies[i])
        ours = _ours_parsed(line, utf8)
        if line in KNOWN_DIFFERENCES:
            c, o, why = KNOWN_DIFFERENCES[line]
            assert (theirs, ours) == (c, o), f"{line!r}: recorded difference changed ({why})"
        elif theirs != ours:
            mismatches.append((line, courier_replies[i], ours))
        if line == b"ENABLE UTF8=ACCEPT":
            utf8 = True
    assert not mismatches, "\n".join(
        f"{line!r}: Courier {reply!r}, ours {'parsed' if ours else 'refused'}"
        for line, reply, ours in mismatches
    )


def test_known_differences_are_in_the_corpus() -> None:
    assert set(KNOWN_DIFFERENCES) <= set(CORPUS)


def test_imapd_is_the_real_one() -> None:
    require(IMAPD)
    assert Path(IMAPD).exists() and os.access(IMAPD, os.X_OK)


def test_courier_texts_we_keep(courier_replies: dict[int, bytes]) -> None:
    """The texts in courierpy.imap.texts are the ones the real imapd sends."""
    from courierpy.imap import texts

    expect = {
        b"FETCH 1 FLAGS": "OK " + texts.FETCH_OK,
        b"SEARCH ALL": "OK " + texts.SEARCH_OK,
        b"STORE 1 +FLAGS (\\Flagged)": "OK " + texts.STORE_OK,
        b"STATUS INBOX (MESSAGES)": "OK " + texts.STATUS_OK,
        b'LIST "" "*"': "OK " + texts.LIST_OK,
        b'LSUB "" "*"': "OK " + texts.LSUB_OK,
        b"COPY 1 INBOX.Nope": "NO [TRYCREATE] " + texts.COPY_TRYCREATE,
        b"NAMESPACE": "OK " + texts.NAMESPACE_OK,
        b"GETQUOTAROOT INBOX": "OK " + texts.GETQUOTAROOT_OK,
        b'GETQUOTA ""': "OK " + texts.GETQUOTA_OK,
        b"MYRIGHTS INBOX": "OK " + texts.MYRIGHTS_OK,
        b"GETACL INBOX": "OK " + texts.GETACL_OK,
        b"LISTRIGHTS INBOX anyone": "OK " + texts.LISTRIGHTS_OK,
        b"SORT (DATE) UTF-8 ALL": "OK " + texts.SORT_OK,
        b"THREAD REFERENCES UTF-8 ALL": "OK " + texts.THREAD_OK,
        b"CHECK": "OK " + texts.CHECK_OK,
        b"ENABLE": "OK " + texts.ENABLE_OK,
        b"UID EXPUNGE 99": "OK " + texts.EXPUNGE_OK,
        b"SEARCH CHARSET X-NO-SUCH ALL": "NO [BADCHARSET] " + texts.BADCHARSET,
        b"CREATE INBOX.a&AOk-b": "OK " + texts.CREATED.format(name="INBOX.a&AOk-b"),
        b"FOO": "NO " + texts.ERROR_IN_COMMAND,
        b"SELECT": "BAD " + texts.INVALID_COMMAND,
    }
    for line, reply in expect.items():
        assert courier_replies[CORPUS.index(line)] == reply.encode(), line


# --- before login: Courier's imaplogin ----------------------------------------

IMAPLOGIN = "/usr/lib/courier/courier/imaplogin"

#: pre-auth command -> Courier carries it out (True) or refuses it (False)
PREAUTH_CORPUS: list[bytes] = [
    b"CAPABILITY",
    b"NOOP",
    b"FOO",
    b"SELECT INBOX",
    b"FETCH 1 FLAGS",
    b"UID FETCH 1 FLAGS",
    b"ENABLE UTF8=ACCEPT",
    b"NAMESPACE",
    b"IDLE",
    b"NOOP x",
    b"NOOP",  # Courier closes on the 10th refusal in a row (ViolationCounter)
    b"LOGIN",
    b"CAPABILITY x",
]


def _run_imaplogin(script: bytes, home: Path) -> bytes:
    proc = subprocess.run(
        [IMAPLOGIN, IMAPD, "Maildir"],
        input=script,
        capture_output=True,
        cwd=home,
        env={"PATH": "/usr/bin:/bin"},
        timeout=30,
    )
    return proc.stdout


def test_before_login_we_refuse_what_imaplogin_refuses(tmp_path: Path) -> None:
    require(IMAPLOGIN, "Courier's pre-login stage is the oracle")
    script = b"".join(b"p%d %s\r\n" % (i, line) for i, line in enumerate(PREAUTH_CORPUS))
    out = _run_imaplogin(script + b"z LOGOUT\r\n", tmp_path)
    replies = {}
    for line in out.split(b"\r\n"):
        tag, _, rest = line.partition(b" ")
        if tag[:1] == b"p" and tag[1:].isdigit():
            replies[int(tag[1:])] = rest
    assert len(replies) == len(PREAUTH_CORPUS), out
    for i, line in enumerate(PREAUTH_CORPUS):
        reader = CommandReader(state=State.NOT_AUTHENTICATED)
        reader.receive_data(b"p " + line + b"\r\n")
        ev = reader.next_event()
        assert isinstance(ev, Command | BadCommand)
        assert isinstance(ev, Command) == _courier_parsed(replies[i]), (line, replies[i], ev)
        if isinstance(ev, BadCommand):
            # the same text as Courier; BAD where Courier says NO (RFC 3501)
            assert replies[i] == b"NO " + ev.message.encode()


def test_huge_literal_before_login(tmp_path: Path) -> None:
    """Courier does not answer ``LOGIN {4294967296}`` until the client sends
    another line, which it then swallows (design.md §5); we answer at once."""
    require(IMAPLOGIN, "Courier's pre-login stage is the oracle")
    out = _run_imaplogin(b"a1 NOOP\r\na2 LOGIN {4294967296}\r\na3 NOOP\r\n", tmp_path)
    assert b"a2 NO Error in IMAP command received by server." in out
    assert b"a3 " not in out  # swallowed
    reader = CommandReader(state=State.NOT_AUTHENTICATED)
    reader.receive_data(b"a2 LOGIN {4294967296}\r\n")
    ev = reader.next_event()
    assert isinstance(ev, BadCommand) and ev.tag == "a2"
    reader.receive_data(b"a3 NOOP\r\n")
    assert reader.next_event().tag == "a3"


def test_tenth_violation_in_a_row_closes(tmp_path: Path) -> None:
    from courierpy.imap.errors import BadSyntax, ViolationCounter

    require(IMAPLOGIN, "Courier's pre-login stage is the oracle")
    script = b"".join(b"f%d FOO\r\n" % i for i in range(12))
    out = _run_imaplogin(script, tmp_path)
    counter = ViolationCounter()
    ours = [counter.check(BadSyntax()).response(f"f{i}").to_bytes() for i in range(10)]
    greeting_end = out.index(b"\r\n") + 2
    # the one deliberate difference: BAD (RFC 3501) where Courier says NO
    assert out[greeting_end:] == b"".join(ours).replace(b" BAD Error", b" NO Error")
    assert b"f10 " not in out
