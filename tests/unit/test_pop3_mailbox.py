"""Pop3Mailbox on real Maildirs: the bulk reading of a current sizelist against the
line-by-line one, and new/ moved by a child process (see courierpy/pop3/mailbox.py)."""

from __future__ import annotations

import os
import random
from pathlib import Path

from courierpy.pop3 import mailbox
from courierpy.pop3.mailbox import SIZELIST, Pop3Mailbox


def make(md: Path, count: int, *, seed: int = 7) -> None:
    rng = random.Random(seed)
    for sub in ("tmp", "new", "cur"):
        (md / sub).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        head = b"Subject: caf\xc3\xa9\n" if i % 5 == 0 else b"Subject: plain\n"
        body = b"line\n" * rng.randint(0, 30) + (b"\xc3\xa9 8-bit body\n" if i % 3 else b"")
        name = f"{1700000000 + rng.randint(0, 10**6)}.M{i}P{rng.randint(1, 99)}.host"
        if i % 2:
            (md / "new" / name).write_bytes(head + b"\n" + body)
        else:
            (md / "cur" / f"{name}:2,{'S' if i % 4 else ''}").write_bytes(head + b"\n" + body)


def columns(box: Pop3Mailbox) -> list[tuple[str, int, int, int, int]]:
    return [(box.filename(i), box.sizes[i], box.uids[i], box.uidvs[i], box.utf8[i])
            for i in range(len(box))]


def test_bulk_and_line_by_line_agree(tmp_path: Path) -> None:
    md = tmp_path / "Maildir"
    make(md, 300)
    first = Pop3Mailbox.open(md, now=1234)  # new/ moved by a child, every file read
    assert not os.listdir(md / "new") and len(first) == 300
    assert len(set(first.uids)) == 300 and set(first.uidvs) == {1234}
    listed = (md / SIZELIST).read_bytes()
    assert mailbox._read_sizelist(str(md / SIZELIST)).columns is not None  # usual shape
    again = Pop3Mailbox.open(md)
    assert all(isinstance(n, bytes) for n in again.filenames)  # taken in bulk
    assert columns(again) == columns(first)
    # a flag changed since the list was written: still in bulk, the new name found
    for i in (3, 200):
        again.mark_seen(i)
        again.filename(i)
    marked = columns(again)
    assert columns(Pop3Mailbox.open(md)) == marked
    # the same list outside the usual shape (a last line without LF, which Courier
    # ignores): read line by line, same snapshot, list not rewritten
    (md / SIZELIST).write_bytes(listed + b"junk")
    assert mailbox._read_sizelist(str(md / SIZELIST)).columns is None
    assert columns(Pop3Mailbox.open(md)) == marked
    assert (md / SIZELIST).read_bytes() == listed + b"junk"


def test_bulk_list_is_checked_line_by_line(tmp_path: Path) -> None:
    """Lines that split into the right number of pieces but not line by line."""
    md = tmp_path / "Maildir"
    make(md, 4)
    Pop3Mailbox.open(md)
    text = (md / SIZELIST).read_bytes().split(b"\n")
    # one name with two ':' (seven pieces), one line without its uidv (five pieces)
    text[1] = text[1].replace(b":2,", b":2,:x", 1)
    text[2] = text[2].rsplit(b":", 2)[0] + b":" + text[2].rsplit(b":", 1)[1]
    data = b"\n".join(text)
    assert len(data.replace(b":", b" ").split()) == 3 + 6 * 4
    (md / SIZELIST).write_bytes(data)
    assert mailbox._read_sizelist(str(md / SIZELIST)).columns is None


def test_mover_child_process_reports_what_it_could_not_move(tmp_path: Path) -> None:
    md = tmp_path / "Maildir"
    for sub in ("tmp", "new", "cur"):
        (md / sub).mkdir(parents=True)
    for i in range(80):
        (md / "new" / f"1700000000.M{i}P1.host").write_bytes(b"x\n")
    (md / "new" / "1700000001.M1P1.host:2,S").write_bytes(b"y\n")
    got = sorted(os.listdir(md / "new"))
    for background in (True, False):
        mover = mailbox._Mover(str(md), [*got, "1700000002.gone"])
        mover.start(background=background)
        mover.wait()
        assert mover.lost
        assert sorted(os.listdir(md / "cur")) == sorted(
            n if ":" in n else n + ":2," for n in got)
        assert not os.listdir(md / "new")
    for background in (True, False):
        for n in os.listdir(md / "cur"):
            os.rename(md / "cur" / n, md / "new" / n.removesuffix(":2,"))
        mover = mailbox._Mover(str(md), sorted(os.listdir(md / "new")))
        mover.start(background=background)
        mover.wait()
        assert not mover.lost and len(os.listdir(md / "cur")) == 81
