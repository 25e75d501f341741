"""The IMAP error family: each error renders its own response.

Raise these anywhere below the session; the session catches
:class:`ImapError` in one place and sends ``err.response(tag)``
(design.md section 4, style.md example 8):

* a client syntax error or a command not valid in the current state →
  tagged ``BAD`` (:class:`BadSyntax`, :class:`WrongState`, :class:`UnknownCommand`);
* a refusal → tagged ``NO [CODE]`` (:class:`Refused` and its subclasses);
* a fatal condition → ``* BYE`` and the connection closes (:class:`Fatal`).

Exception text never reaches the client unless it was written for the client:
the ``text`` of these errors is that client-facing text.
"""

from __future__ import annotations

from courierpy.errors import CourierError
from courierpy.imap.responses import RespCode, ResponseCode, Tagged, UntaggedStatus

__all__ = [
    "AlreadyExists",
    "AuthenticationFailed",
    "BadCharset",
    "BadSyntax",
    "Cannot",
    "ERROR_IN_COMMAND",
    "Fatal",
    "ImapError",
    "MessageTooBig",
    "Nonexistent",
    "NoPerm",
    "OverQuota",
    "Refused",
    "TooBig",
    "TooManyViolations",
    "TryCreate",
    "Unavailable",
    "UnknownCommand",
    "ViolationCounter",
    "WrongState",
]

#: Courier's answer to anything it cannot parse or does not allow
#: (observed: unknown commands, pre-auth SELECT, bad sequence sets, bad FETCH).
ERROR_IN_COMMAND = "Error in IMAP command received by server."


class ImapError(CourierError):
    """Base: an error with a client-facing text and a response status."""

    status = "NO"
    code: RespCode | None = None
    default_text = ERROR_IN_COMMAND
    #: True when the connection must close after the response.
    fatal = False

    #: what went wrong, for the log (never sent unless it is also the text)
    detail: str

    def __init__(self, text: str | None = None, code_data: tuple[object, ...] = ()) -> None:
        self.text = text if text is not None else self.default_text
        self.code_data = code_data
        self.detail = self.text
        super().__init__(self.text)

    def __eq__(self, other: object) -> bool:
        # errors are values: events carrying them compare equal in tests
        if type(other) is not type(self):
            return NotImplemented
        mine = (self.text, self.code_data, self.detail)
        return mine == (other.text, other.code_data, other.detail)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), self.text))

    def __repr__(self) -> str:
        if self.detail != self.text:
            return f"{type(self).__name__}({self.detail!r})"
        return f"{type(self).__name__}({self.text!r})"

    def response_code(self) -> ResponseCode | None:
        return ResponseCode(self.code, self.code_data) if self.code is not None else None

    def response(self, tag: str | None) -> Tagged | UntaggedStatus:
        """The response to send; untagged when the tag is unknown."""
        if tag is None:
            return UntaggedStatus(self.status, self.text, self.response_code())
        return Tagged(tag, self.status, self.text, self.response_code())


class BadSyntax(ImapError):
    """The client sent something that does not follow the grammar (``BAD``).

    The client sees Courier's one text for all of these,
    ``Error in IMAP command received by server.``; the argument says what
    exactly was wrong and goes to :attr:`detail` for the log.
    """

    status = "BAD"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__()
        if detail is not None:
            self.detail = detail


class UnknownCommand(BadSyntax):
    """No such command (or one this server does not implement)."""


class WrongState(BadSyntax):
    """A known command sent in a state that does not allow it."""


class TooBig(BadSyntax):
    """A literal, line or argument count over the configured limits
    (``BAD [TOOBIG] text``; the text is sent, Courier has no equivalent)."""

    code = RespCode.TOOBIG
    default_text = "Literal too big."

    def __init__(self, text: str | None = None) -> None:
        ImapError.__init__(self, text)


class Refused(ImapError):
    """The command is well formed but the server will not do it (``NO``)."""

    status = "NO"


class MessageTooBig(Refused):
    """An APPEND message over the size limit (``NO [TOOBIG]``, RFC 7889)."""

    code = RespCode.TOOBIG
    default_text = "Message too big."


class BadCharset(Refused):
    """SEARCH CHARSET names a charset we do not support."""

    code = RespCode.BADCHARSET
    default_text = "Unknown search charset."

    def __init__(self, text: str | None = None, supported: tuple[str, ...] = ("UTF-8", "US-ASCII")):
        from courierpy.imap.responses import Atom

        super().__init__(text, (tuple(Atom(s) for s in supported),))


class TryCreate(Refused):
    code = RespCode.TRYCREATE
    default_text = "Mailbox does not exist."


class Nonexistent(Refused):
    code = RespCode.NONEXISTENT
    default_text = "Mailbox does not exist, or must be subscribed to."


class AlreadyExists(Refused):
    code = RespCode.ALREADYEXISTS
    default_text = "Cannot create this folder."


class OverQuota(Refused):
    code = RespCode.OVERQUOTA
    default_text = "You exceeded your mail quota."


class NoPerm(Refused):
    code = RespCode.NOPERM
    default_text = "Permission denied."


class AuthenticationFailed(Refused):
    code = RespCode.AUTHENTICATIONFAILED
    default_text = "Login failed."


class Cannot(Refused):
    code = RespCode.CANNOT
    default_text = "Cannot do that."


class Unavailable(Refused):
    code = RespCode.UNAVAILABLE
    default_text = "Temporary problem, please try again later."


class Fatal(ImapError):
    """The session cannot go on: ``* BYE text`` and close."""

    status = "BYE"
    fatal = True
    default_text = "Fatal error."

    def response(self, tag: str | None) -> UntaggedStatus:  # noqa: ARG002 - BYE is never tagged
        return UntaggedStatus("BYE", self.text, self.response_code())


class TooManyViolations(Fatal):
    """Courier's answer to the 10th command in a row that it refused as malformed."""

    code = RespCode.ALERT
    # sic: Courier ends the text with a colon and a space
    default_text = "Fatal error: TOO MANY CONSECUTIVE PROTOCOL VIOLATIONS: "


class ViolationCounter:
    """Counts commands refused in a row with Courier's ``Error in IMAP command``.

    Courier (imaplogin and imapd alike) answers the tenth such command in a row
    with ``* BYE [ALERT] Fatal error: TOO MANY CONSECUTIVE PROTOCOL VIOLATIONS: ``
    and closes; any other answer — OK, or a NO with another text — starts the
    count again.  The session calls :meth:`check` with each command's error
    (``None`` when it did not fail) and sends what it returns instead.
    """

    __slots__ = ("count", "limit")

    def __init__(self, limit: int = 9) -> None:
        self.limit = limit
        self.count = 0

    def check(self, error: ImapError | None) -> ImapError | None:
        if error is None or error.text != ERROR_IN_COMMAND:
            self.count = 0
            return error
        self.count += 1
        if self.count > self.limit:
            return TooManyViolations()
        return error
