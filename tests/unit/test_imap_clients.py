"""Real client libraries (imaplib, imapclient) talk to our command reader.

A minimal loop around :class:`CommandReader` on a real loopback socket (the
~30-line I/O loop style.md describes, test-only here) records every parsed
command and answers ``OK``; the clients format their commands themselves —
quoting, literals, modified UTF-7 names, APPEND dates — and we check that what
we parsed is what they meant.
"""

from __future__ import annotations

import datetime as dt
import imaplib
import socket
import threading

import imapclient
import pytest

from courierpy.imap.fetchatts import FetchAtt, Section
from courierpy.imap.grammar import (
    NEED_DATA,
    BadCommand,
    Command,
    CommandReader,
    ConnectionClosed,
    LiteralChunk,
    NeedContinuation,
)
from courierpy.imap.responses import Continuation, Tagged, UntaggedStatus
from courierpy.imap.searchkeys import And, HasFlag, Header, Not, Text
from courierpy.imap.state import Append, Login, Mailbox, Status, Store


class Server:
    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.commands: list[Command] = []
        self.bad: list[BadCommand] = []
        self.appended: list[bytes] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        conn, _ = self.listener.accept()
        reader = CommandReader(state=None)
        message = bytearray()

        def send(resp) -> None:
            conn.sendall(resp.to_bytes())

        with conn:
            send(UntaggedStatus("OK", "test server ready"))
            while True:
                ev = reader.next_event()
                if ev is NEED_DATA:
                    reader.receive_data(conn.recv(65536))
                elif isinstance(ev, ConnectionClosed):
                    return
                elif isinstance(ev, NeedContinuation):
                    reader.accept_literal()
                    if ev.synchronizing:
                        send(Continuation())
                elif isinstance(ev, LiteralChunk):
                    message += ev.data
                elif isinstance(ev, BadCommand):
                    self.bad.append(ev)
                    send(ev.response())
                else:
                    self.commands.append(ev)
                    if isinstance(ev.args, Append):
                        self.appended.append(bytes(message))
                        message.clear()
                    if ev.name == "CAPABILITY":
                        conn.sendall(b"* CAPABILITY IMAP4rev1 UIDPLUS\r\n")
                    if ev.name in ("SELECT", "EXAMINE"):
                        conn.sendall(b"* 3 EXISTS\r\n* FLAGS (\\Seen)\r\n")
                    if ev.name == "LOGOUT":
                        conn.sendall(b"* BYE bye\r\n")
                    send(Tagged(ev.tag, "OK", "done"))
                    if ev.name == "LOGOUT":
                        return

    def close(self) -> None:
        self.thread.join(5)
        self.listener.close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def test_imaplib(server: Server) -> None:
    c = imaplib.IMAP4("127.0.0.1", server.port)
    c.login("erin", 'p@ss "word" \\ x')
    c.select('"INBOX.with space"')
    c.status("INBOX", "(MESSAGES UNSEEN)")
    when = dt.datetime(2024, 1, 1, 10, 0, tzinfo=dt.UTC)
    msg = b"Subject: hi\r\n\r\nline1\r\nline2\r\n"
    c.append("INBOX", "(\\Seen $Label1)", imaplib.Time2Internaldate(when), msg)
    c.store("1:3", "+FLAGS.SILENT", "(\\Deleted)")
    c.fetch("1:*", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])")
    c.uid("SEARCH", "UNSEEN", "SUBJECT", '"a b"')
    c.logout()
    server.close()
    assert not server.bad
    args = [cmd.args for cmd in server.commands]
    assert Login("erin", 'p@ss "word" \\ x') in args
    assert Mailbox("INBOX.with space") in args
    assert Status("INBOX", ("MESSAGES", "UNSEEN")) in args
    (append,) = [a for a in args if isinstance(a, Append)]
    assert append == Append("INBOX", ("\\Seen", "$Label1"), when, len(msg))
    assert server.appended == [msg]
    (store,) = [a for a in args if isinstance(a, Store)]
    assert store.mode == "+" and store.silent and store.flags == ("\\Deleted",)
    fetch = next(c for c in server.commands if c.name == "FETCH").args
    assert fetch.atts == (
        FetchAtt("UID"),
        FetchAtt("BODY", Section((), "HEADER.FIELDS", ("SUBJECT", "FROM")), peek=True),
    )
    search = next(c for c in server.commands if c.name == "UID SEARCH").args
    assert search.program.key == And((Not(HasFlag("\\Seen")), Header("SUBJECT", "a b")))


def test_imapclient(server: Server) -> None:
    c = imapclient.IMAPClient("127.0.0.1", port=server.port, ssl=False)
    c.login("erin", "pw")
    c.select_folder("INBOX.Résumé & co")
    c.create_folder("INBOX.日本語")
    c.append("INBOX.Résumé & co", b"Subject: x\r\n\r\nbody\r\n", flags=[b"\\Flagged"])
    c.search(["TEXT", "café", "UNSEEN"], charset="UTF-8")
    c.logout()
    server.close()
    assert not server.bad, server.bad
    args = [cmd.args for cmd in server.commands]
    assert Mailbox("INBOX.Résumé & co") in args  # imapclient sent modified UTF-7
    assert Mailbox("INBOX.日本語") in args
    (append,) = [a for a in args if isinstance(a, Append)]
    assert append.mailbox == "INBOX.Résumé & co" and append.flags == ("\\Flagged",)
    search = next(c for c in server.commands if c.name == "UID SEARCH").args
    assert search.program.charset == "UTF-8"
    assert search.program.key == And((Text("TEXT", "café"), Not(HasFlag("\\Seen"))))
