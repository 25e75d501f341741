"""Unit tests of courierimapuiddb, maildirsize, subscriptions and the Maildir store."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from courierpy.maildir import folders, quota, store, subscriptions, uiddb

A = "1795623243.M967903P10904V000000000000FE00I000000000020C284_0.vm,S=6"
B = "1795623300.M1P1.host,S=3"


def test_uiddb_parse_and_render() -> None:
    db = uiddb.parse(f"1 795623243 4\n1 {A}\n3 {B}\n".encode())
    assert db is not None and (db.uidvalidity, db.nextuid) == (795623243, 4)
    assert db.uids == {A: 1, B: 3}
    assert db.render() == f"1 795623243 4\n1 {A}\n3 {B}\n".encode()


@pytest.mark.parametrize("data", [b"garbage\n", b"", b"2 795623243 3\n", b"1 x 3\n",
                                  b"1 795623243 3"])
def test_uiddb_bad_first_line_means_rebuild(data: bytes) -> None:
    assert uiddb.parse(data) is None


def test_uiddb_bad_entries_skipped_like_courier() -> None:
    # Courier skips "xx yy" and an unterminated last line; those messages get new UIDs.
    db = uiddb.parse(f"1 795623243 9\nxx yy\n5 {A}\n7 {B}".encode())
    assert db is not None and db.uids == {A: 5} and db.nextuid == 9
    db2, changed = uiddb.update(db, [A, B])
    assert changed and db2.uids == {A: 5, B: 9} and db2.nextuid == 10


def test_uiddb_keeps_uids_unique_where_courier_does_not() -> None:
    db = uiddb.parse(f"1 795623243 3\n5 {A}\n5 {B}\n".encode())
    assert db is not None and db.uids == {A: 5} and db.nextuid == 6
    db, _ = uiddb.update(db, [A, B])
    assert db.uids == {A: 5, B: 6}


def test_uiddb_update_assigns_in_name_order() -> None:
    db, changed = uiddb.update(None, [B, A], now=1795623243)
    assert changed and db.uidvalidity == 795623243 and db.uids == {A: 1, B: 2}
    db, changed = uiddb.update(db, [B])
    assert changed and db.uids == {B: 2} and db.nextuid == 3
    db, changed = uiddb.update(db, [B])
    assert not changed


def test_folder_lock_excludes_and_recovers_stale(tmp_path: Path) -> None:
    md = folders.create_maildir(tmp_path / "M")
    with uiddb.folder_lock(md):
        assert (md / "tmp" / "courier.lock").read_text().startswith(f"{os.getpid()}:")
        with pytest.raises(uiddb.LockError):
            with uiddb.folder_lock(md, timeout=0.05):
                pass
    assert not (md / "tmp" / "courier.lock").exists()
    # a lock left by a dead process on this host is taken over
    (md / "tmp" / "courier.lock").write_text(f"999999999:{uiddb.names.hostname()}")
    with uiddb.folder_lock(md, timeout=1):
        pass
    assert list((md / "tmp").iterdir()) == []


def test_quota_spec() -> None:
    s = quota.parse_spec("1000C,2000S")
    assert (s.max_bytes, s.max_count, s.text) == (2000, 1000, "1000C,2000S")
    for bad in ("10X", "", "S", "10S,,"):
        with pytest.raises(quota.QuotaSpecError):
            quota.parse_spec(bad)


def _msg(md: Path, sub: str, name: str, body: bytes = b"x\n") -> None:
    (md / sub / name).write_bytes(body)


def test_recalculate_counts_like_courier(tmp_path: Path) -> None:
    # Same layout as checked against the real deliverquota: 19 bytes, 4 messages.
    md = folders.create_maildir(tmp_path / "Q")
    folders.create_folder(md, "Trash")
    folders.create_folder(md, "Sub")
    _msg(md, "cur", "1.M1P1.h,S=6:2,T", b"12345\n")
    _msg(md, "cur", "2.M1P1.h,S=6:2,S", b"12345\n")
    _msg(md, "cur", "3.M1P1.h:2,S", b"123\n")
    _msg(md / ".Trash", "cur", "4.M1P1.h,S=8:2,S", b"1234567\n")
    _msg(md / ".Sub", "new", "5.M1P1.h,S=9", b"1234567\n")
    _msg(md / ".Sub", "new", "6.M1P1.h,S=abc", b"1234567\n")
    u = quota.set_quota(md, "1000S")
    assert (u.bytes, u.count) == (19, 4)
    assert (md / "maildirsize").read_text() == "1000S\n          19            4\n"
    assert list((md / "tmp").iterdir()) == []


def test_read_usage_sums_and_recalculates(tmp_path: Path) -> None:
    md = folders.create_maildir(tmp_path / "M")
    _msg(md, "new", "1.M1P1.h,S=2")
    ms = md / "maildirsize"
    ms.write_text("100S,3C\n 5 1\ngarbage here\n  7\n 2 1")
    u = quota.read_usage(md)
    assert (u.bytes, u.count, u.recalculated) == (14, 2, False)  # unterminated line counts
    ms.write_text("100S\n 999 1\n")  # over quota, one line, fresh: trusted
    assert quota.read_usage(md).bytes == 999
    old = time.time() - 16 * 60
    os.utime(ms, (old, old))  # ... unless 15 minutes old
    assert quota.read_usage(md).bytes == 2
    ms.write_text("100S\n 999 1\n 1 1\n")  # over quota, more than one line
    u = quota.read_usage(md)
    assert u.recalculated and (u.bytes, u.count) == (2, 1)
    ms.write_text("100S\n" + " 1 0\n" * 2000)  # >= 5120 bytes
    assert quota.read_usage(md).recalculated
    ms.write_text("zzz\n 1 1\n")  # unparseable quota: no quota, never a crash
    assert quota.read_usage(md).spec is None
    u = quota.read_usage(md, env_quota="50S")
    assert u.recalculated and ms.read_text().startswith("50S\n")


def test_check_add_and_delta(tmp_path: Path) -> None:
    md = folders.create_maildir(tmp_path / "M")
    assert not quota.add_delta(md, 5, 1)  # no maildirsize: nothing appended
    quota.set_quota(md, "10S,2C")
    quota.check_add(md, 10)
    with pytest.raises(quota.QuotaExceeded) as e:
        quota.check_add(md, 11)
    assert e.value.exit_code == 77 and str(e.value) == "Mail quota exceeded."
    assert quota.add_delta(md, -3, -1)
    assert (md / "maildirsize").read_text().endswith("          -3           -1\n")
    sub = folders.create_folder(md, "Sub")
    assert quota.add_delta(sub, 1, 1)  # a folder uses the parent's maildirsize
    assert not (sub / "maildirsize").exists()


def test_subscriptions(tmp_path: Path) -> None:
    md = folders.create_maildir(tmp_path / "M")
    assert subscriptions.read(md) == []
    assert subscriptions.subscribe(md, "INBOX.Work.Sub")
    assert not subscriptions.subscribe(md, "INBOX.Work.Sub")
    assert subscriptions.subscribe(md, "INBOX.Résumé")
    assert (md / "courierimapsubscribed").read_bytes() == "INBOX.Work.Sub\nINBOX.Résumé\n".encode()
    assert subscriptions.unsubscribe(md, "INBOX.Work.Sub")
    assert subscriptions.read(md) == ["INBOX.Résumé"]


def test_store_scan_flags_expunge(tmp_path: Path) -> None:
    md = folders.create_maildir(tmp_path / "M")
    quota.set_quota(md, "1000S")
    m = store.Maildir(md)
    paths = [m.deliver(f"Subject: {i}\n\n".encode(), subdir="new") for i in range(3)]
    st = m.scan()
    assert [x.uid for x in st.messages] == [1, 2, 3] and st.uidnext == 4
    assert all(x.recent for x in st.messages) and not list((md / "new").iterdir())
    assert [x.basename for x in st.messages] == sorted(p.name for p in paths)
    b0, b1 = st.messages[0].basename, st.messages[1].basename
    # another process renames the file behind our back: we find it again
    other = store.Maildir(md)
    other.scan()
    other.set_flags(b0, "S")
    assert m.set_flags(b0, "FS").endswith(":2,FS")
    assert m.change_flags(b0, add="T", remove="F").endswith(":2,ST")
    assert m.expunge([b1, b1]) == [b1]
    st = m.scan()
    assert [(x.uid, x.flags) for x in st.messages] == [(1, "ST"), (3, "")]
    assert quota.read_usage(md).bytes == 3 * 12 - 12  # one expunged
    with pytest.raises(store.MessageGone):
        m.set_flags(b1, "S")


def test_delta_after_unterminated_line(tmp_path: Path) -> None:
    md = folders.create_maildir(tmp_path / "M")
    (md / "maildirsize").write_text("100S\n          50            1")
    assert quota.read_usage(md).bytes == 50  # Courier counts it too (checked: 60 more is 77)
    quota.add_delta(md, 6, 1)
    assert (md / "maildirsize").read_text() == (
        "100S\n          50            1\n           6            1\n")
