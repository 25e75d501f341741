"""The ctypes GDBM layer and the compiled-userdb reader, on real GDBM files."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from authdaemon.userdb.database import UserDatabase, UserRecord, decode_fields
from authdaemon.userdb.gdbm import GdbmError, GdbmNotFound, Mode, open_gdbm
from tests.support import require

MAKEDATPROG = "/usr/lib/courier/courier-authlib/makedatprog"


def write_db(path: Path, records: dict[bytes, bytes]) -> None:
    with open_gdbm(path, Mode.NEW) as db:
        for key, value in records.items():
            db.store(key, value, replace=False)
        db.sync()


def test_store_fetch_delete_iterate(tmp_path: Path) -> None:
    path = tmp_path / "t.dat"
    with open_gdbm(path, Mode.CREATE, perms=0o600) as db:
        db.store(b"alice", b"home=/a|_=")
        db.store(b"bob", b"x\x00y\xff")  # arbitrary bytes survive
        db.store(b"alice", b"home=/b|_=")  # replace
        with pytest.raises(GdbmError, match="duplicate") as info:
            db.store(b"bob", b"z", replace=False)
        assert str(path) in str(info.value)
        assert db.fetch(b"alice") == b"home=/b|_="
        assert db.fetch(b"nobody") is None
        assert b"bob" in db and b"carol" not in db
        assert db.delete(b"alice") is True
        assert db.delete(b"alice") is False
        db.store(b"", b"empty key")
    assert os.stat(path).st_mode & 0o777 == 0o600 & ~_umask()
    with open_gdbm(path) as db:
        assert sorted(db.items()) == [(b"", b"empty key"), (b"bob", b"x\x00y\xff")]
        with pytest.raises(GdbmError, match="cannot store"):
            db.store(b"c", b"d")  # opened read-only
    db.close()  # idempotent
    with pytest.raises(GdbmError, match="closed"):
        db.fetch(b"bob")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_open_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(GdbmNotFound, match="missing.dat: not found"):
        open_gdbm(tmp_path / "missing.dat")
    junk = tmp_path / "junk.dat"
    junk.write_bytes(b"not a gdbm file at all" * 100)
    with pytest.raises(GdbmError, match="junk.dat: cannot open"):
        open_gdbm(junk)


def test_same_format_as_courier_makedatprog(tmp_path: Path) -> None:
    """Courier's makedatprog and we produce files each side reads (same header)."""
    prog = require(MAKEDATPROG)
    subprocess.run(
        [prog, "-", str(tmp_path / "c.tmp"), str(tmp_path / "c.dat")],
        input=b"alice\thome=/a|_=\nbob\tuid=1|_=\n.\n", check=True,
    )
    write_db(tmp_path / "o.dat", {b"alice": b"home=/a|_=", b"bob": b"uid=1|_="})
    with open_gdbm(tmp_path / "c.dat") as db:
        assert dict(db.items()) == {b"alice": b"home=/a|_=", b"bob": b"uid=1|_="}
    # Same file header (magic, block size, directory) as Courier's.
    assert (tmp_path / "c.dat").read_bytes()[:64] == (tmp_path / "o.dat").read_bytes()[:64]
    # GDBM's standard-format magic, 0x13579acf, little endian ("GNU dbm 1.x" to file(1)).
    assert (tmp_path / "o.dat").read_bytes()[:4] == b"\xcf\x9a\x57\x13"


def test_decode_fields() -> None:
    assert decode_fields("home=/h|uid=1|x|a=b=c|_=") == {
        "home": "/h", "uid": "1", "x": "", "a": "b=c", "_": "",
    }
    assert decode_fields("") == {}


def test_database_lookup_enumerate_and_reopen(tmp_path: Path) -> None:
    write_db(tmp_path / "userdb.dat", {
        b"alice": b"home=/a|uid=5|gid=6|_=",
        b"5=": b"alice|_=",
        b"Bob": b"home=/b|_=sub/",
    })
    write_db(tmp_path / "userdbshadow.dat", {b"alice": b"systempw=$1$x$y|imappw=z"})
    db = UserDatabase(tmp_path)
    alice = db.lookup("alice")
    assert alice == UserRecord(
        "alice", {"home": "/a", "uid": "5", "gid": "6", "_": ""},
        {"systempw": "$1$x$y", "imappw": "z"},
    )
    assert db.lookup("bob") is None  # case-sensitive
    assert db.lookup("Bob") == UserRecord("Bob", {"home": "/b", "_": "sub/"}, {})
    assert db.lookup("5=") is None  # reverse records are not accounts
    assert db.lookup("") is None
    assert sorted(r.name for r in db.enumerate()) == ["Bob", "alice"]

    # A rebuild (new file renamed over the old one) is picked up without reopening.
    time.sleep(0.01)
    write_db(tmp_path / "new.dat", {b"carol": b"home=/c|_="})
    os.rename(tmp_path / "new.dat", tmp_path / "userdb.dat")
    assert db.lookup("alice") is None
    assert db.lookup("carol") == UserRecord("carol", {"home": "/c", "_": ""}, {})
    # Deleting the databases means "nobody", not a crash.
    os.unlink(tmp_path / "userdb.dat")
    os.unlink(tmp_path / "userdbshadow.dat")
    assert db.lookup("carol") is None
    assert list(db.enumerate()) == []
    db.close()


def test_database_reads_courier_built_files(tmp_path: Path) -> None:
    prog = require(MAKEDATPROG)
    for name, text in (("userdb", b"dave\thome=/d|uid=7|_=\n7=\tdave|_=\n.\n"),
                       ("userdbshadow", b"dave\tsystempw=abc\n.\n")):
        subprocess.run([prog, "-", str(tmp_path / f"{name}.tmp"), str(tmp_path / f"{name}.dat")],
                       input=text, check=True)
    with UserDatabase(tmp_path) as db:
        assert db.lookup("dave") == UserRecord(
            "dave", {"home": "/d", "uid": "7", "_": ""}, {"systempw": "abc"})
        assert [r.name for r in db.enumerate()] == ["dave"]


def test_database_reopens_in_a_forked_child(tmp_path: Path) -> None:
    write_db(tmp_path / "userdb.dat", {b"alice": b"home=/a|_="})
    db = UserDatabase(tmp_path)
    assert db.lookup("alice") is not None
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: must work on its own handle, then leave the parent's alone
        try:
            ok = db.lookup("alice") is not None and db.lookup("bob") is None
            db.close()
            os.write(w, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(w)
    assert os.read(r, 1) == b"1"
    os.close(r)
    os.waitpid(pid, 0)
    assert db.lookup("alice") is not None  # the parent's handle still works
    # ... and still holds its shared lock (a child's gdbm_close would have dropped it).
    with pytest.raises(GdbmError, match="cannot open"):
        open_gdbm(tmp_path / "userdb.dat", Mode.WRITE)
    db.close()
    open_gdbm(tmp_path / "userdb.dat", Mode.WRITE).close()
