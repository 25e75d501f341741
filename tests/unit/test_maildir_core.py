"""Unit tests of names, folders and the create (tmp → new) path."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courierpy.maildir import create, folders, names


def test_parse_courier_names() -> None:
    p = names.parse("1795618769.M589359P16281V000000000000FE00I000000000016809E_0.vm,S=157:2,S")
    assert p.basename == "1795618769.M589359P16281V000000000000FE00I000000000016809E_0.vm,S=157"
    assert (p.size, p.flags, p.info) == (157, "S", "2,S")
    p = names.parse("1795618960.M308769P19096V000000000000FE00I0000000000168128.vm,S=20")
    assert (p.size, p.flags, p.info) == (20, "", None)
    assert names.parse("123.abc:2,").flags == ""
    assert names.parse("123.abc").size is None
    assert names.parse("1.x,S=10,W=12:2,TSFa").flags == "FSTa"
    assert names.parse("1.x,S=10,W=12:2,TSFa").size == 10


def test_flags_sorted_and_deduplicated() -> None:
    assert names.format_flags("TSRFD") == "DFRST"
    assert names.format_flags("SSa") == "Sa"
    assert names.with_flags("1.x,S=3:2,S", "TS") == "1.x,S=3:2,ST"
    assert names.with_flags("1.x,S=3", "") == "1.x,S=3:2,"


def test_message_and_tmp_names() -> None:
    n = names.message_name(0xFE00, 0x16809E, 157, uniq=0, now=1795618769.589359, pid=16281,
                           host="vm")
    assert n == "1795618769.M589359P16281V000000000000FE00I000000000016809E_0.vm,S=157"
    assert names.tmp_name("imapuid_0", now=5.000001, pid=7, host="h") == "5.M1P7_imapuid_0.h"


def test_hostname_is_sanitised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(names.socket, "gethostname", lambda: "a/b:c")
    assert names.hostname() == "a\\057b\\072c"


@given(st.text(alphabet="DFRSTabc", max_size=8))
def test_flags_roundtrip(flags: str) -> None:
    name = names.with_flags("99.M1P2V0I0.h,S=4", flags)
    assert names.parse(name).flags == "".join(sorted(set(flags)))
    assert names.parse(name).basename == "99.M1P2V0I0.h,S=4"


def test_folder_mapping(tmp_path: Path) -> None:
    assert folders.folder_path(tmp_path, "INBOX") == tmp_path
    assert folders.folder_path(tmp_path, "inbox") == tmp_path
    assert folders.folder_path(tmp_path, "INBOX.a.b") == tmp_path / ".a.b"
    assert folders.folder_path(tmp_path, "Résumé") == tmp_path / ".Résumé"
    assert folders.dir_to_imap(".a.b") == "INBOX.a.b"


@pytest.mark.parametrize("bad", ["INBOX.a/b", "INBOX..x", "INBOX.a..b", "INBOX.a.", "INBOX.",
                                 ".x", "../x", "INBOX.a\x01", "INBOX.a.\x7f", "INBOX.a...b"])
def test_escaping_names_rejected(tmp_path: Path, bad: str) -> None:
    with pytest.raises(folders.FolderNameError):
        folders.folder_path(tmp_path, bad)


def test_create_list_rename_delete(tmp_path: Path) -> None:
    md = folders.create_maildir(tmp_path / "M")
    assert stat.S_IMODE(md.stat().st_mode) == 0o700
    folders.create_folder(md, "INBOX.Work.Sub")
    folders.create_folder(md, "INBOX.Work")
    folders.create_folder(md, "Résumé")
    mf = md / ".Work" / "maildirfolder"
    assert mf.stat().st_size == 0 and stat.S_IMODE(mf.stat().st_mode) == 0o600
    assert folders.list_folders(md) == ["INBOX.Résumé", "INBOX.Work", "INBOX.Work.Sub"]
    with pytest.raises(folders.FolderExistsError):
        folders.create_folder(md, "INBOX.Work")
    folders.rename_folder(md, "INBOX.Work", "INBOX.Job")
    assert folders.list_folders(md) == ["INBOX.Job", "INBOX.Job.Sub", "INBOX.Résumé"]
    folders.delete_folder(md, "INBOX.Job")
    assert folders.list_folders(md) == ["INBOX.Job.Sub", "INBOX.Résumé"]
    assert list((md / "tmp").iterdir()) == []
    with pytest.raises(folders.NoSuchFolderError):
        folders.delete_folder(md, "INBOX.Job")
    assert folders.root_of(md / ".Résumé") == md


def test_deliver_new_and_cur(tmp_path: Path) -> None:
    md = folders.create_maildir(tmp_path / "M")
    p = create.deliver(md, b"Subject: x\n\nbody\n")
    assert p.parent == md / "new"
    parsed = names.parse(p.name)
    assert parsed.size == 17 == p.stat().st_size
    st_ = p.stat()
    assert f"V{st_.st_dev:016X}I{st_.st_ino:016X}." in p.name
    q = create.deliver(md, open(p, "rb"), flags="SF", mtime=1704103200, subdir="cur")
    assert q.name.endswith(":2,FS") and q.stat().st_mtime == 1704103200
    assert q.read_bytes() == p.read_bytes()
    assert list((md / "tmp").iterdir()) == []


def test_deliver_large_stream_in_chunks(tmp_path: Path) -> None:
    md = folders.create_maildir(tmp_path / "M")
    data = os.urandom(3 * create.CHUNK + 17)
    src = tmp_path / "big"
    src.write_bytes(data)
    with open(src, "rb") as f:
        p = create.deliver(md, f)
    assert p.read_bytes() == data and names.parse(p.name).size == len(data)


def test_check_refusal_leaves_nothing(tmp_path: Path) -> None:
    md = folders.create_maildir(tmp_path / "M")

    class Over(Exception):
        pass

    def refuse(size: int) -> None:
        raise Over(size)

    with pytest.raises(Over):
        create.deliver(md, b"hello\n", check=refuse)
    for sub in ("tmp", "new", "cur"):
        assert list((md / sub).iterdir()) == []


def test_missing_maildir_is_delivery_error(tmp_path: Path) -> None:
    with pytest.raises(create.DeliveryError) as e:
        create.deliver(tmp_path / "nope", b"x")
    assert e.value.exit_code == 75


def test_clean_tmp(tmp_path: Path) -> None:
    md = folders.create_maildir(tmp_path / "M")
    old = md / "tmp" / "old"
    old.write_text("x")
    fresh = md / "tmp" / "fresh"
    fresh.write_text("y")
    now = old.stat().st_ctime + 36 * 3600 + 1
    assert create.clean_tmp(md, now=now - 2) == 0
    # ctime cannot be set back, so move "now" forward instead
    fresh_ctime = fresh.stat().st_ctime
    assert create.clean_tmp(md, now=now) == (2 if fresh_ctime + 36 * 3600 < now else 1)
    assert not old.exists()


def test_existing_folder_with_control_character_stays_reachable(tmp_path: Path) -> None:
    md = folders.create_maildir(tmp_path / "M")
    with pytest.raises(folders.FolderNameError):
        folders.create_folder(md, "INBOX.tab\there")
    folders.create_maildir(md / ".tab\there", folder=True)  # as Courier's CREATE makes it
    assert folders.list_folders(md) == ["INBOX.tab\there"]
    assert folders.folder_path(md, "INBOX.tab\there") == md / ".tab\there"
    with pytest.raises(folders.FolderNameError):
        folders.folder_path(md, "INBOX.a/b\t")
