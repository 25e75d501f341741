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
import time
from collections.abc import Iterator

from courierpy.imap.responses import Bye
from courierpy.imap.session import Session

__all__ = ["AUTOLOGOUT_TEXT", "WriteTimeout", "serve"]

AUTOLOGOUT_TEXT = "Autologout; idle for too long."
_BUFSIZE = 65536


class WriteTimeout(Exception):
    """The client did not read our output in time."""


class _Writer:
    def __init__(self, fd: int, timeout: float) -> None:
        self.fd = fd
        self.timeout = timeout
        self.buf = bytearray()
        self.sent = 0

    def write(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) >= _BUFSIZE:
            self.flush()

    def flush(self) -> None:
        view = memoryview(self.buf)
        pos = 0
        while pos < len(view):
            _, w, _ = select.select([], [self.fd], [], self.timeout)
            if not w:
                raise WriteTimeout()
            n = os.write(self.fd, view[pos:pos + _BUFSIZE])
            pos += n
        self.sent += pos
        view.release()
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
    writer = _Writer(outfd, session.settings.autologout)
    try:
        return _serve(session, infd, writer, counts)
    finally:
        if session.account is not None:
            what = "LOGOUT" if session.logged_out else "DISCONNECTED"
            session.log(f"{what}, user={session.account.name}",
                        f"headers=0, body=0, rcvd={counts['rcvd']}, sent={writer.sent}, "
                        f"time={int(time.monotonic() - started)}")


def _serve(session: Session, infd: int, writer: _Writer, counts: dict[str, int]) -> int:
    settings = session.settings
    try:
        session.start()
        _drain(session, writer)
        last = time.monotonic()
        while not session.closed:
            if session.idling:
                timeout = min(settings.idle_timeout, max(0.0, last + settings.autologout
                                                        - time.monotonic()))
            else:
                timeout = max(0.0, last + settings.autologout - time.monotonic())
            r, _, _ = select.select([infd], [], [], timeout)
            if not r:
                if time.monotonic() - last >= settings.autologout:
                    writer.write(Bye(AUTOLOGOUT_TEXT).to_bytes())
                    writer.flush()
                    return 0
                session.idle_poll()
                _drain(session, writer)
                continue
            try:
                data = os.read(infd, _BUFSIZE)
            except ConnectionError:
                data = b""
            last = time.monotonic()
            counts["rcvd"] += len(data)
            session.receive(data)
            _drain(session, writer)
            if not data:
                break
    except (WriteTimeout, BrokenPipeError, ConnectionError):
        return 1
    return 0
