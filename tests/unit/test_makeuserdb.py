"""makeuserdb: the compile, Courier's refusals, and the atomic swap."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from authdaemon.userdb import makeuserdb
from authdaemon.userdb.database import UserDatabase
from authdaemon.userdb.gdbm import open_gdbm
from authdaemon.userdb.makeuserdb import BuildError

GOOD = "alice\thome=/a|uid=1|systempw=$1$s$h|imappw=i\nbob\thome=/b\n# c\n\n5=\talice\n"


def source(tmp_path: Path, text: str = GOOD, mode: int = 0o600) -> Path:
    src = tmp_path / "userdb"
    src.write_text(text)
    src.chmod(mode)
    return src


def contents(path: Path) -> dict[bytes, bytes]:
    with open_gdbm(path) as db:
        return dict(db.items())


def snapshot(tmp_path: Path) -> dict[str, bytes]:
    return {n: (tmp_path / n).read_bytes() for n in ("userdb.dat", "userdbshadow.dat")}


def test_build(tmp_path: Path) -> None:
    makeuserdb.build(source(tmp_path))
    assert contents(tmp_path / "userdb.dat") == {
        b"alice": b"home=/a|uid=1|_=", b"bob": b"home=/b|_=", b"5=": b"alice|_=",
    }
    assert contents(tmp_path / "userdbshadow.dat") == {b"alice": b"systempw=$1$s$h|imappw=i"}
    assert (tmp_path / "userdb.dat").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "userdbshadow.dat").stat().st_mode & 0o777 == 0o600
    assert sorted(os.listdir(tmp_path)) == [
        "userdb", "userdb.dat", "userdb.lock", "userdbshadow.dat"]


def test_secret_fields_are_the_ones_named_pw(tmp_path: Path) -> None:
    makeuserdb.build(source(tmp_path, "a\thome=/a|pw=1|xpw|hmac-md5pw=2|pwx=3|a=b=pw=\n"))
    assert contents(tmp_path / "userdb.dat") == {b"a": b"home=/a|xpw|pwx=3|a=b=pw=|_="}
    assert contents(tmp_path / "userdbshadow.dat") == {b"a": b"pw=1|hmac-md5pw=2"}


def test_directory_source_locations(tmp_path: Path) -> None:
    src = tmp_path / "userdb"
    (src / "x" / "y").mkdir(parents=True)
    (src / "top").write_text("a\thome=/a\n")
    (src / "x" / "y" / "f").write_text("b\thome=/b\n")
    (src / "x" / ".skip").write_text("c\thome=/c\n")
    src.chmod(0o700)
    makeuserdb.build(src)
    assert contents(tmp_path / "userdb.dat") == {
        b"a": b"home=/a|_=top/", b"b": b"home=/b|_=x/y/f/"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("alice\thome=/a\nno tab here\n", r"userdb:2: malformed line \(no TAB"),
        ("alice\thome=/a\n\n\tfields\n", r"userdb:3: malformed line \(empty account name"),
        ("a\thome=/a\nb\thome=/b\na\thome=/c\n",
         r"userdb:3: duplicate record for a \(first at .*userdb:1\)"),
        ("a\thome=/a\n.\nb\thome=/b\n", r"userdb:2: malformed line"),
    ],
)
def test_bad_source_keeps_old_databases(tmp_path: Path, text: str, message: str) -> None:
    src = source(tmp_path)
    makeuserdb.build(src)
    before = snapshot(tmp_path)
    src.write_text(text)
    with pytest.raises(BuildError, match=message) as info:
        makeuserdb.build(src)
    assert str(src) in str(info.value)
    assert info.value.exit_code == 1
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "userdb.tmp").exists()
    assert not (tmp_path / "userdbshadow.tmp").exists()


def test_refusals_keep_old_databases(tmp_path: Path) -> None:
    src = source(tmp_path)
    makeuserdb.build(src)
    before = snapshot(tmp_path)
    src.write_text("new\thome=/n\n")
    src.chmod(0o604)
    with pytest.raises(BuildError, match="MAY NOT HAVE GROUP OR WORLD PERMISSIONS!!") as info:
        makeuserdb.build(src)
    assert info.value.exit_code == 255
    assert snapshot(tmp_path) == before
    src.chmod(0o600)
    os.unlink(tmp_path / "userdbshadow.dat")
    (tmp_path / "userdbshadow.dat").symlink_to("/dev/null")
    with pytest.raises(BuildError, match=r"\(.*userdbshadow.dat is a symbolic link\)"):
        makeuserdb.build(src)
    assert (tmp_path / "userdb.dat").read_bytes() == before["userdb.dat"]


def test_failure_while_writing_keeps_old_databases(tmp_path: Path) -> None:
    """The shadow db cannot be written: the already-built userdb.tmp is not installed."""
    src = source(tmp_path)
    makeuserdb.build(src)
    before = snapshot(tmp_path)
    src.write_text("new\thome=/n|systempw=x\n")
    (tmp_path / "userdbshadow.tmp").mkdir()  # cannot be unlinked or created as a file
    with pytest.raises(BuildError, match="userdbshadow.tmp"):
        makeuserdb.build(src)
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "userdb.tmp").exists()
    assert UserDatabase(tmp_path).lookup("new") is None


def test_build_waits_for_the_lock(tmp_path: Path) -> None:
    src = source(tmp_path)
    fd = os.open(tmp_path / "userdb.lock", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        proc = subprocess.Popen([sys.executable, "-c",
                                 "import sys; from pathlib import Path;"
                                 "from authdaemon.userdb.makeuserdb import build;"
                                 "build(Path(sys.argv[1]))", str(src)])
        time.sleep(0.3)
        assert proc.poll() is None
        assert not (tmp_path / "userdb.dat").exists()
    finally:
        os.close(fd)
    assert proc.wait(timeout=10) == 0
    assert (tmp_path / "userdb.dat").exists()


def test_paths_for() -> None:
    p = makeuserdb.paths_for(Path("/x/u/"))
    assert (str(p.dat), str(p.shadow), str(p.lock), str(p.tmp_dat), str(p.tmp_shadow)) == (
        "/x/u.dat", "/x/ushadow.dat", "/x/u.lock", "/x/u.tmp", "/x/ushadow.tmp")
