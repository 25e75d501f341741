"""The command reader and the per-command grammar, fed whole, one byte at a
time and split at every point (style.md example 13)."""

from __future__ import annotations

import datetime as dt

import pytest

from courierpy.imap import errors
from courierpy.imap.fetchatts import FetchAtt, Section
from courierpy.imap.grammar import (
    NEED_DATA,
    BadCommand,
    Command,
    CommandReader,
    ConnectionClosed,
    ContinuationLine,
    LiteralChunk,
    NeedContinuation,
    ReaderMisuse,
)
from courierpy.imap.searchkeys import ALL, And, HasFlag, Header, Not, SearchProgram, SeqKey
from courierpy.imap.seqset import STAR, SeqSet
from courierpy.imap.state import (
    COMMANDS,
    AclIdentifier,
    Append,
    AppendPrefix,
    Authenticate,
    CmdFlag,
    Copy,
    Enable,
    Fetch,
    ListArgs,
    Login,
    Mailbox,
    NoArgs,
    QuotaRoot,
    Rename,
    Search,
    SetAcl,
    SetQuota,
    Sort,
    State,
    Status,
    Store,
    Thread,
    UidExpunge,
)

# --- driving the reader ------------------------------------------------------


def drain(reader: CommandReader, out: list, *, accept: bool = True) -> None:
    while True:
        ev = reader.next_event()
        if ev is NEED_DATA:
            return
        if isinstance(ev, NeedContinuation):
            out.append(ev)
            if accept:
                reader.accept_literal()
            else:
                reader.reject_literal()
            continue
        if isinstance(ev, LiteralChunk) and out and isinstance(out[-1], LiteralChunk):
            # chunking depends on how the bytes arrived; merge for comparison
            out[-1] = LiteralChunk(out[-1].data + ev.data, ev.remaining)
            continue
        out.append(ev)


def feed(chunks, *, accept: bool = True, **kw) -> list:
    kw.setdefault("state", None)
    reader = CommandReader(**kw)
    out: list = []
    for c in chunks:
        reader.receive_data(c)
        drain(reader, out, accept=accept)
    return out


def events(data: bytes, *, accept: bool = True, **kw) -> list:
    """Events for *data*, asserting the same result however it is split."""
    whole = feed([data], accept=accept, **kw)
    assert feed([bytes([b]) for b in data], accept=accept, **kw) == whole
    for i in range(1, len(data)):
        assert feed([data[:i], data[i:]], accept=accept, **kw) == whole, i
    return whole


def command(line: bytes, **kw) -> Command:
    evs = [e for e in events(line, **kw) if not isinstance(e, NeedContinuation)]
    assert len(evs) == 1, evs
    assert isinstance(evs[0], Command), evs
    return evs[0]


def bad(line: bytes, **kw) -> BadCommand:
    evs = [e for e in events(line, **kw) if not isinstance(e, NeedContinuation | LiteralChunk)]
    assert len(evs) == 1, evs
    assert isinstance(evs[0], BadCommand), evs
    return evs[0]


# --- the command table: input line -> parsed arguments ----------------------

D = dt.datetime(2024, 1, 1, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))

GOOD = [
    (b"a CAPABILITY", NoArgs()),
    (b"a noop", NoArgs()),
    (b"a LOGOUT", NoArgs()),
    (b"a STARTTLS", NoArgs()),
    (b"a LOGIN erin erinpw", Login("erin", "erinpw")),
    (b'a LOGIN "erin" "p w\\"\\\\"', Login("erin", 'p w"\\')),
    (b"a LOGIN {4}\r\nerin {6}\r\nerinpw", Login("erin", "erinpw")),
    (b"a LOGIN {4+}\r\nerin {0+}\r\n", Login("erin", "")),
    (b"a AUTHENTICATE plain", Authenticate("PLAIN")),
    (b"a AUTHENTICATE PLAIN AGVyaW4AZXJpbnB3", Authenticate("PLAIN", b"AGVyaW4AZXJpbnB3")),
    (b"a AUTHENTICATE PLAIN =", Authenticate("PLAIN", b"=")),
    (b"a SELECT INBOX", Mailbox("INBOX")),
    (b"a SELECT inbox", Mailbox("INBOX")),
    (b'a EXAMINE "InBoX"', Mailbox("INBOX")),
    (b"a SELECT inbox.Sent", Mailbox("INBOX.Sent")),
    (b"a CREATE INBOX.R&AOk-sum&AOk-", Mailbox("INBOX.Résumé")),
    (b"a CREATE {11}\r\nINBOX.a b c", Mailbox("INBOX.a b c")),
    (b"a DELETE INBOX.[Gmail]", Mailbox("INBOX.[Gmail]")),
    (b"a SUBSCRIBE INBOX.Sent", Mailbox("INBOX.Sent")),
    (b"a UNSUBSCRIBE INBOX.Sent", Mailbox("INBOX.Sent")),
    (b"a RENAME INBOX.a INBOX.b", Rename("INBOX.a", "INBOX.b")),
    (b'a LIST "" "*"', ListArgs("", "*")),
    (b"a LIST INBOX. %", ListArgs("INBOX.", "%")),
    (b'a LSUB "#shared." INBOX.*', ListArgs("#shared.", "INBOX.*")),
    (
        b"a STATUS INBOX.Sent (MESSAGES RECENT uidnext UIDVALIDITY UNSEEN)",
        Status("INBOX.Sent", ("MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN")),
    ),
    # Courier ignores status items it does not know
    (b"a STATUS INBOX (MESSAGES FOO)", Status("INBOX", ("MESSAGES",))),
    (b"a NAMESPACE", NoArgs()),
    (b"a ENABLE UTF8=ACCEPT", Enable(("UTF8=ACCEPT",))),
    (b"a IDLE", NoArgs()),
    (b'a GETQUOTA ""', QuotaRoot("")),
    (b"a GETQUOTAROOT INBOX", Mailbox("INBOX")),
    (
        b'a SETQUOTA "ROOT" (STORAGE 5 message 10)',
        SetQuota("ROOT", (("STORAGE", 5), ("MESSAGE", 10))),
    ),
    (b"a SETQUOTA ROOT ()", SetQuota("ROOT", ())),
    (b"a SETACL INBOX.Sent frank lr", SetAcl("INBOX.Sent", "frank", "lr")),
    (b"a DELETEACL INBOX.Sent anyone", AclIdentifier("INBOX.Sent", "anyone")),
    (b"a GETACL INBOX", Mailbox("INBOX")),
    (b"a LISTRIGHTS INBOX anyone", AclIdentifier("INBOX", "anyone")),
    (b"a MYRIGHTS INBOX", Mailbox("INBOX")),
    (b"a CHECK", NoArgs()),
    (b"a CLOSE", NoArgs()),
    (b"a EXPUNGE", NoArgs()),
    (b"a UID EXPUNGE 1:3,7", UidExpunge(SeqSet(((1, 3), (7, 7))))),
    (b"a SEARCH UNSEEN", Search(SearchProgram(Not(HasFlag("\\Seen"))))),
    (b"a uid search ALL", Search(SearchProgram(ALL), uid=True)),
    (
        b"a SEARCH CHARSET UTF-8 SUBJECT {2}\r\n\xc3\xa9",
        Search(SearchProgram(Header("SUBJECT", "é"), "UTF-8")),
    ),
    (b"a FETCH 1:* FLAGS", Fetch(SeqSet(((1, STAR),)), (FetchAtt("FLAGS"),))),
    (
        b"a UID FETCH 4:2 (UID RFC822.SIZE)",
        Fetch(SeqSet(((4, 2),)), (FetchAtt("UID"), FetchAtt("RFC822.SIZE")), uid=True),
    ),
    (
        b"a FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)] ENVELOPE)",
        Fetch(
            SeqSet(((1, 1),)),
            (
                FetchAtt("BODY", Section((), "HEADER.FIELDS", ("SUBJECT",)), True),
                FetchAtt("ENVELOPE"),
            ),
        ),
    ),
    (
        b"a STORE 2 +FLAGS ($Label2 NonJunk)",
        Store(SeqSet(((2, 2),)), "+", False, ("$Label2", "NonJunk")),
    ),
    (b"a STORE 3 +flags.silent (\\seen)", Store(SeqSet(((3, 3),)), "+", True, ("\\Seen",))),
    (
        b"a UID STORE 3 FLAGS (\\Seen \\Answered)",
        Store(SeqSet(((3, 3),)), "", False, ("\\Seen", "\\Answered"), uid=True),
    ),
    (b"a STORE 1 -FLAGS \\Deleted", Store(SeqSet(((1, 1),)), "-", False, ("\\Deleted",))),
    (b"a STORE 1 FLAGS ()", Store(SeqSet(((1, 1),)), "", False, ())),
    (b"a COPY 1:2 INBOX.Work.Sub", Copy(SeqSet(((1, 2),)), "INBOX.Work.Sub")),
    (b"a UID COPY 3 INBOX.Sent", Copy(SeqSet(((3, 3),)), "INBOX.Sent", uid=True)),
    (
        b"a SORT (REVERSE DATE subject) UTF-8 ALL",
        Sort((("DATE", True), ("SUBJECT", False)), "UTF-8", ALL),
    ),
    (
        b"a UID SORT (ARRIVAL) US-ASCII SEEN 1:5",
        Sort(
            (("ARRIVAL", False),),
            "US-ASCII",
            And((HasFlag("\\Seen"), SeqKey(SeqSet(((1, 5),))))),
            True,
        ),
    ),
    (b"a THREAD REFERENCES UTF-8 ALL", Thread("REFERENCES", "UTF-8", ALL)),
    (b"a UID THREAD orderedsubject UTF-8 ALL", Thread("ORDEREDSUBJECT", "UTF-8", ALL, True)),
    # outside RFC 3501, but Courier accepts these, so clients may rely on them
    (b"a FETCH 01,2, FLAGS", Fetch(SeqSet(((1, 1), (2, 2))), (FetchAtt("FLAGS"),))),
    (b"a STORE 1 FLAGS", Store(SeqSet(((1, 1),)), "", False, ())),
    (b"a STATUS INBOX ()", Status("INBOX", ())),
    (b"a STATUS INBOX messages", Status("INBOX", ("MESSAGES",))),
    (b"a ENABLE", Enable(())),
]


@pytest.mark.parametrize("line,args", GOOD, ids=[g[0].decode("latin-1")[:40] for g in GOOD])
def test_command_table_good(line: bytes, args: object) -> None:
    cmd = command(line + b"\r\n")
    assert cmd.tag == "a"
    assert cmd.args == args
    assert cmd.spec is COMMANDS[cmd.name]


def test_append_streams_the_message() -> None:
    evs = events(b'a1 APPEND inbox (\\Seen $Label1) " 1-Jan-2024 10:00:00 +0100" {5}\r\nHello\r\n')
    prefix = AppendPrefix("INBOX", ("\\Seen", "$Label1"), D)
    assert evs == [
        NeedContinuation("a1", "APPEND", 5, True, prefix),
        LiteralChunk(b"Hello", 0),
        Command("a1", "APPEND", Append("INBOX", ("\\Seen", "$Label1"), D, 5), COMMANDS["APPEND"]),
    ]


def test_append_literal_plus_still_asks_for_a_decision() -> None:
    evs = events(b"a1 APPEND {5+}\r\nINBOX {3+}\r\nabc\r\n")
    assert evs[0] == NeedContinuation("a1", "APPEND", 3, False, AppendPrefix("INBOX", (), None))
    assert evs[1] == LiteralChunk(b"abc", 0)
    assert evs[2].args == Append("INBOX", (), None, 3)


def test_append_literal_is_never_held_whole() -> None:
    reader = CommandReader(state=State.AUTHENTICATED, max_literal=10)
    reader.receive_data(b"a APPEND INBOX {100000}\r\n")
    ev = reader.next_event()
    assert isinstance(ev, NeedContinuation) and ev.streamed
    reader.accept_literal()
    total = 0
    for _ in range(100):
        reader.receive_data(b"x" * 1000)
        ev = reader.next_event()
        assert isinstance(ev, LiteralChunk) and len(ev.data) == 1000
        total += len(ev.data)
        assert len(reader._buf) == 0  # nothing accumulates in the reader
    assert total == 100000
    reader.receive_data(b"\r\n")
    assert isinstance(reader.next_event(), Command)


def test_append_rejected_before_continuation() -> None:
    # Courier: APPEND INBOX.Nonexistent {25} -> NO [TRYCREATE] without "+"
    evs = events(b"a1 APPEND INBOX.Nope {25}\r\na2 NOOP\r\n", accept=False)
    assert evs[0].name == "APPEND" and evs[0].synchronizing
    assert evs[1] == Command("a2", "NOOP", NoArgs(), COMMANDS["NOOP"])


def test_rejected_nonsync_literal_is_skipped() -> None:
    evs = events(b"a1 APPEND INBOX.Nope {5+}\r\nHELLO\r\na2 NOOP\r\n", accept=False)
    assert [type(e) for e in evs] == [NeedContinuation, Command]
    assert evs[1].tag == "a2"


def test_mailbox_literal_of_append_is_not_streamed() -> None:
    evs = events(b"a APPEND {5}\r\nINBOX {2}\r\nhi\r\n")
    assert evs[0] == NeedContinuation("a", "APPEND", 5, True, None)
    assert evs[1].streamed
    assert evs[2] == LiteralChunk(b"hi", 0)


def test_multiple_commands_and_literals_interleaved() -> None:
    evs = events(b"a1 NOOP\r\na2 LOGIN {1}\r\nx y\r\na3 CAPABILITY\r\n")
    assert [getattr(e, "tag", None) for e in evs] == ["a1", "a2", "a2", "a3"]
    assert evs[2].args == Login("x", "y")


def test_bare_lf_is_accepted() -> None:
    assert command(b"a NOOP\n").name == "NOOP"


# --- syntax errors -> BAD ---------------------------------------------------

BAD = [
    b"a FOO",
    b"a UID FOO 1",
    b"a UID",
    b"a UNSELECT",  # Courier has no UNSELECT: unknown, as there
    b"a ID NIL",
    b"a MOVE 1 INBOX",
    b"a NOOP extra",
    b"a SELECT",
    b"a SELECT  INBOX",
    b"a SELECT INBOX ",
    b"a LOGIN erin",
    b'a LOGIN "erin pw',
    b'a LOGIN "er\\in" pw',
    b"a CREATE INBOX.Bad&name",  # invalid modified UTF-7
    b"a CREATE INBOX.R\xc3\xa9sum\xc3\xa9",  # 8-bit needs UTF8=ACCEPT
    b"a CREATE foo{3}",
    b"a LOGIN {3}x",
    b"a LOGIN {x}",
    b"a LOGIN {99999999999}",
    b"a FETCH 1:x FLAGS",
    b"a FETCH 0 FLAGS",
    b"a FETCH 1 (FLAGS",
    b"a FETCH 1 ()",
    b"a FETCH 1 FOO",
    b"a FETCH 1 BODY[HEADER.FIELDS]",
    b"a FETCH 1 BODY[MIME]",
    b"a FETCH 1 BODY[0]",
    b"a FETCH 1 BODY[1.TEXT.X]",
    b"a FETCH 1 BODY[TEXT",
    b"a FETCH 1 BODY[]<0.>",
    b"a FETCH ,, FLAGS",
    b"a STATUS INBOX (MESSAGES",
    b"a ENABLE  X",
    b"a FETCH 1 BODY.PEK[]",
    b"a FETCH 1 (BODY[HEADER.FIELDS (FROM)] ",
    b"a STORE 1 FLAGS (\\Bogus)",
    b"a STORE 1 FLAGS (\\Recent)",
    b"a STORE 1 XFLAGS (\\Seen)",
    b"a SEARCH",
    b"a SEARCH FOO",
    b"a SEARCH 0",
    b"a SEARCH OR SEEN",
    b"a SEARCH (SEEN",
    b"a SEARCH BEFORE 32-Jan-2024",
    b"a SEARCH SINCE 1-Foo-2024",
    b"a SEARCH LARGER x",
    b"a SEARCH CHARSET UTF-8 SUBJECT \xff",
    b"a SEARCH " + b"NOT " * 100 + b"ALL",
    b"a SEARCH " + b"(" * 100 + b"ALL" + b")" * 100,
    b'a APPEND INBOX "1-Jan-2024 10:00:00 +0000" {1+}\r\nx',  # day must be 2 wide
    b"a APPEND INBOX",
    b"a APPEND INBOX (\\Seen) {1+}\r\nx extra",
    b"a SORT DATE UTF-8 ALL",
    b"a SORT (FOO) UTF-8 ALL",
    b"a COPY 1",
    b"a RENAME INBOX",
    b"+ NOOP",
    b"a(b NOOP",
    b'"a" NOOP',
    b"{3+}\r\nabc NOOP",
    b"a {4+}\r\nNOOP",
    b"a NOOP\x01",
]


@pytest.mark.parametrize("line", BAD, ids=[b.decode("latin-1")[:40] for b in BAD])
def test_command_table_bad(line: bytes) -> None:
    ev = bad(line + b"\r\n")
    resp = ev.response().to_bytes()
    # the client sees Courier's one text; what was wrong goes to the log
    if isinstance(ev.error, errors.TooBig):
        assert resp == b"a BAD [TOOBIG] Literal too big.\r\n"
    else:
        assert resp.endswith(b" BAD Error in IMAP command received by server.\r\n")
    assert ev.detail
    assert not ev.fatal


def test_bad_keeps_the_tag_and_courier_text() -> None:
    assert bad(b"a4 FOO\r\n").response().to_bytes() == (
        b"a4 BAD Error in IMAP command received by server.\r\n"
    )
    ev = bad(b"a5 SELECT\r\n")
    assert ev.message == "Error in IMAP command received by server."
    assert ev.detail == "Missing argument."
    assert bad(b"(x NOOP\r\n").response().to_bytes().startswith(b"* BAD")
    assert bad(b"\r\n").tag is None


def test_bad_charset_is_no_with_the_supported_list() -> None:
    ev = bad(b"a SEARCH CHARSET X-NO-SUCH ALL\r\n")
    assert ev.response().to_bytes() == (
        b"a NO [BADCHARSET (UTF-8 US-ASCII)] The requested character set is not supported.\r\n"
    )
    # Courier accepts any charset iconv knows; we accept what Python knows
    cmd = command(b"a SEARCH CHARSET KOI8-R SUBJECT {1}\r\n\xc1\r\n")
    assert cmd.args.program.key == Header("SUBJECT", "а")


def test_after_bad_the_next_command_is_read() -> None:
    evs = events(b"a1 FETCH 1:x FLAGS\r\na2 NOOP\r\n")
    assert isinstance(evs[0], BadCommand) and evs[0].tag == "a1"
    assert isinstance(evs[1], Command) and evs[1].tag == "a2"


def test_bad_after_literal_skips_the_rest_of_the_command() -> None:
    # the BAD is known at the first line; the non-sync literal must not be read as a command
    evs = events(b"a1 FOO {4+}\r\na2 X\r\na3 NOOP\r\n")
    assert [(type(e), e.tag) for e in evs] == [(BadCommand, "a1"), (Command, "a3")]
    # a later segment with another non-sync literal is skipped too
    evs = events(b"a1 FOO {1+}\r\nx {3+}\r\nabc\r\na3 NOOP\r\n")
    assert [(type(e), e.tag) for e in evs] == [(BadCommand, "a1"), (Command, "a3")]


# --- states ---------------------------------------------------------------


def test_wrong_state_is_bad() -> None:
    ev = bad(b"a5 SELECT INBOX\r\n", state=State.NOT_AUTHENTICATED)
    assert isinstance(ev.error, errors.WrongState)
    assert ev.response().to_bytes() == b"a5 BAD Error in IMAP command received by server.\r\n"
    assert isinstance(bad(b"a LOGIN a b\r\n", state=State.AUTHENTICATED).error, errors.WrongState)
    assert isinstance(
        bad(b"a FETCH 1 FLAGS\r\n", state=State.AUTHENTICATED).error, errors.WrongState
    )
    assert command(b"a FETCH 1 FLAGS\r\n", state=State.SELECTED).name == "FETCH"
    assert command(b"a NOOP\r\n", state=State.NOT_AUTHENTICATED).name == "NOOP"


def test_wrong_state_literal_is_refused_before_continuation() -> None:
    # no "+" is offered for a command that cannot run in this state
    evs = events(b"a SELECT {5}\r\n", state=State.NOT_AUTHENTICATED)
    assert len(evs) == 1 and isinstance(evs[0].error, errors.WrongState)


def test_state_table_covers_rfc3501() -> None:
    rfc3501 = (
        "CAPABILITY NOOP LOGOUT STARTTLS AUTHENTICATE LOGIN SELECT EXAMINE CREATE DELETE "
        "RENAME SUBSCRIBE UNSUBSCRIBE LIST LSUB STATUS APPEND CHECK CLOSE EXPUNGE SEARCH "
        "FETCH STORE COPY"
    ).split() + ["UID SEARCH", "UID FETCH", "UID STORE", "UID COPY"]
    for name in rfc3501:
        assert name in COMMANDS, name
        assert COMMANDS[name].rfc.startswith("RFC 3501")
    for name in ("FETCH", "STORE", "SEARCH", "COPY"):
        assert COMMANDS[name].flags & CmdFlag.USES_SEQS
        assert not COMMANDS["UID " + name].flags & CmdFlag.USES_SEQS
    for name in ("EXPUNGE", "UID EXPUNGE", "CLOSE"):
        assert COMMANDS[name].flags & CmdFlag.BREAKS_SEQS
    assert COMMANDS["LOGIN"].states == {State.NOT_AUTHENTICATED}
    assert State.LOGOUT not in COMMANDS["NOOP"].states


# --- UTF8=ACCEPT ----------------------------------------------------------


def test_utf8_mailbox_names_after_enable() -> None:
    cmd = command(b'a CREATE "INBOX.R\xc3\xa9sum\xc3\xa9"\r\n', utf8=True)
    assert cmd.args == Mailbox("INBOX.Résumé")
    cmd = command(b"a CREATE INBOX.R\xc3\xa9sum\xc3\xa9\r\n", utf8=True)
    assert cmd.args == Mailbox("INBOX.Résumé")
    # "&" is an ordinary character once UTF-8 names are on
    assert command(b"a CREATE INBOX.a&b\r\n", utf8=True).args == Mailbox("INBOX.a&b")
    assert isinstance(bad(b"a CREATE INBOX.\xff\r\n", utf8=True).error, errors.BadSyntax)


# --- limits ---------------------------------------------------------------


def test_huge_literal_before_login_is_answered_at_once() -> None:
    # Courier never answers this (design.md §5); we answer BAD [TOOBIG] without "+"
    for state in (State.NOT_AUTHENTICATED, State.AUTHENTICATED, None):
        reader = CommandReader(state=state)
        reader.receive_data(b"a LOGIN {4294967296}\r\n")
        ev = reader.next_event()
        assert isinstance(ev, BadCommand) and ev.tag == "a", (state, ev)
    reader = CommandReader(state=State.NOT_AUTHENTICATED)
    reader.receive_data(b"a LOGIN {4294967295}\r\n")
    ev = reader.next_event()
    assert ev.response().to_bytes() == b"a BAD [TOOBIG] Literal too big.\r\n"
    reader.receive_data(b"a2 NOOP\r\n")
    assert reader.next_event().tag == "a2"


def test_over_limit_append_is_no_toobig() -> None:
    reader = CommandReader(state=State.AUTHENTICATED, max_append=1000)
    reader.receive_data(b"a APPEND INBOX {1001}\r\n")
    ev = reader.next_event()
    assert ev.response().to_bytes() == b"a NO [TOOBIG] Message too big.\r\n"


def test_over_limit_nonsync_literal_is_skipped_not_stored() -> None:
    reader = CommandReader(state=None, max_literal=10)
    reader.receive_data(b"a LOGIN {100000+}\r\n")
    assert isinstance(reader.next_event(), BadCommand)
    for _ in range(100):
        reader.receive_data(b"x" * 1000)
        assert reader.next_event() is NEED_DATA
        assert len(reader._buf) == 0
    reader.receive_data(b" y\r\na2 NOOP\r\n")
    assert reader.next_event().tag == "a2"


def test_long_line_is_fatal_without_waiting_for_its_end() -> None:
    reader = CommandReader(state=None, max_line=1000)
    reader.receive_data(b"a NOOP " + b"x" * 2000)
    ev = reader.next_event()
    assert isinstance(ev, BadCommand) and ev.fatal
    assert ev.response().to_bytes() == b"* BYE Command line too long.\r\n"
    assert reader.closed
    reader.receive_data(b"x" * 100000)
    assert reader.next_event() is NEED_DATA
    assert len(reader._buf) == 0


def test_too_many_tokens() -> None:
    line = b"a SEARCH " + b" ".join([b"SEEN"] * 600) + b"\r\n"
    ev = feed([line], max_tokens=1000)[0]
    assert isinstance(ev.error, errors.TooBig)
    assert isinstance(feed([line], max_tokens=2000)[0], Command)


def test_command_size_limit_counts_literals() -> None:
    data = b"a LOGIN {600}\r\n" + b"x" * 600 + b" {600}\r\n"
    evs = feed([data], max_literal=1000, max_command=1000)
    assert isinstance(evs[-1], BadCommand) and isinstance(evs[-1].error, errors.TooBig)


# --- continuation lines, EOF, misuse --------------------------------------


def test_expect_line_for_authenticate_and_idle() -> None:
    reader = CommandReader(state=None)
    reader.receive_data(b"a AUTHENTICATE PLAIN\r\nAGVyaW4AZXJpbnB3\r\nb IDLE\r\nDONE\r\n")
    assert reader.next_event().name == "AUTHENTICATE"
    reader.expect_line()
    assert reader.next_event() == ContinuationLine(b"AGVyaW4AZXJpbnB3")
    assert reader.next_event().name == "IDLE"
    reader.expect_line()
    assert reader.next_event() == ContinuationLine(b"DONE")
    assert reader.next_event() is NEED_DATA


def test_eof() -> None:
    reader = CommandReader(state=None)
    reader.receive_data(b"a NOOP\r\nb NO")
    reader.receive_data(b"")
    assert reader.next_event().tag == "a"
    assert reader.next_event() == ConnectionClosed()
    assert reader.next_event() is NEED_DATA


def test_misuse_is_reported() -> None:
    reader = CommandReader(state=None)
    with pytest.raises(ReaderMisuse):
        reader.accept_literal()
    reader.receive_data(b"a LOGIN {1}\r\n")
    assert isinstance(reader.next_event(), NeedContinuation)
    with pytest.raises(ReaderMisuse):
        reader.next_event()
    with pytest.raises(ReaderMisuse):
        reader.expect_line()


def test_one_byte_at_a_time_is_linear() -> None:
    # the buffer resumes its CRLF search: 200 KB fed byte by byte stays fast
    reader = CommandReader(state=None, max_line=300000)
    data = b"a SEARCH " + b" ".join([b"SEEN"] * 40000) + b"\r\n"
    out: list = []
    for i in range(len(data)):
        reader.receive_data(data[i : i + 1])
        drain(reader, out)
    assert len(out) == 1


def test_searchres_dollar_only_when_enabled() -> None:
    # Courier has no SEARCHRES: "$" is a syntax error unless the session enables it
    assert isinstance(bad(b"a FETCH $ FLAGS\r\n").error, errors.BadSyntax)
    assert isinstance(bad(b"a SEARCH $\r\n").error, errors.BadSyntax)
    assert command(b"a FETCH $ FLAGS\r\n", searchres=True).args.seqset.saved
    key = command(b"a UID SEARCH UID $\r\n", searchres=True).args.program.key
    assert key.seqset.saved


def test_table_renders_for_the_docs() -> None:
    from courierpy.imap.state import table_markdown

    text = table_markdown()
    for name in COMMANDS:
        assert f"| {name} |" in text
    assert "| FETCH |  |  | x | USES_SEQS | RFC 3501 6.4.5 |" in text
