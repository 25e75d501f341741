"""The blocking I/O loop of one IMAP connection on stdin/stdout (inetd style).

Reads what the client sends, feeds it to the session core, writes the
answers through a buffer.  Two timers: the autologout (no command for
``Settings.autologout`` seconds → ``* BYE`` and exit; a client that stops
reading our output is dropped after the same time), and, during IDLE, a
re-scan of the mailbox every ``IMAP_IDLE_TIMEOUT`` seconds.
"""

from __future__ import annotations

import os
import select
import ssl
import time
from collections.abc import Iterator

from courierpy.imap.responses import Bye
from courierpy.imap.session import Session

__all__ = ["AUTOLOGOUT_TEXT", "WriteTimeout", "serve"]

AUTOLOGOUT_TEXT = "Autologout; idle for too long."
_BUFSIZE = 65536


class WriteTimeout(Exception):
    """The client did not read our output in time."""


class _Plain:
    """The connection as it is: reads from *infd*, writes to *outfd*."""

    def __init__(self, infd: int, outfd: int, timeout: float) -> None:
        self.infd = infd
        self.outfd = outfd
        self.timeout = timeout

    def pending(self) -> bool:
        return False

    def wait_readable(self, timeout: float) -> bool:
        return bool(select.select([self.infd], [], [], timeout)[0])

    def read(self) -> bytes:
        try:
            return os.read(self.infd, _BUFSIZE)
        except ConnectionError:
            return b""

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        pos = 0
        while pos < len(view):
            _, w, _ = select.select([], [self.outfd], [], self.timeout)
            if not w:
                raise WriteTimeout()
            pos += os.write(self.outfd, view[pos:pos + _BUFSIZE])


class _Tls:
    """TLS over the plain connection (STARTTLS), through memory BIOs."""

    def __init__(self, plain: _Plain, context: ssl.SSLContext) -> None:
        self.plain = plain
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = context.wrap_bio(self.incoming, self.outgoing, server_side=True)

    def _flush(self) -> None:
        data = self.outgoing.read()
        if data:
            self.plain.write(data)

    def _feed(self) -> bool:
        if not self.plain.wait_readable(self.plain.timeout):
            raise WriteTimeout()
        raw = self.plain.read()
        if not raw:
            self.incoming.write_eof()
            return False
        self.incoming.write(raw)
        return True

    def handshake(self) -> None:
        while True:
            try:
                self.obj.do_handshake()
                self._flush()
                return
            except ssl.SSLWantReadError:
                self._flush()
                if not self._feed():
                    raise ConnectionError("client left during the TLS handshake") from None

    def pending(self) -> bool:
        # decrypted bytes waiting, or received records not yet decrypted
        return self.obj.pending() > 0 or self.incoming.pending > 0

    def wait_readable(self, timeout: float) -> bool:
        return self.pending() or self.plain.wait_readable(timeout)

    def read(self) -> bytes:
        while True:
            try:
                return self.obj.read(_BUFSIZE)
            except ssl.SSLWantReadError:
                self._flush()
                if not self.plain.wait_readable(self.plain.timeout):
                    return b""
                raw = self.plain.read()
                if not raw:
                    return b""
                self.incoming.write(raw)
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    def write(self, data: bytes | memoryview) -> None:
        self.obj.write(bytes(data))
        self._flush()


def tls_context(settings) -> ssl.SSLContext | None:
    """A server context from TLS_CERTFILE (and TLS_PRIVATE_KEYFILE), or None."""
    cert = settings.extra.get("TLS_CERTFILE")
    if not cert or not os.path.exists(cert):
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(cert, settings.extra.get("TLS_PRIVATE_KEYFILE") or None)
    except (OSError, ssl.SSLError):
        return None
    return ctx


class _Writer:
    def __init__(self, transport, timeout: float) -> None:  # type: ignore[no-untyped-def]
        self.transport = transport
        self.timeout = timeout
        self.buf = bytearray()
        self.sent = 0

    def write(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) >= _BUFSIZE:
            self.flush()

    def flush(self) -> None:
        if self.buf:
            self.transport.write(self.buf)
            self.sent += len(self.buf)
            self.buf.clear()


def _drain(session: Session, writer: _Writer) -> None:
    for item in session.take_output():
        if isinstance(item, bytes):
            writer.write(item)
        else:
            for chunk in _chunks(item):
                writer.write(chunk)
    writer.flush()


def _chunks(it: Iterator[bytes]) -> Iterator[bytes]:
    yield from it


def serve(session: Session, infd: int = 0, outfd: int = 1) -> int:
    """Run *session* until LOGOUT, end of input, a fatal error or the autologout."""
    started = time.monotonic()
    counts = {"rcvd": 0}
    writer = _Writer(_Plain(infd, outfd, session.settings.autologout),
                     session.settings.autologout)
    try:
        return _serve(session, writer, counts)
    finally:
        if session.account is not None:
            what = "LOGOUT" if session.logged_out else "DISCONNECTED"
            session.log(f"{what}, user={session.account.name}",
                        f"headers=0, body=0, rcvd={counts['rcvd']}, sent={writer.sent}, "
                        f"time={int(time.monotonic() - started)}")


def _serve(session: Session, writer: _Writer, counts: dict[str, int]) -> int:
    try:
        session.start()
        _drain(session, writer)
        last = time.monotonic()
        while not session.closed:
            settings = session.settings
            if session.start_tls is not None:
                tls = _Tls(writer.transport, session.start_tls)
                session.start_tls = None
                tls.handshake()
                writer.transport = tls
                session.tls_started()
            if session.idling:
                timeout = min(settings.idle_timeout, max(0.0, last + settings.autologout
                                                        - time.monotonic()))
            else:
                timeout = max(0.0, last + settings.autologout - time.monotonic())
            if not writer.transport.wait_readable(timeout):
                if time.monotonic() - last >= settings.autologout:
                    writer.write(Bye(AUTOLOGOUT_TEXT).to_bytes())
                    writer.flush()
                    return 0
                session.idle_poll()
                _drain(session, writer)
                continue
            data = writer.transport.read()
            last = time.monotonic()
            counts["rcvd"] += len(data)
            session.receive(data)
            _drain(session, writer)
            if not data:
                break
    except (WriteTimeout, BrokenPipeError, ConnectionError, ssl.SSLError):
        return 1
    return 0
