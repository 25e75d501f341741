"""Shared folders: shared-maildirs files, the virtual shared index, name munging."""

from __future__ import annotations

from pathlib import Path

import pytest

from courierpy.maildir import shared


def test_parse_shared_maildirs_skips_noise():
    data = b"# comment\n\npub\t/srv/pub\nbroken line\nsp ace\t/x y\n"
    assert shared.parse_shared_maildirs(data) == [
        shared.SharedMaildir("pub", "/srv/pub"),
        shared.SharedMaildir("sp ace", "/x y"),
    ]


def test_own_list_hides_global_nicknames(tmp_path: Path):
    md = tmp_path / "M"
    md.mkdir()
    (md / "shared-maildirs").write_bytes(b"pub\t/own/pub\n")
    glob = tmp_path / "maildirshared"
    glob.write_bytes(b"pub\t/global/pub\nnews\t/global/news\n")
    assert shared.shared_maildirs_for(md, glob) == [
        shared.SharedMaildir("pub", "/own/pub"),
        shared.SharedMaildir("news", "/global/news"),
    ]
    assert shared.shared_maildirs_for(tmp_path / "nowhere", tmp_path / "none") == []


def test_add_and_del_errors(tmp_path: Path):
    md = tmp_path / "M"
    md.mkdir()
    target = tmp_path / "S"
    target.mkdir()
    with pytest.raises(shared.SharedError, match=r"^a\.b: invalid name$"):
        shared.add_shared_maildir(md, "a.b", str(target))
    with pytest.raises(shared.SharedError, match="No such file or directory"):
        shared.add_shared_maildir(md, "x", str(tmp_path / "missing"))
    shared.add_shared_maildir(md, "x", str(target))
    with pytest.raises(shared.SharedError, match="already defined") as e:
        shared.add_shared_maildir(md, "x", str(target))
    assert e.value.exit_code == 2
    with pytest.raises(shared.SharedError, match=r"^y: not found\.$"):
        shared.del_shared_maildir(md, "y")
    shared.del_shared_maildir(md, "x")
    assert (md / "shared-maildirs").read_bytes() == b""


@pytest.mark.parametrize(
    ("name", "plain", "munged"),
    [
        ("erin", "erin", "erin"),
        ("first.last", "first last", "first\\:last"),
        ("a/b", "a b", "a\\;b"),
        ("back\\slash.x", "back\\slash x", "back\\\\slash\\:x"),
    ],
)
def test_munge(name, plain, munged):
    assert shared.munge_name(name) == plain
    assert shared.munge_name(name, munge=True) == munged
    assert shared.unmunge_name(munged) == name


def test_index_file_for_sharedgroup(tmp_path: Path):
    idx = tmp_path / "index"
    assert shared.index_file_for("", idx) == idx
    assert shared.index_file_for("disableshared=0,sharedgroup=12", idx) == tmp_path / "index12"
    assert shared.index_file_for({"sharedgroup": "x"}, idx) == tmp_path / "indexx"


def _account(tmp_path: Path, name: str) -> str:
    home = tmp_path / "vmail" / name
    (home / "Maildir").mkdir(parents=True)
    return f"{name}\t5000\t5000\t{home}\t{home / 'Maildir'}\n"


def test_index_tree_with_groups_cycles_and_missing_maildirs(tmp_path: Path):
    d = tmp_path / "shared"
    d.mkdir()
    (d / "index").write_text("# top\ne\t*\tindexe\nf\t*\tindexf\nloop\t*\tindex\n")
    (d / "indexe").write_text(_account(tmp_path, "erin") + "ghost\t1\t1\t/nonexistent\n")
    (d / "indexf").write_text(_account(tmp_path, "frank") + _account(tmp_path, "first.last"))
    idx = shared.SharedIndex(d / "index")
    assert sorted(idx.children()) == ["e", "f", "loop"]
    assert list(idx.children(("e",))) == ["erin"]  # ghost's maildir does not exist
    assert sorted(idx.children(("f",))) == ["first last", "frank"]
    assert idx.children(("nosuch",)) == {}
    assert idx.children(("e", "erin")) == {}
    found = {path: acct.name for path, acct in idx.accounts()}
    assert found == {
        ("e", "erin"): "erin",
        ("f", "frank"): "frank",
        ("f", "first last"): "first.last",
    }
    acct = idx.children(("e",))["erin"]
    assert acct.maildir_path == tmp_path / "vmail" / "erin" / "Maildir"


def test_account_line_without_maildir_defaults_to_home_maildir(tmp_path: Path):
    (entry,) = shared.parse_index(b"bob\t1\t2\t/home/bob\n")
    assert entry.maildir_path == Path("/home/bob/Maildir")
    (entry,) = shared.parse_index(b"bob\t1\t2\t/home/bob\tmail/box\tsharedgroup=3\n")
    assert entry.maildir_path == Path("/home/bob/mail/box")
    assert entry.options == "sharedgroup=3"


def test_account_lines_need_positive_uid_and_gid():
    data = b"root\t0\t0\t/root\nx\tabc\t1\t/h\ny\t1\t-1\t/h\nok\t7\t8\t/h\n"
    assert [e.name for e in shared.parse_index(data)] == ["ok"]
