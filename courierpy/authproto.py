"""The authdaemon wire protocol, without any I/O.

Courier's login programs ask ``authdaemond`` about accounts over a UNIX
stream socket, one request per connection, LF-terminated lines::

    request   = *meta-line command
    meta-line = NAME "=" value LF            ; e.g. TCPREMOTEIP=::1
    command   = "PRE" SP module SP service SP userid LF
              / "AUTH" SP len LF service LF authtype LF authdata
              / "PASSWD" SP service TAB userid TAB oldpw TAB newpw LF
              / "ENUMERATE" LF

    success   = ["USERNAME=" s LF] ["UID=" n LF] "GID=" n LF "HOME=" s LF
                ["ADDRESS=" s LF] ["NAME=" s LF] ["MAILDIR=" s LF]
                ["QUOTA=" s LF] ["PASSWD=" s LF] ["PASSWD2=" s LF]
                ["OPTIONS=" s LF] "." LF
    failure   = "FAIL" LF

This module holds the request encoders (client side), an incremental request
parser (server side), the reply encoders (server side) and an incremental
reply parser (client side). Values are ``str``; bytes that are not UTF-8 pass
through unchanged thanks to the ``surrogateescape`` error handler.

The limits are Courier's (its buffer is ``BUFSIZ`` = 8192 bytes): a line,
LF included, must fit in 8191 bytes, and the AUTH length must be 1..8191.
Where Courier closes the connection without a word, the parser raises
:class:`RequestError`; where Courier answers ``FAIL``, it returns a
:class:`BadRequest`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from courierpy.errors import CourierError

__all__ = [
    "AUTH_MAX",
    "LINE_MAX",
    "NEED_DATA",
    "AuthInfo",
    "AuthRequest",
    "BadRequest",
    "EnumEntry",
    "EnumerateRequest",
    "Fail",
    "PasswdRequest",
    "PreRequest",
    "ReplyError",
    "ReplyParser",
    "RequestError",
    "RequestParser",
    "decode",
    "encode",
    "encode_auth",
    "encode_authinfo",
    "encode_enum_entry",
    "encode_enum_module",
    "encode_enumerate",
    "encode_fail",
    "encode_passwd",
    "encode_passwd_reply",
    "encode_pre",
    "merge_options",
    "options_dict",
    "parse_authinfo",
    "parse_enumerate",
    "parse_cram",
    "parse_login",
]

#: Longest request line Courier accepts, LF included (BUFSIZ - 1).
LINE_MAX: Final = 8191
#: Largest AUTH body length Courier accepts (BUFSIZ - 1).
AUTH_MAX: Final = 8191


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


#: Returned by the parsers while a message is still incomplete.
NEED_DATA: Final = _NeedData()


def encode(text: str) -> bytes:
    """``str`` to wire bytes (UTF-8; lone surrogates give back the original bytes)."""
    return text.encode("utf-8", "surrogateescape")


def decode(data: bytes) -> str:
    """Wire bytes to ``str``, reversibly (see :func:`encode`)."""
    return data.decode("utf-8", "surrogateescape")


# -- errors -------------------------------------------------------------------


class RequestError(CourierError):
    """The peer sent something Courier would hang up on, without any reply."""


class ReplyError(CourierError):
    """The server's reply is malformed (the client treats it as a temporary failure)."""


# -- requests -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreRequest:
    """``PRE module service userid``: look an account up without a password."""

    module: str
    service: str
    userid: str
    meta: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """``AUTH``: check credentials of type *authtype* (``login``, ``cram-md5``, ...)."""

    service: str
    authtype: str
    authdata: str
    meta: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class PasswdRequest:
    """``PASSWD``: change a password."""

    service: str
    userid: str
    oldpw: str
    newpw: str
    meta: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class EnumerateRequest:
    """``ENUMERATE``: list every account."""

    meta: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class BadRequest:
    """A complete but unusable request, which Courier answers with ``FAIL``."""

    reason: str


Request = PreRequest | AuthRequest | PasswdRequest | EnumerateRequest


def _meta_lines(meta: Iterable[tuple[str, str]]) -> bytes:
    out = bytearray()
    for name, value in meta:
        if not name or "=" in name or " " in name or "\n" in name + value:
            raise ValueError(f"bad meta line {name!r}={value!r}")
        out += encode(f"{name}={value}\n")
    return bytes(out)


def _check_field(what: str, value: str, forbidden: str) -> None:
    for ch in forbidden:
        if ch in value:
            raise ValueError(f"{what} may not contain {ch!r}: {value!r}")


def encode_pre(
    service: str, userid: str, module: str = ".", meta: Iterable[tuple[str, str]] = ()
) -> bytes:
    """``PRE module service userid\\n`` (module ``.`` means every module)."""
    _check_field("module", module, " \n")
    _check_field("service", service, " \n")
    _check_field("userid", userid, "\n")
    return _meta_lines(meta) + encode(f"PRE {module} {service} {userid}\n")


def encode_auth(
    service: str, authtype: str, authdata: str, meta: Iterable[tuple[str, str]] = ()
) -> bytes:
    """``AUTH len\\nservice\\nauthtype\\nauthdata``, len counting all three parts."""
    _check_field("service", service, "\n")
    _check_field("authtype", authtype, "\n")
    body = encode(f"{service}\n{authtype}\n{authdata}")
    return _meta_lines(meta) + b"AUTH %d\n" % len(body) + body


def encode_passwd(
    service: str, userid: str, oldpw: str, newpw: str, meta: Iterable[tuple[str, str]] = ()
) -> bytes:
    """``PASSWD service\\tuserid\\toldpw\\tnewpw\\n``."""
    for what, value in (("service", service), ("userid", userid)):
        _check_field(what, value, "\t\n")
    return _meta_lines(meta) + encode(f"PASSWD {service}\t{userid}\t{oldpw}\t{newpw}\n")


def encode_enumerate(meta: Iterable[tuple[str, str]] = ()) -> bytes:
    return _meta_lines(meta) + b"ENUMERATE\n"


def parse_login(authdata: str) -> tuple[str, str] | None:
    """The (userid, password) of a ``login`` authdata, or None when malformed.

    The final LF after the password is optional, as it is for Courier.
    """
    userid, sep, rest = authdata.partition("\n")
    if not sep:
        return None
    password = rest.split("\n", 1)[0]
    return userid, password


def parse_cram(authdata: str) -> tuple[bytes, str, str] | None:
    """The (challenge, userid, hex digest) of a ``cram-*`` authdata, or None.

    The authdata is ``base64(challenge) LF base64(userid SP hexdigest) LF``.
    """
    parts = authdata.split("\n")
    if len(parts) < 2:
        return None
    try:
        challenge = base64.b64decode(encode(parts[0]), validate=True)
        response = decode(base64.b64decode(encode(parts[1]), validate=True))
    except (binascii.Error, ValueError):
        return None
    userid, sep, digest = response.rpartition(" ")
    if not sep or not userid or not digest:
        return None
    return challenge, userid, digest


_DIGITS = re.compile(rb"[0-9]+")


class RequestParser:
    """Feed bytes from a client; get a request, :data:`NEED_DATA` or an error.

    ``feed(data)`` may be called with any split of the stream, down to one byte
    at a time. Once a request (or :class:`BadRequest`) has been returned, the
    parser is finished: further bytes are ignored, as Courier ignores anything
    pipelined after the first request.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._scanned = 0  # how far _buf has been searched for LF
        self._meta: list[tuple[str, str]] = []
        self._auth_len: int | None = None
        self._done: Request | BadRequest | None = None

    @property
    def done(self) -> bool:
        return self._done is not None

    def feed(self, data: bytes) -> Request | BadRequest | _NeedData:
        """Add *data*; raise :class:`RequestError` when Courier would hang up."""
        if self._done is not None:
            return self._done
        self._buf += data
        while True:
            if self._auth_len is not None:
                if len(self._buf) < self._auth_len:
                    return NEED_DATA
                body = bytes(self._buf[: self._auth_len])
                self._done = self._auth(body)
                return self._done
            line = self._take_line()
            if line is None:
                return NEED_DATA
            result = self._line(line)
            if result is not None:
                self._done = result
                return result

    def _take_line(self) -> bytes | None:
        end = self._buf.find(b"\n", self._scanned)
        if end < 0:
            self._scanned = len(self._buf)
            if len(self._buf) >= LINE_MAX:
                raise RequestError("request line too long")
            return None
        if end + 1 > LINE_MAX:
            raise RequestError("request line too long")
        line = bytes(self._buf[:end])
        del self._buf[: end + 1]
        self._scanned = 0
        return line

    def _line(self, line: bytes) -> Request | BadRequest | None:
        # The first word ends at the first space or '='.
        m = re.match(rb"[^ =]*", line)
        assert m is not None
        word = m.group()
        sep = line[len(word) : len(word) + 1]
        if sep == b"=":
            self._meta.append((decode(word), decode(line[len(word) + 1 :])))
            return None
        meta = tuple(self._meta)
        if word == b"ENUMERATE":
            return EnumerateRequest(meta)
        if sep != b" ":
            raise RequestError(f"no command word in {line[:40]!r}")
        rest = line[len(word) + 1 :]
        if word == b"PRE":
            return self._pre(rest, meta)
        if word == b"AUTH":
            self._auth_len = self._auth_length(rest)
            return None
        if word == b"PASSWD":
            return self._passwd(rest, meta)
        raise RequestError(f"unknown command {word[:40]!r}")

    @staticmethod
    def _pre(rest: bytes, meta: tuple[tuple[str, str], ...]) -> PreRequest:
        words: list[bytes] = []
        for _ in range(2):
            rest = rest.lstrip(b" ")
            word, sep, rest = rest.partition(b" ")
            if not sep or not word:
                raise RequestError("PRE needs a module, a service and a userid")
            words.append(word)
        userid = rest.lstrip(b" ")
        if not userid:
            raise RequestError("PRE needs a userid")
        return PreRequest(decode(words[0]), decode(words[1]), decode(userid), meta)

    @staticmethod
    def _auth_length(rest: bytes) -> int:
        # atoi(): leading blanks skipped, trailing junk ignored ("AUTH 27x" is 27).
        m = _DIGITS.match(rest.lstrip(b" \t"))
        n = int(m.group()) if m else 0
        if n <= 0 or n > AUTH_MAX:
            raise RequestError(f"bad AUTH length {rest[:20]!r}")
        return n

    def _auth(self, body: bytes) -> AuthRequest | BadRequest:
        service, sep1, rest = body.partition(b"\n")
        authtype, sep2, authdata = rest.partition(b"\n")
        if not (sep1 and sep2):
            raise RequestError("AUTH body lacks service or authtype")
        return AuthRequest(decode(service), decode(authtype), decode(authdata), tuple(self._meta))

    @staticmethod
    def _passwd(rest: bytes, meta: tuple[tuple[str, str], ...]) -> PasswdRequest | BadRequest:
        parts = rest.split(b"\t")
        if len(parts) < 4:
            raise RequestError("PASSWD needs service, userid, old and new password")
        if any(b < 0x20 and b != 0x09 for b in rest):
            return BadRequest("control character in PASSWD")
        service, userid, oldpw = (decode(p) for p in parts[:3])
        newpw = decode(b"\t".join(parts[3:]))
        return PasswdRequest(service, userid, oldpw, newpw, meta)


# -- replies ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthInfo:
    """An account as authdaemond describes it (Courier's ``struct authinfo``)."""

    gid: int
    home: str
    uid: int | None = None
    sysusername: str | None = None
    address: str | None = None
    fullname: str | None = None
    maildir: str | None = None
    quota: str | None = None
    passwd: str | None = None
    passwd2: str | None = None
    options: str | None = None

    def options_dict(self) -> dict[str, str]:
        """The ``OPTIONS`` list as a dict (a bare ``name`` maps to ``""``)."""
        return options_dict(self.options or "")


def options_dict(options: str) -> dict[str, str]:
    """``"a=1,b"`` → ``{"a": "1", "b": ""}`` (first occurrence of a name wins)."""
    out: dict[str, str] = {}
    for item in options.split(","):
        if not item:
            continue
        name, _, value = item.partition("=")
        out.setdefault(name, value)
    return out


def merge_options(account: str | None, defaults: str | None) -> str | None:
    """Courier's mergeoptions: the account's options, then each default it lacks.

    Returns None when both are empty (then no ``OPTIONS=`` line is sent).
    """
    account = account or ""
    defaults = defaults or ""
    if not defaults:
        return account or None
    if not account:
        return defaults
    have = {item.split("=", 1)[0] for item in account.split(",") if item}
    merged = [account]
    for item in defaults.split(","):
        if not item:
            continue
        name = item.split("=", 1)[0]
        if name not in have:
            merged.append(item)
            have.add(name)
    return ",".join(merged)


# (wire key, attribute) in the order Courier writes them.
_REPLY_FIELDS: Final = (
    ("USERNAME", "sysusername"),
    ("UID", "uid"),
    ("GID", "gid"),
    ("HOME", "home"),
    ("ADDRESS", "address"),
    ("NAME", "fullname"),
    ("MAILDIR", "maildir"),
    ("QUOTA", "quota"),
    ("PASSWD", "passwd"),
    ("PASSWD2", "passwd2"),
    ("OPTIONS", "options"),
)
_KEY_TO_ATTR: Final = dict(_REPLY_FIELDS)


def encode_authinfo(info: AuthInfo) -> bytes:
    """The success reply for *info*, fields in Courier's order, ending ``.\\n``.

    ``NAME`` is the full name up to its first comma, as Courier sends it.
    """
    out = bytearray()
    for key, attr in _REPLY_FIELDS:
        value = getattr(info, attr)
        if value is None:
            continue
        text = str(value)
        if key == "NAME":
            text = text.split(",", 1)[0]  # the GECOS name, without room, phone, ...
        if "\n" in text:
            raise ValueError(f"{key} value contains a newline")
        out += encode(f"{key}={text}\n")
    out += b".\n"
    return bytes(out)


def encode_fail() -> bytes:
    return b"FAIL\n"


def encode_passwd_reply(ok: bool) -> bytes:
    return b"OK\n" if ok else b"FAIL\n"


@dataclass(frozen=True, slots=True)
class EnumEntry:
    """One ENUMERATE line: ``name uid gid home maildir options`` (TAB-separated)."""

    name: str
    uid: int
    gid: int
    home: str
    maildir: str = ""
    options: str = ""


def encode_enum_entry(entry: EnumEntry) -> bytes:
    return encode(
        f"{entry.name}\t{entry.uid}\t{entry.gid}\t{entry.home}\t{entry.maildir}\t{entry.options}\n"
    )


def encode_enum_module(module: str) -> bytes:
    """The header each module's listing starts with: ``# name\\n\\n``."""
    return encode(f"# {module}\n\n")


@dataclass(frozen=True, slots=True)
class Fail:
    """The ``FAIL`` reply: bad credentials or unknown account."""


class ReplyParser:
    """Client side: feed reply bytes, learn when the reply is complete, decode it.

    Courier's client stops reading at ``\\n.\\n`` or at exactly ``FAIL\\n``;
    ``feed`` returns True at that point. ``result()`` then gives an
    :class:`AuthInfo` or :class:`Fail`; a reply that ends early (the server
    closed: a temporary failure) or is malformed raises :class:`ReplyError`.
    """

    def __init__(self, limit: int = 1 << 20) -> None:
        self._buf = bytearray()
        self._limit = limit

    @property
    def data(self) -> bytes:
        return bytes(self._buf)

    def feed(self, data: bytes) -> bool:
        self._buf += data
        if len(self._buf) > self._limit:
            raise ReplyError("reply too long")
        return self.complete

    @property
    def complete(self) -> bool:
        return self._buf == b"FAIL\n" or self._buf.endswith(b"\n.\n")

    def result(self) -> AuthInfo | Fail:
        if self._buf == b"FAIL\n":
            return Fail()
        if not self.complete:
            raise ReplyError("incomplete reply (temporary failure)")
        return parse_authinfo(bytes(self._buf[:-2]))


def parse_authinfo(data: bytes) -> AuthInfo:
    """Decode ``KEY=value`` lines (lenient: unknown keys and lines without '=' skipped)."""
    values: dict[str, str] = {}
    for raw in data.split(b"\n"):
        key, sep, value = raw.partition(b"=")
        if not sep:
            continue
        attr = _KEY_TO_ATTR.get(decode(key))
        if attr is not None:
            values[attr] = decode(value)
    try:
        uid = int(values["uid"]) if "uid" in values else None
        gid = int(values.get("gid", "0"))
    except ValueError as exc:
        raise ReplyError(f"bad UID/GID in reply: {exc}") from None
    if "home" not in values or (uid is None and "sysusername" not in values):
        raise ReplyError("reply lacks HOME, or both UID and USERNAME")
    kwargs = {k: v for k, v in values.items() if k not in ("uid", "gid")}
    return AuthInfo(gid=gid, uid=uid, **kwargs)


_LEADING_DIGITS = re.compile(r"[0-9]+")


def parse_enumerate(data: bytes) -> Iterator[EnumEntry]:
    """Decode an ENUMERATE reply body as Courier's client library does.

    Module headers and blank lines are skipped, and so is any line without
    a home field or whose uid or gid does not start with a digit or is 0
    (probed on the real authenumerate: ``12x`` is read as 12, `` 5``, ``-1``
    and ``0`` drop the line).
    """
    for raw in data.split(b"\n"):
        if not raw or raw.startswith(b"#") or raw == b".":
            continue
        parts = decode(raw).split("\t")
        if len(parts) < 4:
            continue
        parts += [""] * (6 - len(parts))
        m_uid, m_gid = _LEADING_DIGITS.match(parts[1]), _LEADING_DIGITS.match(parts[2])
        if not (m_uid and m_gid):
            continue
        uid, gid = int(m_uid.group()), int(m_gid.group())
        if uid == 0 or gid == 0:
            continue
        yield EnumEntry(parts[0], uid, gid, parts[3], parts[4], parts[5])


def authinfo_from_mapping(values: Mapping[str, str]) -> AuthInfo:
    """Build an :class:`AuthInfo` from wire keys (``UID``, ``HOME``, ...)."""
    return parse_authinfo(b"".join(encode(f"{k}={v}\n") for k, v in values.items()))

