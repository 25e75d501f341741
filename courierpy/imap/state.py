"""The IMAP command table, as data: states, semantic flags, argument grammar.

Each :class:`Spec` says in which :class:`State` a command is allowed, what it
does to message sequence numbers (:class:`CmdFlag`, after Dovecot's
``COMMAND_FLAG_USES_SEQS`` / ``BREAKS_SEQS``) and how its arguments parse
into a frozen dataclass (style.md examples 3 and 4).  Handlers are not here:
the session looks a command up by name and dispatches on the argument type.

The table covers RFC 3501 and the extensions Courier-IMAP implements
(UIDPLUS, NAMESPACE, QUOTA, ACL, ENABLE, IDLE, SORT, THREAD).  Courier has
no UNSELECT, ID, MOVE or CONDSTORE; those names are unknown here too, so
clients see the same answer.

Courier answers every command it cannot parse, and every command not valid
in the current state, with ``NO Error in IMAP command received by server.``;
RFC 3501 says ``BAD``.  We send ``BAD`` with Courier's text (design.md §4).
"""

from __future__ import annotations

import datetime as _dt
import enum
from collections.abc import Callable
from dataclasses import dataclass

from courierpy.imap.errors import BadSyntax, UnknownCommand, WrongState
from courierpy.imap.fetchatts import FetchAtt, parse_fetch_atts
from courierpy.imap.searchkeys import (
    SearchKey,
    SearchProgram,
    parse_search,
    parse_search_keys,
)
from courierpy.imap.seqset import SeqSet
from courierpy.imap.tokens import Cursor, Tok, is_atom

__all__ = [
    "COMMANDS",
    "CmdFlag",
    "Spec",
    "State",
    "lookup",
    "parse_append_prefix",
    "parse_arguments",
]


class State(enum.Enum):
    """Connection states (RFC 3501 section 3)."""

    #: before LOGIN / AUTHENTICATE
    NOT_AUTHENTICATED = "not authenticated"
    #: logged in, no mailbox selected
    AUTHENTICATED = "authenticated"
    #: a mailbox is selected (SELECT / EXAMINE)
    SELECTED = "selected"
    #: LOGOUT was received
    LOGOUT = "logout"


ANY = frozenset({State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED})
NOAUTH = frozenset({State.NOT_AUTHENTICATED})
AUTH = frozenset({State.AUTHENTICATED, State.SELECTED})
SELECTED = frozenset({State.SELECTED})


class CmdFlag(enum.Flag):
    NONE = 0
    #: the arguments hold message sequence numbers, so no EXPUNGE may be
    #: sent while it runs (RFC 3501 7.4.1)
    USES_SEQS = enum.auto()
    #: the command removes messages, renumbering the rest
    BREAKS_SEQS = enum.auto()
    #: a message literal is streamed (APPEND), never held in memory
    STREAMS_LITERAL = enum.auto()
    #: the command reads raw continuation lines afterwards (AUTHENTICATE, IDLE)
    CONTINUES = enum.auto()
    #: only makes sense before TLS (STARTTLS): no pipelining after it
    NO_PIPELINE = enum.auto()


# --- argument dataclasses ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoArgs:
    pass


@dataclass(frozen=True, slots=True)
class Login:
    userid: str
    password: str

    def __repr__(self) -> str:  # never put passwords in logs
        return f"Login(userid={self.userid!r}, password=<hidden>)"


@dataclass(frozen=True, slots=True)
class Authenticate:
    mechanism: str
    #: RFC 4959 SASL-IR: the base64 text, ``"="`` for an empty response
    initial_response: bytes | None = None

    def __repr__(self) -> str:
        ir = "<hidden>" if self.initial_response is not None else None
        return f"Authenticate(mechanism={self.mechanism!r}, initial_response={ir})"


@dataclass(frozen=True, slots=True)
class Mailbox:
    """SELECT, EXAMINE, CREATE, DELETE, SUBSCRIBE, UNSUBSCRIBE, GETQUOTAROOT,
    GETACL, MYRIGHTS."""

    mailbox: str


@dataclass(frozen=True, slots=True)
class Rename:
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class ListArgs:
    """LIST / LSUB: *reference* and *pattern* (wildcards ``*`` ``%``)."""

    reference: str
    pattern: str


STATUS_ITEMS = ("MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN")


@dataclass(frozen=True, slots=True)
class Status:
    mailbox: str
    #: the known items asked for, in request order (unknown ones are
    #: dropped, as Courier does)
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Append:
    """APPEND: the message itself was streamed as LiteralChunk events."""

    mailbox: str
    flags: tuple[str, ...]
    date: _dt.datetime | None
    size: int


@dataclass(frozen=True, slots=True)
class AppendPrefix:
    """What is known of an APPEND when its message literal begins."""

    mailbox: str
    flags: tuple[str, ...]
    date: _dt.datetime | None


@dataclass(frozen=True, slots=True)
class Search:
    program: SearchProgram
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Fetch:
    seqset: SeqSet
    atts: tuple[FetchAtt, ...]
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Store:
    """STORE: *mode* ``""`` (replace), ``"+"`` or ``"-"``; *silent* for ``.SILENT``."""

    seqset: SeqSet
    mode: str
    silent: bool
    flags: tuple[str, ...]
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Copy:
    seqset: SeqSet
    mailbox: str
    uid: bool = False


@dataclass(frozen=True, slots=True)
class UidExpunge:
    seqset: SeqSet


SORT_KEYS = ("ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO")


@dataclass(frozen=True, slots=True)
class Sort:
    """SORT (RFC 5256): criteria as ``(key, reverse)`` pairs."""

    criteria: tuple[tuple[str, bool], ...]
    charset: str
    key: SearchKey
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Thread:
    algorithm: str
    charset: str
    key: SearchKey
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Enable:
    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class QuotaRoot:
    """GETQUOTA root."""

    root: str


@dataclass(frozen=True, slots=True)
class SetQuota:
    root: str
    limits: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class SetAcl:
    mailbox: str
    identifier: str
    rights: str


@dataclass(frozen=True, slots=True)
class AclIdentifier:
    """DELETEACL and LISTRIGHTS: mailbox and identifier."""

    mailbox: str
    identifier: str


# --- argument parsers (cursor positioned after the command name) -----------


def _none(cur: Cursor, uid: bool) -> NoArgs:
    cur.end()
    return NoArgs()


def _login(cur: Cursor, uid: bool) -> Login:
    cur.sp()
    user = cur.text_astring("user name")
    cur.sp()
    pw = cur.text_astring("password")
    cur.end()
    return Login(user, pw)


def _authenticate(cur: Cursor, uid: bool) -> Authenticate:
    cur.sp()
    mech = cur.atom("mechanism").upper()
    ir = None
    if cur.maybe_sp():
        ir = cur.raw_atom("initial response")
        if ir != b"=" and not all(chr(b).isalnum() or b in b"+/=" for b in ir):
            raise BadSyntax("Invalid initial response.")
    cur.end()
    return Authenticate(mech, ir)


def _mailbox(cur: Cursor, uid: bool) -> Mailbox:
    cur.sp()
    m = cur.mailbox()
    cur.end()
    return Mailbox(m)


def _rename(cur: Cursor, uid: bool) -> Rename:
    cur.sp()
    a = cur.mailbox()
    cur.sp()
    b = cur.mailbox()
    cur.end()
    return Rename(a, b)


def _list(cur: Cursor, uid: bool) -> ListArgs:
    cur.sp()
    ref = cur.mailbox_reference()
    cur.sp()
    pat = cur.list_mailbox()
    cur.end()
    return ListArgs(ref, pat)


def _status(cur: Cursor, uid: bool) -> Status:
    cur.sp()
    m = cur.mailbox()
    cur.sp()
    # Courier also takes "()" and one bare item: STATUS INBOX MESSAGES
    if cur.peek_kind() == Tok.LP:
        raw = cur.list_of(lambda c: c.raw_atom("status item").upper())
    else:
        raw = [cur.raw_atom("status item").upper()]
    cur.end()
    items = tuple(dict.fromkeys(r.decode("ascii", "replace") for r in raw))
    return Status(m, tuple(i for i in items if i in STATUS_ITEMS))


def parse_append_prefix(cur: Cursor) -> AppendPrefix:
    """``SP mailbox [SP flag-list] [SP date-time] SP`` — up to the literal."""
    cur.sp()
    m = cur.mailbox()
    cur.sp()
    flags: tuple[str, ...] = ()
    date = None
    if cur.peek_kind() == Tok.LP:
        flags = cur.flag_list()
        cur.sp()
    if cur.peek_kind() == Tok.QUOTED:
        date = cur.date_time()
        cur.sp()
    return AppendPrefix(m, flags, date)


def _append(cur: Cursor, uid: bool) -> Append:
    prefix = parse_append_prefix(cur)
    kind, value = cur.peek() or (None, None)
    if kind != Tok.STREAMED:
        raise BadSyntax("APPEND needs the message as a literal.")
    cur.pos += 1
    cur.end()
    return Append(prefix.mailbox, prefix.flags, prefix.date, value.size)  # type: ignore[union-attr]


def _search(cur: Cursor, uid: bool) -> Search:
    cur.sp()
    return Search(parse_search(cur), uid)


def _seqset(cur: Cursor) -> SeqSet:
    return cur.seqset()


def _fetch(cur: Cursor, uid: bool) -> Fetch:
    cur.sp()
    s = _seqset(cur)
    cur.sp()
    atts = parse_fetch_atts(cur)
    cur.end()
    return Fetch(s, atts, uid)


def _store(cur: Cursor, uid: bool) -> Store:
    cur.sp()
    s = _seqset(cur)
    cur.sp()
    item = cur.raw_atom("store item").upper()
    mode = ""
    if item[:1] in (b"+", b"-"):
        mode, item = item[:1].decode(), item[1:]
    silent = item.endswith(b".SILENT")
    if silent:
        item = item[: -len(b".SILENT")]
    if item != b"FLAGS":
        raise BadSyntax("Invalid store item.")
    if cur.at_end():
        # Courier takes "STORE 1 FLAGS" with no flags as an empty list
        return Store(s, mode, silent, (), uid)
    cur.sp()
    if cur.peek_kind() == Tok.LP:
        flags = cur.flag_list()
    else:  # RFC 3501: flag *(SP flag) without parentheses
        flags_l = [cur.flag()]
        while cur.maybe_sp():
            flags_l.append(cur.flag())
        flags = tuple(flags_l)
    cur.end()
    return Store(s, mode, silent, flags, uid)


def _copy(cur: Cursor, uid: bool) -> Copy:
    cur.sp()
    s = _seqset(cur)
    cur.sp()
    m = cur.mailbox()
    cur.end()
    return Copy(s, m, uid)


def _uid_expunge(cur: Cursor, uid: bool) -> UidExpunge:
    cur.sp()
    s = _seqset(cur)
    cur.end()
    return UidExpunge(s)


def _sort(cur: Cursor, uid: bool) -> Sort:
    cur.sp()

    crit: list[tuple[str, bool]] = []
    cur.lparen()
    while True:
        word = cur.atom("sort key").upper()
        reverse = word == "REVERSE"
        if reverse:
            cur.sp()
            word = cur.atom("sort key").upper()
        if word not in SORT_KEYS:
            raise BadSyntax("Invalid sort key.")
        crit.append((word, reverse))
        if cur.maybe_rparen():
            break
        cur.sp()
    cur.sp()
    charset = cur.astring("charset").decode("ascii", "replace")
    cur.sp()
    key = parse_search_keys(cur, charset)
    return Sort(tuple(crit), charset.upper(), key, uid)


def _thread(cur: Cursor, uid: bool) -> Thread:
    cur.sp()
    alg = cur.atom("thread algorithm").upper()
    cur.sp()
    charset = cur.astring("charset").decode("ascii", "replace")
    cur.sp()
    key = parse_search_keys(cur, charset)
    return Thread(alg, charset.upper(), key, uid)


def _enable(cur: Cursor, uid: bool) -> Enable:
    # RFC 5161 wants at least one; Courier answers a bare ENABLE with OK
    caps = []
    while cur.maybe_sp():
        caps.append(cur.atom("capability").upper())
    cur.end()
    return Enable(tuple(caps))


def _getquota(cur: Cursor, uid: bool) -> QuotaRoot:
    cur.sp()
    root = cur.text_astring("quota root")
    cur.end()
    return QuotaRoot(root)


def _setquota(cur: Cursor, uid: bool) -> SetQuota:
    cur.sp()
    root = cur.text_astring("quota root")
    cur.sp()
    cur.lparen()
    limits: list[tuple[str, int]] = []
    if not cur.maybe_rparen():
        while True:
            res = cur.atom("resource").upper()
            cur.sp()
            limits.append((res, cur.number("limit")))
            if cur.maybe_rparen():
                break
            cur.sp()
    cur.end()
    return SetQuota(root, tuple(limits))


def _setacl(cur: Cursor, uid: bool) -> SetAcl:
    cur.sp()
    m = cur.mailbox()
    cur.sp()
    ident = cur.text_astring("identifier")
    cur.sp()
    rights = cur.text_astring("rights")
    cur.end()
    return SetAcl(m, ident, rights)


def _acl_ident(cur: Cursor, uid: bool) -> AclIdentifier:
    cur.sp()
    m = cur.mailbox()
    cur.sp()
    ident = cur.text_astring("identifier")
    cur.end()
    return AclIdentifier(m, ident)


# --- the table --------------------------------------------------------------

Parser = Callable[[Cursor, bool], object]


@dataclass(frozen=True, slots=True)
class Spec:
    """One command: *name*, allowed *states*, *flags*, argument *parse*r, *rfc* link."""

    name: str
    states: frozenset[State]
    parse: Parser
    flags: CmdFlag = CmdFlag.NONE
    rfc: str = ""


def _s(name: str, states, parse, flags=CmdFlag.NONE, rfc="") -> Spec:  # type: ignore[no-untyped-def]
    return Spec(name, states, parse, flags, rfc)


_U = CmdFlag.USES_SEQS
_B = CmdFlag.BREAKS_SEQS

COMMANDS: dict[str, Spec] = {
    s.name: s
    for s in (
        # RFC 3501 6.1: any state
        _s("CAPABILITY", ANY, _none, rfc="RFC 3501 6.1.1"),
        _s("NOOP", ANY, _none, rfc="RFC 3501 6.1.2"),
        _s("LOGOUT", ANY, _none, rfc="RFC 3501 6.1.3"),
        # 6.2: not authenticated
        _s("STARTTLS", NOAUTH, _none, CmdFlag.NO_PIPELINE, "RFC 3501 6.2.1"),
        _s("AUTHENTICATE", NOAUTH, _authenticate, CmdFlag.CONTINUES, "RFC 3501 6.2.2, RFC 4959"),
        _s("LOGIN", NOAUTH, _login, rfc="RFC 3501 6.2.3"),
        # 6.3: authenticated
        _s("SELECT", AUTH, _mailbox, rfc="RFC 3501 6.3.1"),
        _s("EXAMINE", AUTH, _mailbox, rfc="RFC 3501 6.3.2"),
        _s("CREATE", AUTH, _mailbox, rfc="RFC 3501 6.3.3"),
        _s("DELETE", AUTH, _mailbox, rfc="RFC 3501 6.3.4"),
        _s("RENAME", AUTH, _rename, rfc="RFC 3501 6.3.5"),
        _s("SUBSCRIBE", AUTH, _mailbox, rfc="RFC 3501 6.3.6"),
        _s("UNSUBSCRIBE", AUTH, _mailbox, rfc="RFC 3501 6.3.7"),
        _s("LIST", AUTH, _list, rfc="RFC 3501 6.3.8"),
        _s("LSUB", AUTH, _list, rfc="RFC 3501 6.3.9"),
        _s("STATUS", AUTH, _status, rfc="RFC 3501 6.3.10"),
        _s("APPEND", AUTH, _append, CmdFlag.STREAMS_LITERAL, "RFC 3501 6.3.11"),
        _s("NAMESPACE", AUTH, _none, rfc="RFC 2342"),
        _s("ENABLE", AUTH, _enable, rfc="RFC 5161"),
        _s("IDLE", AUTH, _none, CmdFlag.CONTINUES, "RFC 2177"),
        _s("GETQUOTA", AUTH, _getquota, rfc="RFC 2087 4.2"),
        _s("GETQUOTAROOT", AUTH, _mailbox, rfc="RFC 2087 4.3"),
        _s("SETQUOTA", AUTH, _setquota, rfc="RFC 2087 4.1"),
        _s("SETACL", AUTH, _setacl, rfc="RFC 4314 3.1"),
        _s("DELETEACL", AUTH, _acl_ident, rfc="RFC 4314 3.2"),
        _s("GETACL", AUTH, _mailbox, rfc="RFC 4314 3.3"),
        _s("LISTRIGHTS", AUTH, _acl_ident, rfc="RFC 4314 3.4"),
        _s("MYRIGHTS", AUTH, _mailbox, rfc="RFC 4314 3.5"),
        # 6.4: selected
        _s("CHECK", SELECTED, _none, rfc="RFC 3501 6.4.1"),
        _s("CLOSE", SELECTED, _none, _B, "RFC 3501 6.4.2"),
        _s("EXPUNGE", SELECTED, _none, _B, "RFC 3501 6.4.3"),
        _s("SEARCH", SELECTED, _search, _U, "RFC 3501 6.4.4"),
        _s("FETCH", SELECTED, _fetch, _U, "RFC 3501 6.4.5"),
        _s("STORE", SELECTED, _store, _U, "RFC 3501 6.4.6"),
        _s("COPY", SELECTED, _copy, _U, "RFC 3501 6.4.7"),
        _s("SORT", SELECTED, _sort, _U, "RFC 5256 3"),
        _s("THREAD", SELECTED, _thread, _U, "RFC 5256 3"),
        # 6.4.8: UID variants (UIDs do not move under EXPUNGE)
        _s("UID SEARCH", SELECTED, _search, rfc="RFC 3501 6.4.8"),
        _s("UID FETCH", SELECTED, _fetch, rfc="RFC 3501 6.4.8"),
        _s("UID STORE", SELECTED, _store, rfc="RFC 3501 6.4.8"),
        _s("UID COPY", SELECTED, _copy, rfc="RFC 3501 6.4.8"),
        _s("UID SORT", SELECTED, _sort, rfc="RFC 5256 3"),
        _s("UID THREAD", SELECTED, _thread, rfc="RFC 5256 3"),
        _s("UID EXPUNGE", SELECTED, _uid_expunge, _B, "RFC 4315 2.1"),
    )
}


def lookup(name: str, state: State | None) -> Spec:
    """The spec for *name* (uppercased, ``UID X`` for UID commands).

    Raises :class:`UnknownCommand` or :class:`WrongState`; *state* ``None``
    skips the state check.
    """
    spec = COMMANDS.get(name)
    if spec is None:
        raise UnknownCommand()
    if state is not None and state not in spec.states:
        raise WrongState()
    return spec


def read_name(cur: Cursor) -> str:
    """The command name after the tag: one atom, or ``UID`` and a second atom."""
    cur.sp()
    word = cur.raw_atom("command")
    if not is_atom(word):
        raise UnknownCommand()
    name = word.upper().decode("ascii")
    if name == "UID":
        if not cur.maybe_sp():
            raise UnknownCommand()
        sub = cur.raw_atom("command")
        if not is_atom(sub):
            raise UnknownCommand()
        name = "UID " + sub.upper().decode("ascii")
    return name


def parse_arguments(spec: Spec, cur: Cursor) -> object:
    """Parse the arguments of *spec*'s command to the end of the tokens."""
    return spec.parse(cur, spec.name.startswith("UID "))


def table_markdown() -> str:
    """The command table as a Markdown table (for the docs), drawn from the data."""
    order = (State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED)
    lines = [
        "| command | not authenticated | authenticated | selected | flags | reference |",
        "|---|---|---|---|---|---|",
    ]
    for spec in COMMANDS.values():
        marks = " | ".join("x" if st in spec.states else "" for st in order)
        flags = " ".join(f.name for f in CmdFlag if f and f in spec.flags)  # type: ignore[misc]
        lines.append(f"| {spec.name} | {marks} | {flags} | {spec.rfc} |")
    return "\n".join(lines) + "\n"
