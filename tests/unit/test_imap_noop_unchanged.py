"""NOOP, CHECK, IDLE polls and a re-SELECT skip re-reading a folder that has not changed.

A folder whose cur/, new/, courierimapuiddb and courierimapkeywords/ have the
same inode, mtime and size as at the last read, all older than
``SETTLED_NS``, has not changed since (a change would give a later mtime).
The folders here are made old with ``os.utime``; every kind of change made by
another process (a delivery, a flag rename, an expunge, a keyword) is still
reported at the next NOOP, and a change hidden from the stamp on purpose (the
old mtime put back) is not: the read was really skipped.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from courierpy.imap.session import Account, Session, Settings
from courierpy.maildir import keywords as kwmod
from tests.instance import deliver

OLD = time.time() - 3600


def _age(md: Path) -> None:
    """Give the folder's files the times of an hour ago."""
    for p in (md / "cur", md / "new", md / "courierimapuiddb", md / kwmod.KEYWORDS_DIR):
        if p.exists():
            os.utime(p, (OLD, OLD))


def _session(md: Path) -> Session:
    settings = Settings.from_env({"IMAP_MAILBOX_SANITY_CHECK": "0"}, {"IMAP_KEYWORDS": "1"})
    s = Session(settings, account=Account("u", md, md.parent))
    s.start()
    return s


def _run(s: Session, line: bytes) -> bytes:
    s.receive(line + b"\r\n")
    out = b""
    for item in s.take_output():
        out += item if isinstance(item, bytes) else b"".join(item)
    return out


def _line(out: bytes, start: bytes) -> bytes:
    lines = [ln for ln in out.split(b"\r\n") if ln.startswith(start)]
    assert len(lines) == 1, out
    return lines[0]


@pytest.fixture
def md(tmp_path: Path) -> Path:
    md = tmp_path / "Maildir"
    for sub in ("tmp", "new", "cur"):
        (md / sub).mkdir(parents=True)
    for i in range(3):
        deliver(md, f"Subject: {i}\n\nbody\n".encode(), seq=i)
    return md


@pytest.fixture
def session(md: Path) -> Session:
    s = _session(md)
    _run(s, b"a SELECT INBOX")  # moves new/ to cur/, writes the UID list
    _age(md)
    assert _run(s, b"b NOOP") == b"b OK NOOP completed\r\n"  # a read that can vouch
    return s


def test_a_delivery_is_seen(session: Session, md: Path) -> None:
    deliver(md, b"Subject: new\n\nbody\n", seq=9)
    assert b"* 4 EXISTS" in _run(session, b"c NOOP")


def test_a_flag_change_by_another_process_is_seen(session: Session, md: Path) -> None:
    name = sorted(os.listdir(md / "cur"))[1]
    os.rename(md / "cur" / name, md / "cur" / (name.split(":")[0] + ":2,F"))
    line = _line(_run(session, b"c NOOP"), b"* 2 FETCH")
    assert b"\\Flagged" in line


def test_an_expunge_by_another_process_is_seen(session: Session, md: Path) -> None:
    os.unlink(md / "cur" / sorted(os.listdir(md / "cur"))[0])
    assert b"* 1 EXPUNGE" in _run(session, b"c NOOP")


def test_a_keyword_set_by_another_process_is_seen(session: Session, md: Path) -> None:
    base = sorted(os.listdir(md / "cur"))[2].split(":")[0]
    kwmod.set_keywords(md, base, ["Important"])
    assert b"Important" in _line(_run(session, b"c CHECK"), b"* 3 FETCH")


def test_an_unchanged_folder_is_not_read_again(session: Session, md: Path) -> None:
    # a delivery with cur/'s and new/'s old times put back: invisible to the stamp
    name = md / "cur" / "1700000000.M9P9.hidden:2,"
    name.write_bytes(b"Subject: hidden\n\nbody\n")
    _age(md)
    assert _run(session, b"c NOOP") == b"c OK NOOP completed\r\n"
    os.utime(md / "cur")  # now: the folder's time moves on, the next NOOP reads it
    assert b"* 4 EXISTS" in _run(session, b"d NOOP")


def test_a_recently_changed_folder_is_always_read(md: Path) -> None:
    s = _session(md)
    _run(s, b"a SELECT INBOX")  # its files' times are now: not old enough to vouch
    name = md / "cur" / "1700000000.M9P9.hidden:2,"
    name.write_bytes(b"Subject: hidden\n\nbody\n")
    os.utime(md / "cur", ns=(os.stat(md / "new").st_mtime_ns,) * 2)
    assert b"* 4 EXISTS" in _run(s, b"b NOOP")


def test_a_reselect_of_an_unchanged_folder_takes_the_last_view(session: Session,
                                                               md: Path) -> None:
    first = _run(session, b"c SELECT INBOX")
    name = md / "cur" / "1700000000.M9P9.hidden:2,"
    name.write_bytes(b"Subject: hidden\n\nbody\n")
    _age(md)
    again = _run(session, b"d EXAMINE INBOX")  # the hidden file is not looked for
    assert b"* 3 EXISTS" in first and b"* 3 EXISTS" in again
    assert b"[READ-ONLY]" in again
    assert b"* 3 FETCH (UID 3 " in _run(session, b"e FETCH 3 (UID FLAGS)")
    os.utime(md / "cur")  # a real change: the next SELECT reads the folder
    assert b"* 4 EXISTS" in _run(session, b"f SELECT INBOX")


def test_a_reselect_after_a_delivery_reads_the_folder(session: Session, md: Path) -> None:
    deliver(md, b"Subject: new\n\nbody\n", seq=9)
    assert b"* 4 EXISTS" in _run(session, b"c SELECT INBOX")


def test_switching_back_to_the_folder_before_takes_its_view(session: Session,
                                                            md: Path) -> None:
    assert b"OK" in _run(session, b"c CREATE INBOX.other")
    assert b"* 0 EXISTS" in _run(session, b"d SELECT INBOX.other")
    name = md / "cur" / "1700000000.M9P9.hidden:2,"
    name.write_bytes(b"Subject: hidden\n\nbody\n")
    _age(md)
    assert b"* 3 EXISTS" in _run(session, b"e SELECT INBOX")  # INBOX's last view
