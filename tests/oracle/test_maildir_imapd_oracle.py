"""Our Maildir++ library and tools against the real Courier imapd, both ways.

* ours → Courier: a Maildir built with our maildirmake/deliverquota and the
  store (folders, flags, expunge, quota) must look the same through the real
  imapd: LIST, UIDVALIDITY, UID FETCH FLAGS, STATUS UIDNEXT, GETQUOTAROOT.
* Courier → ours: the same kind of history made through the real imapd
  (CREATE, APPEND, STORE, EXPUNGE) must read the same through our library.
* A damaged courierimapuiddb is rebuilt by us exactly as by Courier.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from courierpy.maildir import folders, quota, store, subscriptions, uiddb
from tests.oracle.courier_imapd import CourierImapd
from tests.support import REPO

pytestmark = pytest.mark.oracle

FLAG_NAMES = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen",
              "T": "\\Deleted"}


def imap_flags(letters: str) -> set[str]:
    return {FLAG_NAMES[c] for c in letters if c in FLAG_NAMES}


def our_view(md: Path) -> dict[str, dict[str, object]]:
    """Folder → uidvalidity, uidnext, {uid: flags} as our library sees it."""
    view = {}
    for name in ["INBOX", *folders.list_folders(md)]:
        st = store.Maildir(folders.folder_path(md, name)).scan()
        view[name] = {"uidvalidity": st.uidvalidity, "uidnext": st.uidnext,
                      "flags": {m.uid: imap_flags(m.flags) for m in st.messages}}
    return view


def courier_view(home: Path) -> tuple[dict[str, dict[str, object]], dict[str, tuple[int, int]]]:
    view = {}
    with CourierImapd(home) as imap:
        imap.command("ENABLE UTF8=ACCEPT")
        for name in sorted(imap.list_folders()):
            sel = imap.select(name)
            imap.command("CLOSE", check=False)  # no expunge: nothing is \\Deleted-and-closed
            status = imap.status(name)
            view[name] = {"uidvalidity": sel["uidvalidity"], "uidnext": status["UIDNEXT"],
                          "flags": sel["flags"]}
        q = imap.quota()
    return view, q


def _cli(tool: str, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", f"courierpy.cli.{tool}", *args], input=stdin,
                          capture_output=True, timeout=30, cwd=REPO, check=False)


def _kb(n: int) -> int:
    return (n + 1023) // 1024


def test_ours_then_courier(tmp_path: Path) -> None:
    md = tmp_path / "Maildir"
    assert _cli("maildirmake", str(md)).returncode == 0
    assert _cli("maildirmake", "-q", "150000S,20C", str(md)).returncode == 0
    for i in range(5):
        body = f"Subject: m{i}\n\n" + "x" * (100 * i) + "\n"
        assert _cli("deliverquota", str(md), stdin=body.encode()).returncode == 0
    for name in ("INBOX.Work", "INBOX.Work.Sub", "INBOX.Résumé", "INBOX.Trash"):
        assert _cli("maildirmake", "-f", name[6:], str(md)).returncode == 0
    inbox = store.Maildir(md)
    msgs = inbox.scan().messages
    inbox.set_flags(msgs[0].basename, "S")
    inbox.set_flags(msgs[1].basename, "FRS")
    inbox.set_flags(msgs[2].basename, "DT")
    inbox.expunge([msgs[3].basename])
    work = store.Maildir(md / ".Work")
    work.deliver(b"Subject: w\n\nin work\n", flags="S", mtime=1704103200)
    work.deliver(b"Subject: w2\n\nin work\n", subdir="new")
    store.Maildir(md / ".Trash").deliver(b"Subject: t\n\ntrash\n" + b"y" * 5000)
    # two more deliveries that nobody has scanned yet: both sides must number them alike
    for i in range(2):
        assert _cli("deliverquota", str(md), stdin=f"Subject: late{i}\n\n".encode()).returncode == 0
    ours_before = {k: v["uidvalidity"] for k, v in our_view(md).items()}
    ours = our_view(md)
    theirs, q = courier_view(tmp_path)
    assert set(theirs) == set(ours) == {"INBOX", "INBOX.Work", "INBOX.Work.Sub",
                                        "INBOX.Résumé", "INBOX.Trash"}
    assert theirs == ours
    assert ours_before == {k: v["uidvalidity"] for k, v in ours.items()}
    usage = quota.read_usage(md)
    # deltas so far: 7 deliveries - 1 expunge + 2 in Work + 1 in Trash (deltas count Trash;
    # only a recalculation leaves it out)
    assert usage.count == 9 and not usage.recalculated
    assert q == {"STORAGE": (_kb(usage.bytes), _kb(150000)), "MESSAGE": (usage.count, 20)}


def test_courier_then_ours(tmp_path: Path) -> None:
    md = tmp_path / "Maildir"
    assert _cli("maildirmake", str(md)).returncode == 0
    assert _cli("maildirmake", "-q", "100000S", str(md)).returncode == 0
    with CourierImapd(tmp_path) as imap:
        imap.command("ENABLE UTF8=ACCEPT")
        for name in ("INBOX.A", "INBOX.A.B", "INBOX.Résumé"):
            imap.command(f"CREATE {imap.quote(name)}")
        for i in range(6):
            imap.append("INBOX", f"Subject: {i}\r\n\r\nbody {i}\r\n".encode(),
                        flags="\\Seen" if i % 2 else "")
        imap.append("INBOX.A.B", b"Subject: b\r\n\r\nb\r\n", flags="\\Flagged \\Draft",
                    date="01-Jan-2024 10:00:00 +0000")
        imap.append("INBOX.Résumé", b"Subject: r\r\n\r\nr\r\n")
        imap.command("SELECT INBOX")
        imap.command("UID STORE 2 +FLAGS (\\Answered)")
        imap.command("UID STORE 3,5 +FLAGS (\\Deleted)")
        imap.command("EXPUNGE")
        imap.command("UID STORE 6 +FLAGS (\\Deleted)")  # left in place, flagged T
        imap.command("CLOSE", check=False)
        imap.command("DELETE INBOX.A")  # A has an inferior: Courier's answer decides
    theirs, q = courier_view(tmp_path)
    ours = our_view(md)
    assert ours == theirs
    b = store.Maildir(md / ".A.B").scan().messages[0]
    assert (md / ".A.B" / "cur" / b.filename).stat().st_mtime == 1704103200
    assert b.flags == "DF"
    usage = quota.read_usage(md)
    assert q["STORAGE"] == (_kb(usage.bytes), _kb(100000))
    # what Courier stored, our names.parse reads: ,S= is the LF size on disk
    for m in store.Maildir(md).scan().messages:
        assert m.size == (md / "cur" / m.filename).stat().st_size


@pytest.mark.parametrize("damage", [
    b"garbage\n",
    b"",
    b"1 795623243 3\nxx yy\n",
    b"2 795623243 3\n",
])
def test_corrupt_uiddb_rebuilt_like_courier(tmp_path: Path, damage: bytes) -> None:
    real_home, our_home = tmp_path / "real", tmp_path / "ours"
    md = real_home / "Maildir"
    real_home.mkdir()
    folders.create_maildir(md)
    m = store.Maildir(md)
    for i in range(4):
        m.deliver(f"Subject: {i}\n\n".encode(), subdir="new")
    first = m.scan().messages
    if damage.startswith(b"1 "):  # keep the first entry valid, damage the rest
        damage = damage.replace(b"xx yy\n", f"1 {first[0].basename}\nxx yy\n".encode())
    (md / uiddb.UIDDB).write_bytes(damage)
    shutil.copytree(real_home, our_home, symlinks=True)
    with CourierImapd(real_home) as imap:
        real = imap.select("INBOX")
        real_next = imap.status("INBOX")["UIDNEXT"]
    st = store.Maildir(our_home / "Maildir").scan()
    ours_by_name = {m.basename: m.uid for m in st.messages}
    real_db = uiddb.read(md)
    assert real_db is not None
    assert ours_by_name == real_db.uids
    assert st.uidnext == real_next
    assert abs(st.uidvalidity - real["uidvalidity"]) <= 2  # both "now - 1e9" when rebuilt
    if damage.startswith(b"1 "):
        assert st.uidvalidity == real["uidvalidity"] == 795623243


def test_status_of_unscanned_folder_matches_courier(tmp_path: Path) -> None:
    """STATUS counts messages not yet in the uiddb without moving anything."""
    md = folders.create_maildir(tmp_path / "Maildir")
    w = folders.create_folder(md, "INBOX.W")
    m = store.Maildir(w)
    for i in range(3):
        m.deliver(f"Subject: {i}\n\n".encode(), subdir="new")
    m.deliver(b"Subject: c\n\n", flags="S")
    m.scan()
    m.set_flags(m.scan().messages[0].basename, "S")
    for i in range(2):
        m.deliver(f"Subject: n{i}\n\n".encode(), subdir="new")
    m.deliver(b"Subject: c2\n\n", flags="S")
    m.deliver(b"Subject: c3\n\n", flags="F")
    before = sorted(p.name for p in (w / "new").iterdir()), (w / uiddb.UIDDB).read_bytes()
    ours = m.status()
    assert (sorted(p.name for p in (w / "new").iterdir()), (w / uiddb.UIDDB).read_bytes()) \
        == before
    with CourierImapd(tmp_path) as imap:
        theirs = imap.status("INBOX.W")
    del ours["RECENT"]
    assert ours == theirs == {"MESSAGES": 8, "UIDNEXT": 9, "UIDVALIDITY": ours["UIDVALIDITY"],
                              "UNSEEN": 5}


def test_folder_operations_match_courier(tmp_path: Path) -> None:
    """CREATE/RENAME/DELETE/SUBSCRIBE through Courier vs our folders/subscriptions."""
    real_home, our_home = tmp_path / "real", tmp_path / "ours"
    for h in (real_home, our_home):
        h.mkdir()
        folders.create_maildir(h / "Maildir")
    create = ["INBOX.Work", "INBOX.Work.Sub", "INBOX.Work.Sub.Deep", "INBOX.Workshop",
              "INBOX.Résumé", "INBOX.a/b", "INBOX..x", "INBOX.a..b", ".hid"]
    real_ok = []
    with CourierImapd(real_home) as imap:
        imap.command("ENABLE UTF8=ACCEPT")
        for n in create:
            real_ok.append(imap.command(f"CREATE {imap.quote(n)}", check=False)[1].split()[1])
        imap.command("SUBSCRIBE INBOX.Work.Sub")
        imap.command("SUBSCRIBE INBOX.Workshop")
        imap.command("RENAME INBOX.Work INBOX.Job")
        imap.command("DELETE INBOX.Job")
        imap.command("UNSUBSCRIBE INBOX.Workshop")
    ours_md = our_home / "Maildir"
    ours_ok = []
    for n in create:
        try:
            folders.create_folder(ours_md, n if n.upper().startswith("INBOX.") else "." + n)
            ours_ok.append("OK")
        except folders.FolderNameError:
            ours_ok.append("NO")
    subscriptions.subscribe(ours_md, "INBOX.Work.Sub")
    subscriptions.subscribe(ours_md, "INBOX.Workshop")
    folders.rename_folder(ours_md, "INBOX.Work", "INBOX.Job")
    folders.delete_folder(ours_md, "INBOX.Job")
    subscriptions.unsubscribe(ours_md, "INBOX.Workshop")
    assert ours_ok == real_ok
    assert folders.list_folders(ours_md) == folders.list_folders(real_home / "Maildir") == [
        "INBOX.Job.Sub", "INBOX.Job.Sub.Deep", "INBOX.Résumé", "INBOX.Workshop"]
    # Courier keeps the subscription under the old name after a RENAME; so do we
    assert subscriptions.read(ours_md) == subscriptions.read(real_home / "Maildir") == [
        "INBOX.Work.Sub"]
