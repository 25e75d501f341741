"""Whole imapd sessions over real sockets: imapclient and raw bytes, two clients on
one mailbox, IDLE, concurrent APPENDs and UIDPLUS, bad input, autologout."""

from __future__ import annotations

import os
import threading
import time

import pytest
from imapclient import IMAPClient

from tests.integration.imapd_support import (
    ImapdListener,
    RawClient,
    make_maildir,
    preauth_env,
    put_new,
)

MSG = b"From: a@example.com\r\nSubject: hello %d\r\n\r\nbody %d\r\n"


@pytest.fixture
def home(tmp_path):
    make_maildir(tmp_path / "Maildir")
    return tmp_path


@pytest.fixture
def port(home):
    with ImapdListener(["Maildir"], preauth_env(IMAP_IDLE_TIMEOUT="1"), home) as p:
        yield p


def _client(port: int) -> IMAPClient:
    c = IMAPClient("127.0.0.1", port=port, ssl=False, timeout=10)
    return c


def test_imapclient_full_session(port):
    c = _client(port)
    assert b"UIDPLUS" in c.capabilities()
    c.create_folder("INBOX.Work")
    c.create_folder("INBOX.Work.Sub")
    names = {f[2] for f in c.list_folders()}
    assert names == {"INBOX", "INBOX.Work", "INBOX.Work.Sub"}
    for i in range(3):
        c.append("INBOX", MSG % (i, i), flags=(b"\\Seen",) if i == 0 else ())
    sel = c.select_folder("INBOX")
    assert sel[b"EXISTS"] == 3
    assert sorted(c.search("UNSEEN")) == [2, 3]
    c.add_flags([2], [b"\\Flagged", b"Important"])
    flags = c.get_flags([1, 2, 3])
    assert set(flags[2]) == {b"\\Flagged", b"Important"}
    data = c.fetch([3], [b"BODY.PEEK[]", b"ENVELOPE", b"RFC822.SIZE"])
    assert data[3][b"BODY[]"] == MSG % (2, 2)
    assert data[3][b"RFC822.SIZE"] == len(MSG % (2, 2))
    assert data[3][b"ENVELOPE"].subject == b"hello 2"
    c.copy([1, 2], "INBOX.Work")
    assert c.folder_status("INBOX.Work", [b"MESSAGES"])[b"MESSAGES"] == 2
    c.delete_messages([1])
    c.expunge()
    assert c.search("ALL") == [2, 3]  # UIDs (imapclient's default)
    c.rename_folder("INBOX.Work", "INBOX.Job")
    assert {f[2] for f in c.list_folders()} == {"INBOX", "INBOX.Job", "INBOX.Job.Sub"}
    c.select_folder("INBOX.Job", readonly=True)
    assert set(c.get_flags([2])[2]) == {b"\\Flagged", b"Important"}
    c.logout()


def test_two_sessions_see_each_other(port, home):
    a = RawClient(port)
    b = RawClient(port)
    try:
        a.line()
        b.line()
        put_new(home / "Maildir", MSG % (1, 1), 1)
        out = a.command("a1", "SELECT INBOX")
        assert b"* 1 EXISTS" in out and b"* 1 RECENT" in out
        out = b.command("b1", "SELECT INBOX")
        assert b"* 1 EXISTS" in out and b"* 0 RECENT" in out  # \Recent went to a
        lit = MSG % (2, 2)
        b.send(b"b2 APPEND INBOX {%d}\r\n" % len(lit))
        assert b.line() == b"+ OK"
        b.send(lit + b"\r\n")
        assert b.line().startswith(b"b2 OK [APPENDUID ")
        # a FETCH does not report the new message; NOOP does
        assert a.command("a2", "FETCH 1 (FLAGS)") == [
            b"* 1 FETCH (FLAGS (\\Recent))", b"a2 OK FETCH completed."]
        assert a.command("a3", "NOOP") == [b"* 2 EXISTS", b"* 1 RECENT", b"a3 OK NOOP completed"]
        # flag changes by b reach a as FETCH
        b.command("b3", "STORE 1 +FLAGS.SILENT (\\Seen)")
        assert a.command("a4", "NOOP") == [b"* 1 FETCH (FLAGS (\\Seen \\Recent))",
                                           b"a4 OK NOOP completed"]
        # an expunge by b: never during a's FETCH/STORE/SEARCH, reported at NOOP
        b.command("b4", "STORE 1 +FLAGS.SILENT (\\Deleted)")
        assert b.command("b5", "EXPUNGE")[0] == b"* 1 EXPUNGE"
        out = a.command("a5", "FETCH 1:2 (UID)")
        assert out[-1] == b"a5 OK FETCH completed."
        assert a.command("a6", "SEARCH ALL") == [b"* SEARCH 1 2", b"a6 OK SEARCH done."]
        out = a.command("a7", "STORE 2 +FLAGS (\\Answered)")
        assert out == [b"* 2 FETCH (FLAGS (\\Answered))", b"a7 OK STORE completed."]
        assert a.command("a8", "NOOP")[:3] == [b"* 1 EXPUNGE", b"* 1 EXISTS", b"* 0 RECENT"]
        assert a.command("a9", "UID FETCH 1:* (FLAGS)") == [
            b"* 1 FETCH (UID 2 FLAGS (\\Answered))", b"a9 OK FETCH completed."]
    finally:
        a.close()
        b.close()


def test_idle_reports_new_mail(port, home):
    with RawClient(port) as c:
        c.line()
        c.command("a1", "SELECT INBOX")
        c.send(b"a2 IDLE\r\n")
        assert c.line() == b"+ entering idle mode"
        put_new(home / "Maildir", MSG % (1, 1), 1)
        # polled every IMAP_IDLE_TIMEOUT (1 s here)
        assert c.line() == b"* 1 EXISTS"
        assert c.line() == b"* 1 RECENT"
        c.send(b"DONE\r\n")
        assert c.line() == b"a2 OK IDLE completed"


def _append_many(port: int, n: int, tag: str, out: list) -> None:
    with RawClient(port) as c:
        c.line()
        for i in range(n):
            body = b"Subject: %s-%d\r\n\r\nx\r\n" % (tag.encode(), i)
            c.send(b"a%d APPEND INBOX {%d}\r\n" % (i, len(body)))
            assert c.line() == b"+ OK"
            c.send(body + b"\r\n")
            resp = c.line()
            uid = int(resp.split(b"]")[0].split()[-1])
            out.append((uid, body))


def test_concurrent_appenduid_names_the_right_message(port):
    results: list = []
    threads = [threading.Thread(target=_append_many, args=(port, 15, f"t{k}", results))
               for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 60
    assert len({u for u, _ in results}) == 60
    with RawClient(port) as c:
        c.line()
        c.command("s", "SELECT INBOX")
        for uid, body in results:
            out = c.command("f", f"UID FETCH {uid} (BODY.PEEK[])")
            assert out[0].endswith(body + b")"), (uid, out)


def test_copyuid_and_uid_commands(port):
    with RawClient(port) as c:
        c.line()
        c.command("a", "CREATE INBOX.Dst")
        for i in range(4):
            body = MSG % (i, i)
            c.send(b"p APPEND INBOX {%d}\r\n" % len(body))
            c.line()
            c.send(body + b"\r\n")
            c.line()
        c.command("s", "SELECT INBOX")
        out = c.command("c1", "UID COPY 2:3 INBOX.Dst")
        assert out[-1].startswith(b"c1 OK [COPYUID ") and out[-1].endswith(
            b" 2:3 1:2] COPY completed.")
        out = c.command("c2", "COPY 1,4 INBOX.Dst")
        assert out[-1].endswith(b" 1,4 3:4] COPY completed.")
        assert c.command("u1", "UID SEARCH 3:*") == [b"* SEARCH 3 4", b"u1 OK SEARCH done."]
        assert c.command("u2", "UID STORE 4 +FLAGS (\\Deleted)") == [
            b"* 4 FETCH (UID 4 FLAGS (\\Deleted))", b"u2 OK STORE completed."]
        assert c.command("u3", "UID EXPUNGE 1:3")[-1] == b"u3 OK EXPUNGE completed"
        assert c.command("u4", "UID EXPUNGE 4")[:3] == [b"* 4 EXPUNGE", b"* 3 EXISTS",
                                                         b"* 0 RECENT"]


def test_large_append_streams_to_disk(port, home):
    body = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 3000
    with RawClient(port) as c:
        c.line()
        c.send(b"a1 APPEND INBOX {%d}\r\n" % len(body))
        assert c.line() == b"+ OK"
        c.send(body + b"\r\n")
        assert c.line().startswith(b"a1 OK [APPENDUID ")
        c.command("s", "SELECT INBOX")
        out = c.command("f", "FETCH 1 (RFC822.SIZE)")
        assert out[0] == b"* 1 FETCH (RFC822.SIZE %d)" % len(body)
    files = os.listdir(home / "Maildir" / "cur")
    assert len(files) == 1
    # stored with LF line ends
    assert (home / "Maildir" / "cur" / files[0]).stat().st_size == len(body) - 3002


def test_autologout(home):
    env = preauth_env(COURIERPY_AUTOLOGOUT="1")
    with ImapdListener(["Maildir"], env, home) as port, RawClient(port) as c:
        c.line()
        t0 = time.monotonic()
        assert c.line().startswith(b"* BYE")
        assert time.monotonic() - t0 < 5
        assert c.at_eof()


def test_client_that_stops_reading_is_dropped(home):
    put_new(home / "Maildir", b"Subject: x\r\n\r\n" + b"y" * 1_000_000, 1)
    env = preauth_env(COURIERPY_AUTOLOGOUT="2")
    with ImapdListener(["Maildir"], env, home) as port:
        c = RawClient(port)
        c.line()
        c.send(b"s SELECT INBOX\r\n")
        for i in range(200):
            c.send(b"f%d FETCH 1 BODY.PEEK[]\r\n" % i)
        time.sleep(4)
        # the server gave up on us: reading drains what was buffered, then EOF
        c.sock.settimeout(5)
        total = 0
        while True:
            try:
                chunk = c.sock.recv(1 << 20)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            total += len(chunk)
        assert total < 200 * 1_000_000
        c.close()
