"""Keywords and ACLs written by our library, as Courier's imapd shows them, and back.

The real ``/usr/bin/imapd`` runs pre-authenticated on a pipe, through the
shared harness tests/oracle/courier_imapd.py, in a throwaway home.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from courierpy.maildir import acl, keywords
from tests.oracle.courier_imapd import CourierImapd
from tests.support import require

pytestmark = pytest.mark.oracle

MSGS = {
    "1000.M1P1.host,S=19": ("cur", ":2,S", b"Subject: a\n\nhello\n"),
    "1001.M2P1.host,S=19": ("cur", ":2,", b"Subject: b\n\nhello\n"),
    "1002.M3P1.host,S=19": ("new", "", b"Subject: c\n\nhello\n"),
}


def imapd(home: Path, commands: list[str], user: str = "erin") -> list[str]:
    """One real imapd session running *commands*: every response line, in order."""
    out: list[str] = []
    with CourierImapd(home, user=user) as imap:
        for command in commands:
            untagged, tagged = imap.command(command)
            out += [*untagged, tagged]
    return out


@pytest.fixture
def home(tmp_path: Path) -> Path:
    maildirmake = require("/usr/bin/maildirmake")
    h = tmp_path / "home"
    h.mkdir()
    subprocess.run([maildirmake, str(h / "Maildir")], check=True)
    subprocess.run([maildirmake, "-f", "Sent", str(h / "Maildir")], check=True)
    for base, (sub, info, data) in MSGS.items():
        (h / "Maildir" / sub / (base + info)).write_bytes(data)
    return h


def _flags(lines: list[str]) -> dict[int, set[str]]:
    out = {}
    for line in lines:
        m = re.match(r"\* \d+ FETCH \(UID (\d+) FLAGS \(([^)]*)\)\)", line)
        if m:
            out[int(m.group(1))] = set(m.group(2).split()) - {"\\Recent"}
    return out


def test_our_keywords_show_in_imapd_and_its_stores_reach_us(home: Path):
    md = home / "Maildir"
    keywords.set_keywords(md, "1000.M1P1.host,S=19", ["$Label1", "Junk"])
    keywords.update_keywords(md, "1001.M2P1.host,S=19", add=["Work", "later"])
    keywords.update_keywords(md, "1001.M2P1.host,S=19", remove=["LATER"])
    keywords.set_keywords(md, "gone.M9P9.host,S=1", ["Orphan"])  # no such message
    out = imapd(home, ["SELECT INBOX", "FETCH 1:* (UID FLAGS)"])
    assert _flags(out) == {1: {"\\Seen", "$Label1", "Junk"}, 2: {"Work"}, 3: set()}
    # and the other way: imapd stores, our reader sees (only messages that exist)
    out = imapd(
        home,
        [
            "SELECT INBOX",
            "UID STORE 1 -FLAGS (Junk)",
            "UID STORE 3 +FLAGS (NonJunk $Label2)",
            "UID STORE 2 FLAGS (\\Flagged)",
        ],
    )
    present = {b for b in MSGS}
    got = keywords.read_keywords(md, present=present)
    assert got == {
        "1000.M1P1.host,S=19": {"$Label1"},
        "1002.M3P1.host,S=19": {"$Label2", "NonJunk"},
    }
    # a second imapd session agrees with what we read
    assert _flags(imapd(home, ["SELECT INBOX", "FETCH 1:* (UID FLAGS)"])) == {
        1: {"\\Seen", "$Label1"},
        2: {"\\Flagged"},
        3: {"$Label2", "NonJunk"},
    }


def test_our_acls_show_in_imapd_and_its_setacl_reaches_us(home: Path):
    md = home / "Maildir"
    acl.set_acl(md, "INBOX.Sent", "user=frank", "lr")
    acl.set_acl(md, "INBOX.Sent", "anyone", "l")
    acl.set_acl(md, "INBOX.Sent", "-user=bob", "l")
    out = imapd(home, ["GETACL INBOX.Sent", "MYRIGHTS INBOX.Sent", "GETACL INBOX"])
    assert (
        '* ACL "INBOX.Sent" "owner" "acdilrsw" "administrators" "acdilrsw" "frank" "lr" '
        '"anyone" "l" "-bob" "l"'
    ) in out
    assert '* MYRIGHTS "INBOX.Sent" "acdilrsw"' in out
    assert '* ACL "INBOX" "owner" "acdilrsw" "administrators" "acdilrsw"' in out
    # frank, an ordinary user, through the owner's eyes: what imapd would grant him
    assert acl.compute_rights(acl.read_acl(md, "INBOX.Sent"), ["user=frank"]) == "lr"
    assert acl.compute_rights(acl.read_acl(md, "INBOX.Sent"), ["user=bob"]) == ""
    imapd(
        home,
        ["SETACL INBOX.Sent frank lrsw", "DELETEACL INBOX.Sent anyone", "CREATE INBOX.Sent.Sub"],
    )
    entries = acl.read_acl(md, "INBOX.Sent")
    assert acl.Entry("user=frank", "lrsw") in entries
    assert all(e.identifier != "anyone" for e in entries)
    # CREATE copied the parent's ACL into the new folder, and we read it as such
    assert acl.read_acl(md, "INBOX.Sent.Sub") == entries
    assert (md / ".Sent.Sub" / "courierimapacl").read_bytes() == acl.format_acl(entries)


def test_imap_view_of_rights_matches_getacl(home: Path):
    md = home / "Maildir"
    samples = ["l", "e", "t", "x", "et", "etx", "c", "aceilrstwx", "eklrtx", "lpr", "r"]
    for i, rights in enumerate(samples):
        acl.set_acl(md, "INBOX.Sent", f"user=u{i}", rights)
    acl.set_acl(md, "INBOX.Sent", "-user=neg", "r")
    (line,) = [x for x in imapd(home, ["GETACL INBOX.Sent"]) if x.startswith("* ACL")]
    want = '* ACL "INBOX.Sent"' + "".join(
        f' "{acl.to_imap_identifier(e.identifier)}" "{acl.to_imap_rights(e.rights)}"'
        for e in acl.read_acl(md, "INBOX.Sent")
    )
    assert line == want
    assert acl.from_imap_rights("lrd") == "elrtx"
    assert acl.to_imap_rights(acl.from_imap_rights("acdilrsw")) == "acdilrsw"


def test_keyword_order_in_flags_and_fetch(home: Path):
    """* FLAGS lists the folder's keywords in hash order; FETCH FLAGS in byte order."""
    md = home / "Maildir"
    words = ["zeta", "Alpha", "$Label1", "mid", "Junk", "bb"]
    keywords.set_keywords(md, "1000.M1P1.host,S=19", words)
    keywords.set_keywords(md, "1001.M2P1.host,S=19", ["Other", "zeta"])
    out = imapd(home, ["SELECT INBOX", "FETCH 1 (FLAGS)"])
    used = keywords.hash_order({*words, "Other"})
    assert f"* FLAGS ({' '.join(used)} \\Draft \\Answered" in out[0]
    fetched = [line for line in out if line.startswith("* 1 FETCH")]
    assert fetched == [f"* 1 FETCH (FLAGS (\\Seen \\Recent {' '.join(sorted(words))}))"]
