"""The userdb text source: parsing and Courier-style editing, on real files."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from authdaemon.userdb import textdb
from authdaemon.userdb.textdb import TextDbError


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_set_merges_in_place_and_appends_new_records(tmp_path: Path) -> None:
    db = write(tmp_path / "udb", "# head\nalice\thome=/a|uid=1\n5=\talice\nbob\thome=/b\n", 0o640)
    textdb.set_fields(db, "alice", ["uid=2", "mail=/a/M", "flag"])
    textdb.set_fields(db, "carol", ["home=/c", "x=1", "x=2"])
    assert db.read_text() == (
        "# head\nalice\thome=/a|uid=2|mail=/a/M|flag\n5=\talice\nbob\thome=/b\n"
        "carol\thome=/c|x=1|x=2\n"
    )
    assert db.stat().st_mode & 0o777 == 0o640  # the old file's mode is kept
    assert sorted(os.listdir(tmp_path)) == [".lock.udb", "udb"]  # no .tmp.udb left


def test_new_file_is_private(tmp_path: Path) -> None:
    db = tmp_path / "fresh"
    textdb.set_fields(db, "a", ["home=/a"])
    assert db.read_text() == "a\thome=/a\n"
    assert db.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / ".lock.fresh").stat().st_mode & 0o777 == 0o600


def test_unset_and_delete(tmp_path: Path) -> None:
    db = write(tmp_path / "udb", "a\thome=/a|uid=1|gid=2\nb\thome=/b\n")
    assert textdb.unset_fields(db, "a", ["uid", "nothere"]) is True
    assert textdb.unset_fields(db, "zz", ["uid"]) is False
    assert textdb.unset_fields(db, "a", []) is False
    assert textdb.delete_record(db, "b") is True
    assert textdb.delete_record(db, "b") is False
    assert db.read_text() == "a\thome=/a|gid=2\n"
    assert textdb.unset_fields(db, "a", ["home", "gid"]) is True
    assert db.read_text() == "a\n"  # Courier writes the bare name back
    assert textdb.delete_record(tmp_path / "missing", "a") is False
    assert not (tmp_path / "missing").exists()


def test_show(tmp_path: Path) -> None:
    db = write(tmp_path / "udb", "# c\talice\nalice\thome=/a|uid=1\n\n5=\talice\nbare\n")
    assert textdb.show(db, None) == ["alice", "5=", "bare"]
    assert textdb.show(db, "alice") == ["home=/a", "uid=1"]
    assert textdb.show(db, "bare") == [""]
    assert textdb.show(db, "nobody") == []
    assert textdb.show(tmp_path / "missing", None) == []


def test_values_with_pipe_or_newline_are_refused(tmp_path: Path) -> None:
    db = write(tmp_path / "udb", "a\thome=/a\n")
    for bad in ("x=a|b", "x=a\nb", "a|b"):
        with pytest.raises(TextDbError, match=r"^Invalid field or value\.$") as info:
            textdb.set_fields(db, "a", [bad])
        assert info.value.exit_code == 22
    assert db.read_text() == "a\thome=/a\n"


def test_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(TextDbError, match="d: not a file.") as info:
        textdb.set_fields(tmp_path / "d", "a", ["x=1"])
    assert info.value.exit_code == 25


def test_lock_directory_missing(tmp_path: Path) -> None:
    with pytest.raises(TextDbError, match=r"Can't open .*/no/\.lock\.f: No such file") as info:
        textdb.set_fields(tmp_path / "no" / "f", "a", ["x=1"])
    assert info.value.exit_code == 2


def test_undecodable_bytes_survive_an_edit(tmp_path: Path) -> None:
    db = tmp_path / "udb"
    db.write_bytes(b"caf\xe9\thome=/\xff\nx\thome=/x\n")
    textdb.set_fields(db, "x", ["uid=1"])
    assert db.read_bytes() == b"caf\xe9\thome=/\xff\nx\thome=/x|uid=1\n"


def test_resolve_target_and_symlinks(tmp_path: Path) -> None:
    src = tmp_path / "userdb"
    (src / "sub").mkdir(parents=True)
    assert textdb.resolve_target(src, "alice") == textdb.Target(src, "alice")
    assert textdb.resolve_target(src, "sub/f/alice") == textdb.Target(src / "sub" / "f", "alice")
    real = write(tmp_path / "real", "a\thome=/a\n")
    (src / "sub" / "link").symlink_to("../../real")
    target = textdb.resolve_target(src, "sub/link/a")
    assert target.path.resolve() == real
    textdb.set_fields(target.path, "a", ["uid=1"])
    assert (src / "sub" / "link").is_symlink()
    assert real.read_text() == "a\thome=/a|uid=1\n"


def test_concurrent_edits_are_serialised_by_the_lock(tmp_path: Path) -> None:
    db = write(tmp_path / "udb", "")
    names = [f"user{i}" for i in range(30)]
    threads = [threading.Thread(target=textdb.set_fields, args=(db, n, [f"home=/{n}"]))
               for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = db.read_text().splitlines()
    assert sorted(lines) == sorted(f"{n}\thome=/{n}" for n in names)


def test_iter_source_files(tmp_path: Path) -> None:
    src = tmp_path / "userdb"
    for rel in ("b", "a/z", "a/.hidden", ".dot/x", "a/deeper/y"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text("")
    assert [p.relative_to(src).as_posix() for p in textdb.iter_source_files(src)] == \
        ["b", "a/z", "a/deeper/y"]
    assert textdb.iter_source_files(src / "b") == [src / "b"]
