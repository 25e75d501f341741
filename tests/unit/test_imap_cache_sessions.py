"""New IMAP sessions answering from the metadata cache file a former session
saved: the same bytes as without a cache, also after a message file was
replaced under the same name (sans-I/O session core, real Maildir files)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.unit.test_imap_session import _out, _session

MSGS = [
    b"From: Alice <alice@example.com>\nTo: bob@example.org\nSubject: first\n"
    b"Date: Mon, 1 Jan 2024 10:00:00 +0000\n\nbody one\n",
    b"From: Carol <carol@example.com>\nTo: bob@example.org\nSubject: second\n"
    b"Date: Tue, 2 Jan 2024 10:00:00 +0000\nMIME-Version: 1.0\n"
    b"Content-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\n\n"
    b"part one\n--B\nContent-Type: text/html\n\n<p>two</p>\n--B--\n",
    b"From: Dave <dave@example.com>\nSubject: third\n\nbody three\n",
]
REPLACED = (b"From: Eve <eve@example.com>\nTo: bob@example.org\nSubject: replaced, other size\n"
            b"Date: Wed, 3 Jan 2024 10:00:00 +0000\n\nnew body, longer than before\n")
FETCHES = [b"FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)",
           b"FETCH 1:* BODYSTRUCTURE", b"UID SEARCH FROM eve", b"UID SEARCH SUBJECT second",
           b"UID SEARCH TEXT longer", b"FETCH 2 BODY.PEEK[TEXT]", b"FETCH 2 BODY.PEEK[1]"]


def _deliver(md: Path) -> list[Path]:
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True, exist_ok=True)
    paths = []
    for i, data in enumerate(MSGS):
        p = md / "cur" / f"{1700000000 + i}.M{i}P1.h,S={len(data)}:2,S"
        p.write_bytes(data)
        os.utime(p, (1704103200 + i, 1704103200 + i))
        paths.append(p)
    return paths


def _run(tmp_path: Path, fetches: list[bytes] = FETCHES) -> list[bytes]:
    s = _session(tmp_path)
    _out(s)
    s.receive(b"s SELECT INBOX\r\n")
    _out(s)
    out = []
    for n, cmd in enumerate(fetches):
        s.receive(b"t%d %s\r\n" % (n, cmd))
        out.append(_out(s))
    s.receive(b"z LOGOUT\r\n")
    _out(s)
    return out


def _replace(path: Path, data: bytes, *, in_place: bool) -> None:
    if in_place:
        path.write_bytes(data)
    else:
        tmp = path.parent.parent / "tmp" / "replacement"
        tmp.write_bytes(data)
        os.rename(tmp, path)
    os.utime(path, (1704103201, 1704103201))  # even the same mtime


def test_new_session_from_the_cache_file_answers_as_without_it(tmp_path) -> None:
    md = tmp_path / "Maildir"
    _deliver(md)
    first = _run(tmp_path)
    assert (md / "courierpy.cache").exists()
    assert _run(tmp_path) == first  # served from the file
    (md / "courierpy.cache").unlink()
    assert _run(tmp_path) == first


def test_message_replaced_under_the_same_name_is_seen_by_a_new_session(tmp_path) -> None:
    md = tmp_path / "Maildir"
    paths = _deliver(md)
    before = _run(tmp_path)
    _replace(paths[1], REPLACED, in_place=False)
    after = _run(tmp_path)
    assert b"replaced, other size" in after[0]
    assert b"RFC822.SIZE %d" % len(REPLACED.replace(b"\n", b"\r\n")) in after[0]
    assert after != before
    (md / "courierpy.cache").unlink()
    assert _run(tmp_path) == after  # exactly what a session without the cache says


def test_message_rewritten_in_place_gives_its_true_bytes(tmp_path) -> None:
    md = tmp_path / "Maildir"
    paths = _deliver(md)
    _run(tmp_path)
    _replace(paths[1], REPLACED, in_place=True)
    # what reads the file (BODY[section], TEXT SEARCH) checks the entry first
    sections = [b"FETCH 2 BODY.PEEK[TEXT]", b"FETCH 2 BODY.PEEK[1]"]
    text = [b"UID SEARCH TEXT longer"]
    after = _run(tmp_path, sections), _run(tmp_path, text)
    (md / "courierpy.cache").unlink()
    assert after == (_run(tmp_path, sections), _run(tmp_path, text))
    assert b"new body, longer than before" in after[0][0]
    assert after[1] == [b"* SEARCH 2\r\nt0 OK SEARCH done.\r\n"]
