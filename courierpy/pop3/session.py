"""The POP3 protocol core, without I/O: bytes in, actions out.

One :class:`Pop3Session` is one connection. :meth:`Pop3Session.feed` takes
whatever the client sent (several pipelined commands, half a command, ...)
and returns the actions for the I/O loop, in order: :class:`bytes` to send,
:class:`Sleep` (the delay after a failed login), :class:`StartTLS`,
:class:`Log` (LOGIN, LOGIN FAILED, LOCKED, DELETED) and :class:`Close`. Authentication and
the opening of the Maildir are injected callables, so the core never touches
a socket; the Maildir snapshot is a :class:`~courierpy.pop3.mailbox.Pop3Mailbox`.

States (RFC 1939) and the commands each accepts::

    AUTHORIZATION  CAPA USER PASS AUTH STLS UTF8 QUIT   (Courier's courierpop3login)
    TRANSACTION    CAPA STAT LIST RETR DELE NOOP RSET QUIT TOP UIDL UTF8  (courierpop3d)
    UPDATE         entered by QUIT in TRANSACTION: deletions, then "+OK Bye-bye."

Every reply text is Courier's (captured from courier-pop 1.0.16); anything a
state does not accept, APOP included (Courier has no APOP), gets
``-ERR Invalid command.``.
"""

from __future__ import annotations

import base64
import binascii
import enum
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from courierpy.authclient import AuthFailed, AuthTempFail
from courierpy.authproto import AuthInfo, options_dict
from courierpy.errors import CourierError
from courierpy.pop3.mailbox import MailboxError, Pop3Mailbox

__all__ = [
    "Action",
    "Close",
    "Log",
    "Pop3Session",
    "Pop3Settings",
    "Sleep",
    "StartTLS",
    "State",
]

#: Longest command line accepted (RFC 2449 allows 255 octets; SASL replies are longer).
MAX_LINE = 8192
#: Courier sleeps this long before answering a failed login.
DEFAULT_FAIL_DELAY = 5.0

_TOO_LONG = b"\0too long"
GONE = b"-ERR Can't open the message file - it's gone!\r\n"
AUTH_FAILED = b"-ERR Authentication failed.\r\n"
INVALID = b"-ERR Invalid command.\r\n"
BAD_NUMBER = b"-ERR Invalid message number.\r\n"


class State(enum.Enum):
    AUTHORIZATION = "AUTHORIZATION"
    TRANSACTION = "TRANSACTION"
    UPDATE = "UPDATE"
    CLOSED = "CLOSED"


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class StartTLS:
    """Flush, then run the TLS handshake on the connection; call :meth:`tls_started`."""


@dataclass(frozen=True, slots=True)
class Close:
    """Flush and end the connection."""


@dataclass(frozen=True, slots=True)
class Log:
    """``event`` is ``LOGIN`` or ``LOGIN FAILED``; the loop adds ip and port.

    A failed SASL exchange names its *method* (Courier logs ``method=X``
    instead of ``user=...`` then).
    """

    event: str
    user: str
    method: str | None = None
    #: For ``DELETED`` (POP3_LOG_DELETIONS): the file removed, relative to the Maildir.
    filename: str | None = None


Action = bytes | Sleep | StartTLS | Close | Log

Authenticator = Callable[[str, str], AuthInfo]
"""(authtype, authdata) → account, as authdaemond's AUTH request; raises AuthFailed/AuthTempFail."""
MailboxOpener = Callable[[AuthInfo], Pop3Mailbox]


@dataclass
class Pop3Settings:
    """What the pop3d / pop3d-ssl keys decide for one session."""

    #: POP3AUTH: SASL mechanisms offered without TLS.
    sasl: tuple[str, ...] = ()
    #: POP3AUTH_TLS: SASL mechanisms offered once TLS is active (falls back to ``sasl``).
    sasl_tls: tuple[str, ...] = ()
    #: STLS can be offered (POP3_STARTTLS=YES and a certificate).
    starttls: bool = False
    #: The connection is already encrypted (POP3_TLS=1, or after STLS).
    tls: bool = False
    #: POP3_TLS_REQUIRED=1: no login before TLS.
    tls_required: bool = False
    fail_delay: float = DEFAULT_FAIL_DELAY
    #: MIME_UNICODE_MESSAGE_TYPE when it applies (the login stage told the session about
    #: UTF8): a client that did not say UTF8 gets messages with 8-bit headers wrapped.
    unicode_wrap: str | None = None
    #: The client enabled UTF8 before the hand-over (Courier's UTF8=1).
    utf8: bool = False
    #: POP3_LOG_DELETIONS: log each file QUIT removes.
    log_deletions: bool = False
    hostname: str = field(default_factory=socket.gethostname)

    @staticmethod
    def words(value: str | None) -> tuple[str, ...]:
        return tuple((value or "").upper().split())


def _atoi(text: str) -> int:
    """C's atoi: optional blanks and sign, then digits; 0 when there are none."""
    s = text.lstrip()
    sign = 1
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    n = 0
    for ch in s:
        if not ch.isdigit() or not ch.isascii():
            break
        n = n * 10 + ord(ch) - 48
    return sign * n


def access_refusal(options: str | None, *, tls: bool) -> bytes | None:
    """Courier's -ERR line when the account options forbid this POP3 login, else None."""
    opts = options_dict(options or "")

    def on(name: str) -> bool:
        return name in opts and (opts[name] == "" or _atoi(opts[name]) != 0)

    if on("disablepop3"):
        return b"-ERR POP3 access disabled for this account.\r\n"
    if on("disableinsecurepop3") and not tls:
        return b"-ERR POP3 access disabled via insecure connection.\r\n"
    return None


def encode_message(data: bytes) -> bytes:
    """A message body on the wire: LF → CRLF, dot-stuffed, CRLF-terminated, no final dot."""
    if not data:
        return b""
    out = data.replace(b"\n.", b"\n..")
    if out.startswith(b"."):
        out = b"." + out
    out = out.replace(b"\n", b"\r\n")
    if not out.endswith(b"\n"):
        out += b"\r\n"
    return out


_WRAP_TEXT = (
    "This E-mail message was determined to be Unicode-formatted\n"
    "but your E-mail reader does not support Unicode E-mail.\n\n"
    "Please use an E-mail reader that supports POP3 with UTF-8\n"
    "(see https://tools.ietf.org/html/rfc6856.html).\n\n"
    "This can also happen when the sender's E-mail program does not\n"
    "correctly format the sent message.\n\n"
    "The original message is included as a separate attachment\n"
    "so that it can be downloaded manually.\n"
)


def unicode_wrapper(data: bytes, content_type: str, boundary: str) -> tuple[bytes, int]:
    """Courier's wrapping of a UTF-8 message for a client without UTF8.

    Returns the wrapped message (LF form) and the length of what was added
    around the original (Courier announces that plus the original's CRLF size).
    """
    head = (
        "From: Mail Delivery Subsystem <postmaster>\n"
        "Subject: Cannot display Unicode content\n"
        "Mime-Version: 1.0\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\n\n\n\n'
        f"--{boundary}\nContent-Type: text/plain\n\n{_WRAP_TEXT}\n"
        f"--{boundary}\nContent-Type: {content_type}\n\n"
    ).encode()
    tail = f"\n--{boundary}--\n".encode()
    if data and not data.endswith(b"\n"):
        data += b"\n"
    return head + data + tail, len(head) + len(tail)


def top_part(data: bytes, lines: int) -> bytes:
    """The header block, the blank line and the first *lines* body lines (all if < 0)."""
    idx = data.find(b"\n\n")  # as Courier: a leading empty line does not end the header
    if idx < 0:
        return data  # no blank line: all of it is header
    cut = idx + 1
    head, body = data[: cut + 1], data[cut + 1 :]
    if lines < 0:
        return head + body
    pos = 0
    for _ in range(lines):
        nl = body.find(b"\n", pos)
        if nl < 0:
            pos = len(body)
            break
        pos = nl + 1
    return head + body[:pos]


class Pop3Session:
    """One POP3 connection's protocol state (see the module docstring)."""

    def __init__(
        self,
        settings: Pop3Settings,
        *,
        authenticate: Authenticator | None = None,
        open_mailbox: MailboxOpener | None = None,
        mailbox: Pop3Mailbox | None = None,
        user: str = "",
    ) -> None:
        self.settings = settings
        self._authenticate = authenticate
        self._open_mailbox = open_mailbox
        self._data = bytearray()
        self.state = State.TRANSACTION if mailbox is not None else State.AUTHORIZATION
        self.mailbox = mailbox
        self.user = user
        self.account: AuthInfo | None = None
        self.deleted: set[int] = set()
        self.utf8 = settings.utf8
        self._pending_user: str | None = None
        self._sasl: _Sasl | None = None
        self._skip_rest = False
        #: Statistics for Courier's LOGOUT line.
        self.rcvd = 0
        self.sent = 0
        self.top_bytes = 0
        self.retr_bytes = 0
        self.started = time.monotonic()
        self.stls = False

    # -- the I/O loop's interface ----------------------------------------------

    def greeting(self) -> list[Action]:
        if self.state is State.TRANSACTION:
            return self._out(b"+OK logged in.\r\n")
        return self._out(b"+OK Hello there.\r\n")

    def feed(self, data: bytes) -> list[Action]:
        """Process every complete line in *data* (plus earlier leftovers)."""
        return [action for step in self.steps(data) for action in step]

    def steps(self, data: bytes) -> Iterator[list[Action]]:
        """:meth:`feed`, one command at a time: each item holds one command's actions.

        The I/O loop can send what is ready while later pipelined commands are
        still to be answered. Consume it to the end before feeding again.
        """
        self.rcvd += len(data)
        self._data += data
        while self.state is not State.CLOSED:
            raw = self._next_line()
            if raw is None:
                break
            if raw is _TOO_LONG:
                yield self._out(INVALID)
                continue
            line = raw.rstrip(b"\n").rstrip(b"\r")
            step = self._line(line)
            yield step
            if any(isinstance(a, StartTLS) for a in step):
                # RFC 2595: nothing sent before the handshake may be acted on
                self._data.clear()
                break

    def _next_line(self) -> bytes | None:
        """The next complete line, _TOO_LONG for an over-long one (answered once), or None."""
        idx = self._data.find(b"\n")
        if idx < 0:
            if len(self._data) > MAX_LINE:
                self._data.clear()
                if not self._skip_rest:
                    self._skip_rest = True
                    return _TOO_LONG
            return None
        line = bytes(self._data[: idx + 1])
        del self._data[: idx + 1]
        if self._skip_rest:
            self._skip_rest = False
            return self._next_line()
        if len(line) > MAX_LINE:
            return _TOO_LONG
        return line

    def tls_started(self) -> None:
        self.settings.tls = True
        self.settings.starttls = False
        self.stls = True

    def deletions_pending(self) -> bool:
        return bool(self.deleted)

    @property
    def finished(self) -> bool:
        return self.state is State.CLOSED

    # -- dispatch ---------------------------------------------------------------

    def _out(self, data: bytes) -> list[Action]:
        self.sent += len(data)
        return [data]

    def _line(self, line: bytes) -> list[Action]:
        text = line.decode("utf-8", "surrogateescape")
        if self._sasl is not None:
            return self._sasl_step(text)
        words = text.split()
        if not words:
            return self._out(INVALID)
        cmd = words[0].upper()
        args = words[1:]
        if self.state is State.AUTHORIZATION:
            handler = _AUTH_COMMANDS.get(cmd)
            if handler is None:
                return self._out(INVALID)
            return handler(self, text, args)
        handler = _TRANS_COMMANDS.get(cmd)
        if handler is None:
            return self._out(INVALID)
        return handler(self, args)

    # -- AUTHORIZATION -----------------------------------------------------------

    def _sasl_list(self) -> tuple[str, ...]:
        if self.settings.tls and self.settings.sasl_tls:
            return self.settings.sasl_tls
        return self.settings.sasl

    def _capa(self, *_: object) -> list[Action]:
        # the same list before and after login, as Courier's (its pop3d sees the same keys)
        lines = [b"+OK Here's what I can do:\r\n"]
        sasl = self._sasl_list()
        if sasl:
            lines.append(b"SASL " + " ".join(sasl).encode() + b"\r\n")
        if self.settings.starttls and not self.settings.tls:
            lines.append(b"STLS\r\n")
        lines += [b"TOP\r\n", b"USER\r\n", b"LOGIN-DELAY 10\r\n", b"PIPELINING\r\n",
                  b"UIDL\r\n", b"UTF8 USER\r\n", b"IMPLEMENTATION Courier Mail Server\r\n",
                  b".\r\n"]
        return self._out(b"".join(lines))

    def _user(self, text: str, args: list[str]) -> list[Action]:
        if not args:
            return self._out(INVALID)
        if self.settings.tls_required and not self.settings.tls:
            return self._out(b"-ERR TLS required to log in.\r\n")
        self._pending_user = text.split(None, 1)[1].strip()
        return self._out(b"+OK Password required.\r\n")

    def _pass(self, text: str, args: list[str]) -> list[Action]:
        if self._pending_user is None:
            return self._out(b"-ERR USER/PASS required.\r\n")
        user = self._pending_user
        self._pending_user = None
        password = text[5:] if len(text) > 5 else ""
        return self._login(user, "login", f"{user}\n{password}\n")

    def _auth(self, text: str, args: list[str]) -> list[Action]:
        offered = self._sasl_list()
        if not offered:
            return self._out(INVALID)
        if self.settings.tls_required and not self.settings.tls:
            return self._out(b"-ERR TLS required to log in.\r\n")
        if not args:
            return self._out(INVALID)
        mech = args[0].upper()
        if mech not in offered or mech not in _MECHANISMS:
            return [Log("LOGIN FAILED", "", mech), *self._out(AUTH_FAILED)]
        initial = args[1] if len(args) > 1 else None
        self._sasl = _Sasl(mech)
        if mech == "PLAIN":
            if initial is not None:
                return self._sasl_step(initial)
            return self._out(b"+ \r\n")
        if mech == "LOGIN":
            if initial is not None:
                return self._sasl_step(initial)
            return self._out(b"+ " + base64.b64encode(b"Username:") + b"\r\n")
        challenge = f"<{secrets.token_hex(16).upper()}@{self.settings.hostname}>"
        self._sasl.challenge = base64.b64encode(challenge.encode()).decode()
        return self._out(b"+ " + self._sasl.challenge.encode() + b"\r\n")

    def _sasl_step(self, text: str) -> list[Action]:
        sasl = self._sasl
        assert sasl is not None
        text = text.strip()
        try:
            if text == "*":
                raise ValueError("cancelled")
            data = base64.b64decode(text, validate=True) if text != "=" else b""
        except (binascii.Error, ValueError):
            self._sasl = None
            return [Log("LOGIN FAILED", "", sasl.mech),
                    *self._out(b"-ERR Authentication aborted.\r\n")]
        if sasl.mech == "LOGIN" and sasl.user is None:
            sasl.user = data.decode("utf-8", "surrogateescape")
            return self._out(b"+ " + base64.b64encode(b"Password:") + b"\r\n")
        self._sasl = None
        if sasl.mech == "LOGIN":
            user = sasl.user or ""
            return self._login(user, "login",
                               f"{user}\n{data.decode('utf-8', 'surrogateescape')}\n",
                               failed=AUTH_FAILED)
        if sasl.mech == "PLAIN":
            parts = data.split(b"\0")
            if len(parts) != 3:
                return self._failed("", AUTH_FAILED)
            # as Courier: the authorization identity is not checked, authcid logs in
            _authzid, user_b, pw_b = parts
            user = user_b.decode("utf-8", "surrogateescape")
            return self._login(user, "login",
                               f"{user}\n{pw_b.decode('utf-8', 'surrogateescape')}\n",
                               failed=AUTH_FAILED)
        user = data.decode("utf-8", "surrogateescape").rsplit(" ", 1)[0]
        return self._login(user, sasl.mech.lower(), f"{sasl.challenge}\n{text}\n",
                           failed=AUTH_FAILED)

    def _failed(self, user: str, reply: bytes) -> list[Action]:
        return [Log("LOGIN FAILED", user), Sleep(self.settings.fail_delay), *self._out(reply)]

    def _login(self, user: str, authtype: str, authdata: str, *,
               failed: bytes = b"-ERR Login failed.\r\n") -> list[Action]:
        if self._authenticate is None or self._open_mailbox is None:
            return self._out(INVALID)
        try:
            info = self._authenticate(authtype, authdata)
        except AuthFailed:
            return self._failed(user, failed)
        except AuthTempFail:
            self.state = State.CLOSED
            return [*self._out(b"-ERR Temporary problem, please try again later\r\n"), Close()]
        refusal = access_refusal(info.options, tls=self.settings.tls)
        if refusal is not None:
            self.state = State.CLOSED
            return [*self._out(refusal), Close()]
        name = info.address or user
        try:
            self.mailbox = self._open_mailbox(info)
        except MailboxError as exc:
            self.state = State.CLOSED
            logs = [Log("LOGIN", name)] if exc.after_login else []
            if exc.event:
                logs.append(Log(exc.event, name))
            return [*logs, *self._out(exc.reply), Close()]
        except (OSError, CourierError):  # cannot become the account or reach its home
            self.state = State.CLOSED
            return [*self._out(b"-ERR Temporary problem, please try again later\r\n"), Close()]
        self.account = info
        self.user = name
        self.state = State.TRANSACTION
        self.started = time.monotonic()
        return [Log("LOGIN", self.user), *self._out(b"+OK logged in.\r\n")]

    def _stls(self, text: str, args: list[str]) -> list[Action]:
        if not self.settings.starttls or self.settings.tls:
            return self._out(b"-ERR TLS support not available.\r\n")
        return [*self._out(b"+OK Begin SSL/TLS negotiation now.\r\n"), StartTLS()]

    def _utf8_auth(self, text: str, args: list[str]) -> list[Action]:
        return self._utf8(args)

    def _quit_auth(self, text: str, args: list[str]) -> list[Action]:
        self.state = State.CLOSED
        return [*self._out(b"+OK Better luck next time.\r\n"), Close()]

    # -- TRANSACTION -------------------------------------------------------------

    @property
    def _box(self) -> Pop3Mailbox:
        assert self.mailbox is not None
        return self.mailbox

    def _number(self, args: list[str]) -> int | None:
        """The 0-based index named by args[0], or None if out of range or deleted."""
        if not args:
            return None
        n = _atoi(args[0])
        if n < 1 or n > len(self._box) or (n - 1) in self.deleted:
            return None
        return n - 1

    def _live(self) -> range | list[int]:
        """The 0-based numbers of the messages not marked deleted."""
        everything = range(len(self._box))
        if not self.deleted:
            return everything
        return [i for i in everything if i not in self.deleted]

    def _stat(self, args: list[str]) -> list[Action]:
        sizes = self._box.sizes
        if self.deleted:
            live = self._live()
            count, total = len(live), sum(sizes[i] for i in live)
        else:
            count, total = len(sizes), sum(sizes)
        return self._out(f"+OK {count} {total}\r\n".encode())

    def _list(self, args: list[str]) -> list[Action]:
        box = self._box
        if args:
            i = self._number(args)
            if i is None:
                return self._out(BAD_NUMBER)
            return self._out(f"+OK {i + 1} {box.sizes[i]}\r\n".encode())
        live = self._live()
        sizes = box.sizes if not self.deleted else [box.sizes[i] for i in live]
        lines = map("{} {}\r\n".format, [i + 1 for i in live], sizes)
        return self._out(b"".join((
            b"+OK POP3 clients that break here, they violate STD53.\r\n",
            "".join(lines).encode(), b".\r\n")))

    def _uidl(self, args: list[str]) -> list[Action]:
        box = self._box
        if args:
            i = self._number(args)
            if i is None:
                return self._out(BAD_NUMBER)
            return self._out(f"+OK {i + 1} {box.uidl(i)}\r\n".encode())
        return self._out(b"".join((b"+OK\r\n", box.uidl_lines(self._live()), b".\r\n")))

    def _read(self, i: int) -> tuple[bytes, int] | None:
        """The message as this client gets it, and the size to announce."""
        box = self._box
        try:
            data = box.read(i)
        except (MailboxError, OSError):
            return None
        if box.utf8[i] and not self.utf8 and self.settings.unicode_wrap:
            boundary = f"=_{os.getpid()}-{int(time.time())}"
            data, extra = unicode_wrapper(data, self.settings.unicode_wrap, boundary)
            return data, box.sizes[i] + extra
        return data, box.sizes[i]

    def _retr(self, args: list[str]) -> list[Action]:
        i = self._number(args)
        if i is None:
            return self._out(BAD_NUMBER)
        got = self._read(i)
        if got is None:
            return self._out(GONE)
        data, size = got
        self._box.mark_seen(i)
        body = encode_message(data)
        self.retr_bytes += len(data)
        return self._out(b"".join((b"+OK %d octets follow.\r\n" % size, body, b".\r\n")))

    def _top(self, args: list[str]) -> list[Action]:
        if len(args) < 2:
            return self._out(INVALID)
        i = self._number(args)
        if i is None:
            return self._out(BAD_NUMBER)
        got = self._read(i)
        if got is None:
            return self._out(GONE)
        part = top_part(got[0], _atoi(args[1]))
        self.top_bytes += len(part)
        return self._out(b"+OK headers follow.\r\n" + encode_message(part) + b".\r\n")

    def _dele(self, args: list[str]) -> list[Action]:
        i = self._number(args)
        if i is None:
            return self._out(BAD_NUMBER)
        self.deleted.add(i)
        return self._out(b"+OK Deleted.\r\n")

    def _rset(self, args: list[str]) -> list[Action]:
        self.deleted.clear()
        return self._out(b"+OK Resurrected.\r\n")

    def _noop(self, args: list[str]) -> list[Action]:
        return self._out(b"+OK Yup.\r\n")

    def _utf8(self, args: list[str]) -> list[Action]:
        self.utf8 = True
        return self._out(b"+OK UTF8 enabled\r\n")

    def _quit(self, args: list[str]) -> list[Action]:
        self.state = State.UPDATE
        assert self.mailbox is not None
        removed = self.mailbox.commit(sorted(self.deleted))
        self.deleted.clear()
        self.state = State.CLOSED
        logs: list[Action] = [Log("DELETED", self.user, filename="cur/" + name)
                              for name in removed] if self.settings.log_deletions else []
        return [*logs, *self._out(b"+OK Bye-bye.\r\n"), Close()]


@dataclass
class _Sasl:
    mech: str
    user: str | None = None
    challenge: str = ""


_MECHANISMS = frozenset({"PLAIN", "LOGIN", "CRAM-MD5", "CRAM-SHA1", "CRAM-SHA256"})

_AUTH_COMMANDS: dict[str, Callable[[Pop3Session, str, list[str]], list[Action]]] = {
    "CAPA": lambda s, t, a: s._capa(),
    "USER": Pop3Session._user,
    "PASS": Pop3Session._pass,
    "AUTH": Pop3Session._auth,
    "STLS": Pop3Session._stls,
    "UTF8": Pop3Session._utf8_auth,
    "QUIT": Pop3Session._quit_auth,
}

_TRANS_COMMANDS: dict[str, Callable[[Pop3Session, list[str]], list[Action]]] = {
    "CAPA": lambda s, a: s._capa(),
    "STAT": Pop3Session._stat,
    "LIST": Pop3Session._list,
    "UIDL": Pop3Session._uidl,
    "RETR": Pop3Session._retr,
    "TOP": Pop3Session._top,
    "DELE": Pop3Session._dele,
    "RSET": Pop3Session._rset,
    "NOOP": Pop3Session._noop,
    "UTF8": Pop3Session._utf8,
    "QUIT": Pop3Session._quit,
}
