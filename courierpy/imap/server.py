"""The blocking I/O loop of one IMAP connection on stdin/stdout (inetd style).

Reads what the client sends, feeds it to the session core, writes the
answers through a buffer.  Two timers: the autologout (no command for
``Settings.autologout`` seconds → ``* BYE`` and exit; a client that stops
reading our output is dropped after the same time), and, during IDLE, a
re-scan of the mailbox every ``IMAP_IDLE_TIMEOUT`` seconds.

SIGTERM (couriertcpd passes it on when stopped) ends the session cleanly:
between commands or in IDLE at once with Courier's ``* BYE Courier-IMAP server
shut down by signal.``; with a command partly received (an APPEND whose
literal is still arriving) only after that command is read and answered, if
the client sends the rest within ``COURIERPY_STOP_GRACE`` seconds (default
10); otherwise the partial upload in ``tmp/`` is removed and the session ends
with the same BYE.  The handler only sets a flag; ``signal.set_wakeup_fd``
wakes the ``select`` the loop waits in.
"""

from __future__ import annotations

import os
import select
import signal
import ssl
import threading
import time
from collections.abc import Iterator

from courierpy.imap.responses import Bye
from courierpy.imap.session import Session

__all__ = ["AUTOLOGOUT_TEXT", "DEFAULT_STOP_GRACE", "SHUTDOWN_TEXT", "StopSignal",
           "WriteTimeout", "serve"]

AUTOLOGOUT_TEXT = "Autologout; idle for too long."
#: Courier's imapd's answer to SIGTERM (seen from the oracle)
SHUTDOWN_TEXT = "Courier-IMAP server shut down by signal."
#: seconds a command in progress at SIGTERM may take to arrive (COURIERPY_STOP_GRACE)
DEFAULT_STOP_GRACE = 10.0
_BUFSIZE = 65536


class WriteTimeout(Exception):
    """The client did not read our output in time."""


class StopSignal:
    """SIGTERM as a flag, and a descriptor that becomes readable when it arrives.

    :meth:`install` sets the handler (it only records the request) and
    ``signal.set_wakeup_fd`` on a pipe of ours, so a ``select`` that watches
    :attr:`fd` returns; nothing is raised into the code that was running.
    """

    def __init__(self) -> None:
        self.requested = False
        self.fd = -1
        self._w = -1
        self._old_handler: object = None
        self._old_wakeup = -1

    def install(self) -> bool:
        """Take over SIGTERM (main thread only); False when it cannot be done."""
        if threading.current_thread() is not threading.main_thread():
            return False
        r, w = os.pipe()
        for fd in (r, w):
            os.set_blocking(fd, False)
            os.set_inheritable(fd, False)
        self.fd, self._w = r, w
        self._old_wakeup = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        self._old_handler = signal.signal(signal.SIGTERM, self._on_signal)
        return True

    def _on_signal(self, signum: int, frame: object) -> None:
        self.requested = True

    def drain(self) -> None:
        try:
            while os.read(self.fd, 512):
                pass
        except (BlockingIOError, OSError):
            pass

    def uninstall(self) -> None:
        if self.fd < 0:
            return
        signal.signal(signal.SIGTERM, self._old_handler)  # type: ignore[arg-type]
        signal.set_wakeup_fd(self._old_wakeup)
        os.close(self.fd)
        os.close(self._w)
        self.fd = self._w = -1


class _Plain:
    """The connection as it is: reads from *infd*, writes to *outfd*.

    *wake* (a :class:`StopSignal` descriptor, or -1) ends :meth:`wait_readable`
    early; once :attr:`deadline` is set (stopping), no wait lasts beyond it.
    """

    def __init__(self, infd: int, outfd: int, timeout: float, wake: int = -1) -> None:
        self.infd = infd
        self.outfd = outfd
        self.timeout = timeout
        self.wake = wake
        self.deadline: float | None = None

    def _cap(self, timeout: float) -> float:
        if self.deadline is None:
            return timeout
        return max(0.0, min(timeout, self.deadline - time.monotonic()))

    def pending(self) -> bool:
        return False

    def wait_readable(self, timeout: float, *, wake: bool = True) -> bool:
        """True when input is readable; False at the timeout or (*wake*) at a stop request."""
        fds = [self.infd, self.wake] if wake and self.wake >= 0 else [self.infd]
        ready = select.select(fds, [], [], self._cap(timeout))[0]
        if self.wake in ready:
            try:
                while os.read(self.wake, 512):
                    pass
            except OSError:
                pass
        return self.infd in ready

    def read(self) -> bytes:
        try:
            return os.read(self.infd, _BUFSIZE)
        except ConnectionError:
            return b""

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        pos = 0
        while pos < len(view):
            _, w, _ = select.select([], [self.outfd], [], self._cap(self.timeout))
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
        if not self.plain.wait_readable(self.plain.timeout, wake=False):
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

    def wait_readable(self, timeout: float, *, wake: bool = True) -> bool:
        return self.pending() or self.plain.wait_readable(timeout, wake=wake)

    def read(self) -> bytes:
        while True:
            try:
                return self.obj.read(_BUFSIZE)
            except ssl.SSLWantReadError:
                self._flush()
                if not self.plain.wait_readable(self.plain.timeout, wake=False):
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
    """Run *session* until LOGOUT, end of input, a fatal error, the autologout or SIGTERM."""
    started = time.monotonic()
    counts = {"rcvd": 0}
    stop = StopSignal()
    stop.install()
    plain = _Plain(infd, outfd, session.settings.autologout, stop.fd)
    writer = _Writer(plain, session.settings.autologout)
    try:
        return _serve(session, writer, counts, stop, plain)
    finally:
        if session.upload is not None:  # cut off mid-APPEND: nothing half-written stays
            session.upload.abort()
            session.upload = None
        elapsed = int(time.monotonic() - started)
        if stop.requested and not session.logged_out:
            # Courier's imapd's line for a session ended by the signal
            if session.account is not None:
                session.log("NOTICE: Disconnected during shutdown by signal, "
                            f"user={session.account.name}",
                            f"headers=0, body=0, rcvd={counts['rcvd']}, sent={writer.sent}, "
                            f"time={elapsed}")
            else:
                session.log("NOTICE: Disconnected during shutdown by signal", f"time={elapsed}")
        elif session.account is not None:
            what = "LOGOUT" if session.logged_out else "DISCONNECTED"
            session.log(f"{what}, user={session.account.name}",
                        f"headers=0, body=0, rcvd={counts['rcvd']}, sent={writer.sent}, "
                        f"time={elapsed}")
        stop.uninstall()


def _stop_grace(session: Session) -> float:
    try:
        return max(0.0, float(session.settings.extra.get("COURIERPY_STOP_GRACE")
                              or DEFAULT_STOP_GRACE))
    except ValueError:
        return DEFAULT_STOP_GRACE


def _at_rest(session: Session) -> bool:
    """Between commands (or in IDLE): nothing of a command is received but not answered."""
    return (session.reader.at_rest and session.upload is None
            and (session.pending is None or session.idling))


def _shut_down(session: Session, writer: _Writer, plain: _Plain, grace: float) -> int:
    """SIGTERM: drop an unfinished upload, say BYE, end."""
    if session.upload is not None:
        session.upload.abort()
        session.upload = None
    if plain.deadline is None:  # a client that does not read gets no longer than the grace
        plain.deadline = time.monotonic() + grace
    writer.write(Bye(SHUTDOWN_TEXT).to_bytes())
    writer.flush()
    return 0


def _serve(session: Session, writer: _Writer, counts: dict[str, int],
           stop: StopSignal | None = None, plain: _Plain | None = None) -> int:
    """The loop (also the login stage's, courierpy.login.imap: without *stop*, no SIGTERM
    handling here; *plain* is the connection under any TLS)."""
    if stop is None:
        stop = StopSignal()  # never installed: never requested
    if plain is None:
        t = writer.transport
        plain = t.plain if isinstance(t, _Tls) else t
    assert plain is not None
    grace = _stop_grace(session)
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
            now = time.monotonic()
            if stop.requested and not writer.transport.pending():
                if _at_rest(session):
                    return _shut_down(session, writer, plain, grace)
                if plain.deadline is None:  # a command is arriving: let it finish, bounded
                    plain.deadline = now + grace
                elif now >= plain.deadline:  # the client stalled
                    return _shut_down(session, writer, plain, grace)
            if session.idling:
                timeout = min(settings.idle_timeout, max(0.0, last + settings.autologout - now))
            else:
                timeout = max(0.0, last + settings.autologout - now)
            if not writer.transport.wait_readable(timeout):
                if stop.requested:
                    continue
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
