"""The virtual shared index, our reading against what Courier's imapd lists.

A two-level index (groups e and f) with ACL-shared folders, an account
without shared folders, one whose maildir is missing, one with a ``.`` in its
name and lines Courier rejects.  For the user frank, every folder whose ACL
gives him ``l`` must appear under ``#shared.<group>.<account>.<folder>``;
our SharedIndex and ACL code must predict exactly imapd's LIST, with and
without IMAP_SHAREDMUNGENAMES.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from courierpy.maildir import acl, shared
from tests.oracle.courier_imapd import CourierImapd
from tests.support import require

pytestmark = pytest.mark.oracle


@pytest.fixture
def site(tmp_path: Path) -> Path:
    maildirmake = require("/usr/bin/maildirmake")
    vmail = tmp_path / "vmail"
    vmail.mkdir()
    for user in ("erin", "frank", "first.last", "gina"):
        md = vmail / user
        subprocess.run([maildirmake, str(md)], check=True)
        for folder in ("Sent", "Work.Sub"):
            subprocess.run([maildirmake, "-f", folder, str(md)], check=True)
    acl.set_acl(vmail / "erin", "INBOX.Sent", "user=frank", "lr")
    acl.set_acl(vmail / "erin", "INBOX.Work.Sub", "anyone", "l")
    acl.set_acl(vmail / "erin", "INBOX.Work.Sub", "-user=frank", "l")
    acl.set_acl(vmail / "first.last", "INBOX.Sent", "anyone", "lr")
    acl.set_acl(vmail / "first.last", "INBOX.Work", "group=staff", "lr")
    idx = tmp_path / "shared"
    idx.mkdir()
    (idx / "index").write_text("# groups\ne\t*\tindexe\nf\t*\tindexf\n")
    (idx / "indexe").write_text(
        f"erin\t5000\t5000\t{vmail}\t{vmail / 'erin'}\n"
        f"gina\t5000\t5000\t{vmail}\t{vmail / 'gina'}\n"
        "ghost\t5000\t5000\t/nonexistent\n"
    )
    (idx / "indexf").write_text(
        f"frank\t5000\t5000\t{vmail}\t{vmail / 'frank'}\n"
        f"first.last\t5000\t5000\t{vmail}\tfirst.last\n"
        f"rooted\t0\t0\t{vmail}\t{vmail / 'first.last'}\n"
    )
    return tmp_path


def predicted(site: Path, user: str, munge: bool) -> set[str]:
    """The shared folders *user* can see, by our index and ACL code."""
    out = set()
    index = shared.SharedIndex(site / "shared" / "index", munge=munge)
    for path, account in index.accounts():
        md = account.maildir_path
        for entry in sorted(md.iterdir()):
            if not entry.name.startswith(".") or not (entry / "cur").is_dir():
                continue
            folder = "INBOX" + entry.name
            rights = acl.compute_rights(acl.read_acl(md, folder), [f"user={user}"])
            if "l" in rights:
                names = [shared.munge_name(p, munge) for p in entry.name[1:].split(".")]
                out.add(".".join(["#shared", *path, *names]))
    return out


@pytest.mark.parametrize("munge", [False, True])
def test_shared_folders_listed_as_we_predict(site: Path, munge: bool):
    want = predicted(site, "frank", munge)
    assert "#shared.e.erin.Sent" in want and "#shared.e.erin.Work.Sub" not in want
    env = {
        "IMAP_SHAREDINDEXFILE": str(site / "shared" / "index"),
        "IMAP_SHAREDMUNGENAMES": "1" if munge else "0",
    }
    with CourierImapd(site / "vmail", maildir="frank", user="frank", extra_env=env) as imap:
        untagged, _ = imap.command('LIST "" "#shared.*"')
    got = set()
    for line in untagged:
        m = re.match(r'\* LIST \(([^)]*)\) "\." "(.*)"$', line)
        assert m, line
        if "\\Noselect" not in m.group(1):
            got.add(m.group(2).replace("\\\\", "\\"))
    assert got == want


def test_sharable_maildirs_listed_as_we_predict(tmp_path: Path):
    """Filesystem sharing: shared-maildirs nicknames as imapd's ``shared.`` namespace."""
    maildirmake = require("/usr/bin/maildirmake")
    pub = tmp_path / "pub"
    subprocess.run([maildirmake, "-S", str(pub)], check=True)
    subprocess.run([maildirmake, "-s", "write", "-f", "Weekly", str(pub)], check=True)
    subprocess.run([maildirmake, "-s", "read", "-f", "Read.Only", str(pub)], check=True)
    subprocess.run([maildirmake, str(tmp_path / "u")], check=True)
    shared.add_shared_maildir(tmp_path / "u", "news", str(pub))
    want = set()
    for s in shared.shared_maildirs_for(tmp_path / "u"):  # and /etc/courier/maildirshared
        for entry in Path(s.path).iterdir():
            if entry.name.startswith(".") and (entry / "cur").is_dir():
                want.add(f"shared.{s.nick}{entry.name}")
    assert {"shared.news.Weekly", "shared.news.Read.Only"} <= want
    with CourierImapd(tmp_path, maildir="u", user="u") as imap:
        untagged, _ = imap.command('LIST "" "shared.*"')
    got = {
        m.group(2)
        for line in untagged
        if (m := re.match(r'\* LIST \(([^)]*)\) "\." "(.*)"$', line))
        and "Noselect" not in m.group(1)
    }
    assert got == want


def test_sharedgroup_option_selects_another_top_index(site: Path):
    (site / "shared" / "index2").write_text("f\t*\tindexf\n")
    top = shared.index_file_for("disableshared=0,sharedgroup=2", site / "shared" / "index")
    assert top == site / "shared" / "index2"
    index = shared.SharedIndex(top)
    assert sorted(index.children()) == ["f"]
    want = {
        ".".join(["#shared", *path, "Sent"]) for path, _ in index.accounts() if path[-1] != "frank"
    }
    env = {
        "IMAP_SHAREDINDEXFILE": str(site / "shared" / "index"),
        "OPTIONS": "disableshared=0,sharedgroup=2",
    }
    with CourierImapd(site / "vmail", maildir="frank", user="frank", extra_env=env) as imap:
        untagged, _ = imap.command('LIST "" "#shared.*"')
    got = {
        m.group(2)
        for line in untagged
        if (m := re.match(r'\* LIST \(([^)]*)\) "\." "(.*)"$', line))
        and "Noselect" not in m.group(1)
    }
    assert got == want == {"#shared.f.first last.Sent"}
