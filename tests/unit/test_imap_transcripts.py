"""The client side of the sessions captured from the real Courier
(/work/shared/spec/courier-transcripts/imap-*.txt), replayed through our
reader: whole, one byte at a time and split at many points.  Every command
Courier carried out must parse; the four Courier refused as malformed or
unknown must be refused (style.md example 13, golden transcripts)."""

from __future__ import annotations

import random

from courierpy.imap.grammar import BadCommand, Command, LiteralChunk, NeedContinuation
from tests.unit.test_imap_grammar import feed

# (client line, literal that follows it or None), in capture order
SESSION: list[tuple[bytes, bytes | None]] = [
    (b"a001 CAPABILITY", None),
    (b"a002 NOOP", None),
    (b"a003 LOGIN erin wrongpw", None),
    (b"a004 FOO", None),
    (b'a006 LOGIN "erin" "erinpw"', None),
    (b"a001 LOGIN {4}", b"erin"),
    (b" {6}", b"erinpw"),
    (b"", None),
    (b"a001 AUTHENTICATE PLAIN", None),
    (b"a002 AUTHENTICATE PLAIN AGVyaW4AZXJpbnB3", None),
    (b"a001 AUTHENTICATE CRAM-MD5", None),
    (b"a002 STARTTLS", None),
    (b"a008 NAMESPACE", None),
    (b'a009 LIST "" "*"', None),
    (b"a011 CREATE INBOX.Sent", None),
    (b"a012 CREATE INBOX.Work.Sub", None),
    (b"a014 CREATE Toplevel", None),
    (b'a011 CREATE "INBOX.a/b"', None),
    (b'a009 CREATE "INBOX.Bad&name"', None),
    (b'a008 CREATE "INBOX.R&AOk-sum&AOk-"', None),
    (b'a010 CREATE "INBOX.with space"', None),
    (b"a016 SUBSCRIBE INBOX.Sent", None),
    (b'a019 LSUB "" "*"', None),
    (b'a012 LIST "" "INBOX.%"', None),
    (b'a010 LIST "" "%"', None),
    (b'a003 LIST "" "#shared*"', None),
    (b'a004 LIST "#shared." "*"', None),
    (b'a007 LIST "" "#shared.e.erin.*"', None),
    (b'a008 MYRIGHTS "#shared.e.erin.Sent"', None),
    (b'a009 SELECT "#shared.e.erin.Sent"', None),
    (b'a013 STATUS "#shared.e.erin.Sent" (MESSAGES UIDNEXT UIDVALIDITY)', None),
    (b'a015 SUBSCRIBE "#shared.e.erin.Sent"', None),
    (b"a021 SELECT INBOX", None),
    (b'a022 APPEND INBOX (\\Seen $Label1 Junk) "01-Jan-2024 10:00:00 +0000" {164}', b"m" * 164),
    (b"", None),
    (b"a023 APPEND INBOX (\\Flagged) {132}", b"m" * 132),
    (b"", None),
    (b"a024 APPEND INBOX {25}", b"m" * 25),
    (b"", None),
    (b"a025 APPEND INBOX.Sent (\\Seen \\Answered \\Draft) {25}", b"m" * 25),
    (b"", None),
    (b"a027 NOOP", None),
    (b"a028 FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)", None),
    (b"a029 FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)] ENVELOPE)", None),
    (b"a030 STORE 2 +FLAGS ($Label2 NonJunk)", None),
    (b"a031 STORE 3 +FLAGS.SILENT (\\Seen)", None),
    (b"a032 UID STORE 3 FLAGS (\\Seen \\Answered)", None),
    (b"a033 SEARCH UNSEEN", None),
    (b"a034 UID SEARCH KEYWORD $Label1", None),
    (b"a035 COPY 1:2 INBOX.Work.Sub", None),
    (b"a036 UID COPY 3 INBOX.Sent", None),
    (b"a037 COPY 1 INBOX.Nope", None),
    (b"a038 STATUS INBOX.Sent (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)", None),
    (b"a040 GETQUOTAROOT INBOX", None),
    (b'a041 GETQUOTA ""', None),
    (b'a042 GETQUOTA "ROOT"', None),
    (b'a013 SETQUOTA "ROOT" (STORAGE 5)', None),
    (b"a043 MYRIGHTS INBOX", None),
    (b"a044 GETACL INBOX", None),
    (b"a046 LISTRIGHTS INBOX anyone", None),
    (b"a002 SETACL INBOX.Sent frank lr", None),
    (b"a003 SETACL INBOX.Sent user=frank lrs", None),
    (b"a010 SETACL INBOX.Sent -user=bob r", None),
    (b"a007 DELETEACL INBOX.Sent anyone", None),
    (b"a009 LISTRIGHTS INBOX.Sent user=frank", None),
    (b"a014 STORE 1:* +FLAGS (\\Deleted)", None),
    (b"a048 EXPUNGE", None),
    (b"a050 ID NIL", None),
    (b"a051 CHECK", None),
    (b"a052 CLOSE", None),
    (b"a053 EXAMINE INBOX.Sent", None),
    (b"a055 UNSELECT", None),
    (b"a057 RENAME INBOX.Work INBOX.Projects", None),
    (b"a059 DELETE Toplevel", None),
    (b"a060 UNSUBSCRIBE INBOX.Sent", None),
    (b"a062 ENABLE UTF8=ACCEPT", None),
    (b"a900 IDLE", None),
    (b"a063 LOGOUT", None),
]

#: what the real Courier answered "NO Error in IMAP command received by server." to
REFUSED = {"a004", "a009", "a050", "a055"}


def wire() -> bytes:
    out = b""
    for line, literal in SESSION:
        out += line + b"\r\n"
        if literal is not None:
            out = out[:-2] + b"\r\n" + literal
    return out


def outcome(chunks: list[bytes]) -> list:
    return [e for e in feed(chunks) if not isinstance(e, NeedContinuation | LiteralChunk)]


def test_captured_session_parses_as_courier_did() -> None:
    data = wire()
    evs = outcome([data])
    bad = [e.tag for e in evs if isinstance(e, BadCommand)]
    done = [e for e in evs if isinstance(e, Command)]
    # "a009 CREATE "INBOX.Bad&name"" shares its tag with a parsed command
    assert sorted(bad) == sorted(REFUSED)
    assert len(done) + len(bad) == sum(1 for line, _ in SESSION if line[:1] == b"a")
    assert [e.name for e in done if e.tag == "a001"][1] == "LOGIN"
    # however the bytes arrive, the same events come out
    assert outcome([bytes([b]) for b in data]) == evs
    rng = random.Random(5)
    for _ in range(30):
        cuts = sorted(rng.sample(range(1, len(data)), 8))
        pieces = [data[i:j] for i, j in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        assert outcome(pieces) == evs
