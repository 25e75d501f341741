"""The IMAP session core: bytes in, response bytes out, no socket I/O.

The server loop (``server.py``) feeds what the client sent to
:meth:`Session.receive` and writes what :meth:`Session.take_output` returns
(bytes, or iterators of bytes for streamed literals).  Reading commands is the
grammar's job (``grammar.CommandReader``); the session answers its events:
continuation requests, APPEND data (written straight to a file in the target
folder's ``tmp/``), commands (dispatched by name to the handlers in
``courierpy.imap.commands``), SASL and IDLE continuation lines.

The session does the file work of the commands itself (Maildir operations are
what IMAP is about); what it never does is read or write the connection, so
tests drive it with plain byte strings.

Settings come from the environment Courier's start-up scripts build from
``/etc/courier/imapd`` (keys missing from the environment are taken from the
config file, then from Courier's defaults).
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from courierpy.authclient import AuthClient, AuthFailed, AuthTempFail
from courierpy.errors import CourierError
from courierpy.imap import texts
from courierpy.imap.errors import ERROR_IN_COMMAND, ImapError, Refused, ViolationCounter
from courierpy.imap.grammar import (
    NEED_DATA,
    BadCommand,
    Command,
    CommandReader,
    ConnectionClosed,
    ContinuationLine,
    LiteralChunk,
    NeedContinuation,
)
from courierpy.imap.responses import Bye, Continuation, Tagged, Untagged, UntaggedStatus
from courierpy.imap.state import State

__all__ = ["Account", "Session", "Settings"]

#: the BYE text of an unexpected failure (the details go to the log only)
INTERNAL_ERROR = "Unexpected error, closing the connection."

#: Courier's built-in value when IMAP_CAPABILITY is set nowhere (the shipped
#: /etc/courier/imapd sets the long list)
DEFAULT_CAPABILITY = "IMAP4rev1"


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    try:
        return int(value.strip()) != 0
    except ValueError:
        return default


def _int(value: str | None, default: int) -> int:
    try:
        return int(value.strip()) if value and value.strip() else default
    except ValueError:
        return default


@dataclass(frozen=True)
class Settings:
    """The imapd keys a session uses (see man imapd(8) and /etc/courier/imapd)."""

    capability: str = DEFAULT_CAPABILITY
    capability_tls: str = DEFAULT_CAPABILITY
    tls: bool = False
    starttls: bool = False
    tls_required: bool = False
    keywords: bool = False
    acl: bool = False
    idle_timeout: int = 60
    umask: str = "022"
    sanity_check: bool = True
    trash: str = "Trash"
    emptytrash: str = ""
    move_expunge_to_trash: bool = False
    outbox: str = ""
    maildirpath: str = "Maildir"
    id_fields: bool = False
    #: seconds a failed login waits before its NO (Courier: 5)
    login_fail_delay: float = 5.0
    #: seconds without a command before the autologout BYE (RFC 3501: at least 30 min)
    autologout: float = 1800.0
    #: largest APPEND message accepted
    max_append: int = 1 << 30
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str], config: Mapping[str, str] | None = None) -> Settings:
        """Settings from *env*, falling back to *config* (the imapd file's keys)."""
        merged: dict[str, str] = dict(config or {})
        merged.update(env)
        g = merged.get
        cap = g("IMAP_CAPABILITY") or DEFAULT_CAPABILITY
        cap_tls = g("IMAP_CAPABILITY_TLS") or cap
        starttls = (g("IMAP_STARTTLS") or "").upper().startswith("Y")
        return cls(
            capability=cap,
            capability_tls=cap_tls,
            tls=_flag(g("IMAP_TLS"), False),
            starttls=starttls,
            tls_required=_flag(g("IMAP_TLS_REQUIRED"), False),
            # unset means off, as in Courier's imapd (the shipped config turns both on)
            keywords=_flag(g("IMAP_KEYWORDS"), False),
            acl=_flag(g("IMAP_ACL"), False),
            idle_timeout=max(1, _int(g("IMAP_IDLE_TIMEOUT"), 60)),
            umask=g("IMAP_UMASK") or "022",
            sanity_check=_flag(g("IMAP_MAILBOX_SANITY_CHECK"), True),
            trash=g("IMAP_TRASHFOLDERNAME") or "Trash",
            emptytrash=g("IMAP_EMPTYTRASH") or "",
            move_expunge_to_trash=_flag(g("IMAP_MOVE_EXPUNGE_TO_TRASH"), False),
            outbox=g("OUTBOX") or "",
            maildirpath=g("MAILDIRPATH") or "Maildir",
            id_fields=bool(g("IMAP_ID_FIELDS")),
            login_fail_delay=float(g("COURIERPY_LOGIN_FAIL_DELAY") or 5.0),
            autologout=float(g("COURIERPY_AUTOLOGOUT") or 1800.0),
            extra=merged,
        )

    def capabilities(self, *, logged_in: bool = False) -> str:
        """The CAPABILITY list, built as Courier builds it.

        STARTTLS (and LOGINDISABLED) are offered only before a login, as by
        Courier's imapd: STARTTLS is a not-authenticated-state command.
        """
        words = [self.capability_tls if self.tls else self.capability]
        if self.acl:
            words.append("ACL ACL2=UNION")
        if self.starttls and not self.tls and not logged_in:
            words.append("STARTTLS")
            if self.tls_required:
                words.append("LOGINDISABLED")
        if self.outbox:
            words.append("XCOURIEROUTBOX=INBOX" + self.outbox)
        if self.move_expunge_to_trash:
            words.append("XMAGICTRASH")
        words.append("ENABLE UTF8=ACCEPT")
        return " ".join(w for w in words if w)


@dataclass
class Account:
    """Who is logged in and where the mail is."""

    name: str
    maildir: Path
    home: Path | None = None
    uid: int | None = None
    gid: int | None = None
    options: dict[str, str] = field(default_factory=dict)


class _Output:
    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[bytes | Iterator[bytes]] = []


class Session:
    """One IMAP connection's protocol state.

    *account* given: the session is already authenticated (Courier's
    imaplogin → imapd hand-off); *login_tag* then names the LOGIN command
    to complete.  Otherwise *auth* (an :class:`AuthClient`) checks LOGIN and
    AUTHENTICATE.  *become* is called with the account record after a
    successful login (privilege drop, chdir); *sleep* waits out the failed
    login delay.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        account: Account | None = None,
        login_tag: str | None = None,
        auth: AuthClient | None = None,
        become: Callable[[object], Account] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        log: Callable[..., None] | None = None,
    ) -> None:
        self.settings = settings
        self.account: Account | None = None
        self.auth = auth
        self.become = become
        self.sleep = sleep
        self.log = log or (lambda *_args: None)
        self.reader = CommandReader(max_append=settings.max_append)
        self.out = _Output()
        self.closed = False
        self.utf8 = False
        self.logged_out = False
        #: set by STARTTLS: the server loop starts TLS with this context after the OK
        self.start_tls = None
        #: the TLS context STARTTLS may use (None: STARTTLS refused)
        self.tls_context = None
        self.violations = ViolationCounter()
        #: the selected mailbox (courierpy.imap.mailbox.SelectedMailbox) or None
        self.selected = None
        #: a handler for the next ContinuationLine (SASL, IDLE)
        self.pending: Callable[[bytes], None] | None = None
        self.pending_tag: str | None = None
        self.idling = False
        #: the APPEND in progress (commands.messages.AppendUpload)
        self.upload = None
        #: imapd's per-process counter for the _<n> part of new file names
        self.uniq = 0
        #: folder path → basenames this process moved from new/ (\\Recent here only)
        self.recent: dict[str, set[str]] = {}
        #: the mailbox selected before the current one (a SELECT of it again may take
        #: over its view, see SelectedMailbox.open)
        self.earlier = None
        self._pre_account = account
        self._login_tag = login_tag

    # -- output -----------------------------------------------------------------

    def send(self, response: object) -> None:
        """Queue a response (anything with to_bytes/iter_bytes, or raw bytes)."""
        if isinstance(response, bytes):
            self.out.items.append(response)
        elif isinstance(response, Untagged):
            self.out.items.append(response.iter_bytes())
        else:
            self.out.items.append(response.to_bytes())  # type: ignore[attr-defined]

    def untagged(self, *items: object) -> None:
        self.send(Untagged(tuple(items), utf8=self.utf8))

    def take_output(self) -> list[bytes | Iterator[bytes]]:
        items, self.out.items = self.out.items, []
        return items

    def close(self, bye: str | None = None) -> None:
        if bye is not None:
            self.send(Bye(bye))
        self.closed = True

    # -- start ------------------------------------------------------------------

    def start(self) -> None:
        """Send the greeting, or finish a login handed over by a login stage."""
        if self._pre_account is None:
            self.send(UntaggedStatus("OK", texts.GREETING, _capability_code(self)))
            return
        self._logged_in(self._pre_account, self._login_tag, preauth=True)

    def _logged_in(self, account: Account, tag: str | None, *, preauth: bool = False) -> None:
        from courierpy.imap.commands import auth as auth_cmds

        try:
            auth_cmds.open_account(self, account)
        except ImapError as e:
            if e.fatal:
                self.send(e.response(None))
                self.closed = True
                return
            raise
        self.account = account
        self.reader.state = State.AUTHENTICATED
        if tag is not None:
            self.send(Tagged(tag, "OK", texts.LOGIN_OK))
        else:
            self.send(UntaggedStatus("PREAUTH", texts.PREAUTH))
        if "disableimap" in account.options and account.options["disableimap"] not in ("0",):
            self.close(texts.ACCESS_DISABLED)

    # -- input ------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        """Feed bytes from the client (``b""`` at end of file) and answer them."""
        self.reader.receive_data(data)
        self._pump()

    def _pump(self) -> None:
        while not self.closed:
            ev = self.reader.next_event()
            if ev is NEED_DATA:
                return
            if isinstance(ev, Command):
                self._command(ev)
            elif isinstance(ev, LiteralChunk):
                if self.upload is not None:
                    self.upload.write(ev.data)
            elif isinstance(ev, NeedContinuation):
                self._continuation(ev)
            elif isinstance(ev, ContinuationLine):
                handler, self.pending = self.pending, None
                if handler is not None:
                    self._guard(self.pending_tag, lambda h=handler, d=ev.data: h(d))
            elif isinstance(ev, BadCommand):
                err = self.violations.check(ev.error)
                if self.upload is not None:
                    self.upload.abort()
                    self.upload = None
                assert err is not None
                self.send(err.response(ev.tag))
                if err.fatal or self.reader.closed:
                    self.closed = True
            elif isinstance(ev, ConnectionClosed):
                self.closed = True
                return

    def _continuation(self, ev: NeedContinuation) -> None:
        if ev.append is None:
            self.reader.accept_literal()
            if ev.synchronizing:
                self.send(Continuation())
            return
        from courierpy.imap.commands import messages

        try:
            self.upload = messages.begin_append(self, ev)
        except ImapError as e:
            self.reader.reject_literal()
            self.violations.check(e)
            self.send(e.response(ev.tag))
            return
        self.reader.accept_literal()
        if ev.synchronizing:
            self.send(Continuation())

    def _guard(self, tag: str | None, fn: Callable[[], object]) -> None:
        """Run a handler; map its errors to responses in one place."""
        try:
            fn()
            self.violations.check(None)
        except ImapError as e:
            err = self.violations.check(e)
            assert err is not None
            self.send(err.response(tag))
            if err.fatal:
                self.closed = True
        except AuthTempFail:
            self.close(texts.TEMPORARY_PROBLEM)
        except Exception:  # noqa: BLE001 - design.md §4: BYE, traceback to the log, exit
            import traceback

            self.log("ERR: " + traceback.format_exc().replace("\n", " | "))
            self.close(INTERNAL_ERROR)

    def _command(self, cmd: Command) -> None:
        from courierpy.imap.commands import HANDLERS

        handler = HANDLERS.get(cmd.name)
        if handler is None:
            self._guard(cmd.tag, _unknown)
            return
        self._guard(cmd.tag, lambda: handler(self, cmd))

    # -- helpers for handlers ---------------------------------------------------

    def ok(self, tag: str, text: str, code: object = None) -> None:
        self.send(Tagged(tag, "OK", text, code))  # type: ignore[arg-type]

    def expect_line(self, tag: str, handler: Callable[[bytes], None]) -> None:
        self.reader.expect_line()
        self.pending = handler
        self.pending_tag = tag

    def failed_login(self, tag: str) -> None:
        self.sleep(self.settings.login_fail_delay)
        self.send(Tagged(tag, "NO", texts.LOGIN_FAILED))

    def password_login(self, tag: str, userid: str, password: str) -> None:
        assert self.auth is not None
        try:
            info = self.auth.login("imap", userid, password)
        except AuthFailed:
            self.log(f"LOGIN FAILED, user={userid}")
            self.failed_login(tag)
            return
        self.authenticated(tag, userid, info)

    def authenticated(self, tag: str, userid: str, info: object) -> None:
        assert self.become is not None
        try:
            account = self.become(info)
        except CourierError as e:
            self.log(f"LOGIN FAILED, user={userid}: {e}")
            self.close(texts.TEMPORARY_PROBLEM)
            return
        if not account.name:
            account.name = userid
        self.log(f"LOGIN, user={account.name}")
        self._logged_in(account, tag)

    def tls_started(self) -> None:
        """TLS is up: IMAP_TLS=1 from now on, no pipelined plaintext kept (RFC 3501 6.2.1)."""
        from dataclasses import replace

        self.settings = replace(self.settings, tls=True, starttls=False, tls_required=False)
        state = self.reader.state
        self.reader = CommandReader(max_append=self.settings.max_append)
        self.reader.state = state

    def cram_challenge(self) -> str:
        host = socket.gethostname()
        return f"<{secrets.token_hex(16).upper()}@{host}>"

    def idle_poll(self) -> None:
        """Called by the server loop every IMAP_IDLE_TIMEOUT seconds during IDLE."""
        if self.idling and self.selected is not None:
            self._guard(self.pending_tag, lambda: self.selected.report(self, expunge=True))


def _unknown() -> None:
    raise Refused(ERROR_IN_COMMAND)


class _CapabilityCode:
    """``[CAPABILITY ...]`` in the greeting (a response code with free text)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def to_bytes(self) -> bytes:
        return b"[CAPABILITY " + self.text.encode("ascii") + b"]"


def _capability_code(session: Session) -> _CapabilityCode:
    return _CapabilityCode(session.settings.capabilities())
