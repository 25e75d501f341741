"""The blocking authdaemon client that imapd, pop3d and authtest use.

One request per connection, as Courier's ``libcourierauth`` does::

    client = AuthClient.from_config(config_dir)
    info = client.login("imap", "alice", "secret")   # AuthInfo, or raises

``AuthFailed`` means the server answered ``FAIL`` (unknown account, wrong
password); ``AuthTempFail`` means no usable answer came (cannot connect,
timeout, the server hung up early, a malformed reply) and the login should
be refused with a temporary error.

Timeouts are Courier's client defaults, overridable from the environment as
Courier's are: ``TIMEOUT_SOCK`` (connect, 10 s), ``TIMEOUT_WRITE`` (10 s) and
``TIMEOUT_READ`` (the whole reply, 30 s).
"""

from __future__ import annotations

import base64
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from courierpy import authproto
from courierpy.authproto import AuthInfo, EnumEntry, Fail
from courierpy.config import read_shell_vars
from courierpy.errors import EX_TEMPFAIL, CourierError

__all__ = [
    "AuthClient",
    "AuthConnectError",
    "AuthFailed",
    "AuthTempFail",
    "DEFAULT_AUTHDAEMONVAR",
    "Timeouts",
    "socket_path_from_config",
]

#: Courier's compiled-in socket directory.
DEFAULT_AUTHDAEMONVAR = "/run/courier/authdaemon"


class AuthFailed(CourierError):
    """The server said FAIL: bad credentials, unknown account, refused change."""


class AuthTempFail(CourierError):
    """No usable answer from authdaemond; try again later."""

    exit_code = EX_TEMPFAIL


class AuthConnectError(AuthTempFail):
    """The socket cannot be reached (no daemon, wrong path, permissions)."""

    def __init__(self, path: str, error: OSError) -> None:
        self.path = path
        self.error = error
        super().__init__(f"cannot connect to {path}: {error.strerror or error}")


@dataclass(frozen=True)
class Timeouts:
    """Seconds allowed to connect, to send the request, and to read the whole reply."""

    connect: float = 10.0
    write: float = 10.0
    read: float = 30.0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> Timeouts:
        def get(name: str, default: float) -> float:
            try:
                value = float(environ.get(name, ""))
            except ValueError:
                return default
            return value if value > 0 else default

        return cls(
            connect=get("TIMEOUT_SOCK", cls.connect),
            write=get("TIMEOUT_WRITE", cls.write),
            read=get("TIMEOUT_READ", cls.read),
        )


def socket_path_from_config(
    config_dir: Path | str, read: Callable[[Path], Mapping[str, str]] = read_shell_vars
) -> Path:
    """``<authdaemonvar>/socket``, authdaemonvar read from ``authdaemonrc`` by *read*."""
    rc = Path(config_dir) / "authdaemonrc"
    var = DEFAULT_AUTHDAEMONVAR
    if rc.exists():
        var = read(rc).get("authdaemonvar") or var
    return Path(var) / "socket"


class AuthClient:
    """Talks to authdaemond at *socket_path*; each call is one connection."""

    def __init__(
        self,
        socket_path: Path | str,
        timeouts: Timeouts | None = None,
        meta: Mapping[str, str] | None = None,
        debug_login: int | None = None,
    ) -> None:
        self.socket_path = str(socket_path)
        self.timeouts = timeouts or Timeouts.from_environ()
        #: ``NAME=value`` lines sent before every request (e.g. TCPREMOTEIP).
        self.meta = tuple((meta or {}).items())
        #: Courier's client-side DEBUG_LOGIN (from the environment unless given):
        #: 1 logs each login's user name to stderr, 2 its password as well.
        self.debug_login = debug_login if debug_login is not None else _debug_level(os.environ)

    @classmethod
    def from_config(cls, config_dir: Path | str, **kwargs: object) -> AuthClient:
        return cls(socket_path_from_config(config_dir), **kwargs)  # type: ignore[arg-type]

    # -- the four requests ----------------------------------------------------

    def pre(self, service: str, userid: str, module: str = ".") -> AuthInfo:
        """Look *userid* up without a password (Courier's ``auth_getuserinfo``)."""
        return self._authinfo(authproto.encode_pre(service, userid, module, self.meta))

    def login(self, service: str, userid: str, password: str) -> AuthInfo:
        """Check a cleartext password (``AUTH ... login``)."""
        if self.debug_login >= 1:
            ip = dict(self.meta).get("TCPREMOTEIP") or os.environ.get("TCPREMOTEIP", "")
            sys.stderr.write(f"DEBUG: LOGIN: ip=[{ip}], username={userid}\n")
            if self.debug_login >= 2:
                sys.stderr.write(f"DEBUG: LOGIN: ip=[{ip}], password={password}\n")
            sys.stderr.flush()
        data = f"{userid}\n{password}\n"
        return self._authinfo(authproto.encode_auth(service, "login", data, self.meta))

    def cram(self, service: str, authtype: str, challenge_b64: str, response_b64: str) -> AuthInfo:
        """Check a CRAM-MD5/SHA1/SHA256 response (*authtype* ``cram-md5`` etc.).

        Both arguments are base64 as the SASL exchange carried them; the
        response decodes to ``userid SP hexdigest``.
        """
        data = f"{challenge_b64}\n{response_b64}\n"
        return self._authinfo(authproto.encode_auth(service, authtype, data, self.meta))

    def external(self, service: str, userid: str) -> AuthInfo:
        """SASL EXTERNAL (the identity is already proven, e.g. by a TLS client
        certificate): Courier's library turns it into a plain lookup."""
        return self.pre(service, userid)

    def auth(self, service: str, authtype: str, authdata: str) -> AuthInfo:
        """A raw ``AUTH`` request, for other authtypes."""
        return self._authinfo(authproto.encode_auth(service, authtype, authdata, self.meta))

    def passwd(self, service: str, userid: str, oldpw: str, newpw: str) -> None:
        """Change a password; raises AuthFailed when refused."""
        for what, value in (("old password", oldpw), ("new password", newpw)):
            if any(ord(c) < 0x20 for c in value):
                raise AuthFailed(f"{what} contains a control character")
        request = authproto.encode_passwd(service, userid, oldpw, newpw, self.meta)
        reply = self._exchange(request, lambda buf: b"\n" in buf)
        line = reply.split(b"\n", 1)[0] + b"\n" if b"\n" in reply else reply
        if line == b"OK\n":
            return
        if line == b"FAIL\n":
            raise AuthFailed("password change refused")
        raise AuthTempFail("no answer from authdaemond to PASSWD")

    def enumerate(self) -> Iterator[EnumEntry]:
        """Every account of every module that can list them."""
        reply = self._exchange(
            authproto.encode_enumerate(self.meta),
            lambda buf: buf.endswith(b"\n.\n") or buf == b".\n",
        )
        if not (reply.endswith(b"\n.\n") or reply == b".\n"):
            raise AuthTempFail("ENUMERATE reply ended early")
        return authproto.parse_enumerate(reply)

    # -- plumbing -------------------------------------------------------------

    def _authinfo(self, request: bytes) -> AuthInfo:
        data = self._exchange(request, _reply_complete)
        parser = authproto.ReplyParser()
        try:
            parser.feed(data)
            result = parser.result()
        except authproto.ReplyError as exc:
            raise AuthTempFail(str(exc)) from None
        if isinstance(result, Fail):
            raise AuthFailed("authentication failed")
        return result

    def _exchange(self, request: bytes, complete: Callable[[bytearray], bool]) -> bytes:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            try:
                sock.settimeout(self.timeouts.connect)
                sock.connect(self.socket_path)
            except OSError as exc:
                raise AuthConnectError(self.socket_path, exc) from None
            try:
                sock.settimeout(self.timeouts.write)
                sock.sendall(request)
            except OSError as exc:
                raise AuthTempFail(f"cannot send to {self.socket_path}: {exc}") from None
            deadline = time.monotonic() + self.timeouts.read
            buf = bytearray()
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AuthTempFail("timed out reading from authdaemond")
                sock.settimeout(left)
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    raise AuthTempFail("timed out reading from authdaemond") from None
                except OSError as exc:
                    raise AuthTempFail(f"reading from authdaemond: {exc}") from None
                if not chunk:
                    return bytes(buf)
                buf += chunk
                if complete(buf):
                    return bytes(buf)
        finally:
            sock.close()


def _debug_level(environ: Mapping[str, str]) -> int:
    try:
        return int(environ.get("DEBUG_LOGIN", "0") or 0)
    except ValueError:
        return 0


def _reply_complete(buf: bytearray) -> bool:
    return buf == b"FAIL\n" or buf.endswith(b"\n.\n")


def cram_response_b64(userid: str, hexdigest: str) -> str:
    """base64 of ``userid SP hexdigest``, as a SASL client sends it."""
    return base64.b64encode(authproto.encode(f"{userid} {hexdigest}")).decode("ascii")
