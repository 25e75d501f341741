"""Real IMAP clients against our imapd: mbsync (isync) and offlineimap syncing a
multi-folder account both ways, over their "tunnel" (imapd on a pipe, pre-authenticated,
exactly as Courier's imaplogin hands over), and Python's imaplib over a socket."""

from __future__ import annotations

import imaplib
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.integration.imapd_support import IMAPD, ImapdListener, make_maildir, preauth_env
from tests.support import require

MESSAGES = {
    "": [b"Subject: one\nFrom: a@x\n\nbody one\n", b"Subject: two\nFrom: b@x\n\nbody two\n"],
    ".Work": [b"Subject: work\nFrom: c@x\n\nwork body\n"],
    ".Work.Deep": [b"Subject: deep\nFrom: d@x\n\ndeep body\n"],
}


def _server(root: Path) -> Path:
    md = make_maildir(root / "srv" / "Maildir")
    for folder, msgs in MESSAGES.items():
        fd = make_maildir(md / folder) if folder else md
        if folder:
            (fd / "maildirfolder").touch()
        for i, m in enumerate(msgs):
            (fd / "cur" / f"17000000{i:02d}.M{i}P1.h,S={len(m)}:2,").write_bytes(m)
    return md


def _tunnel(md: Path) -> str:
    """A script running imapd on a pipe with the environment a login stage hands over."""
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in preauth_env("u").items())
    script = md.parent / "tunnel"
    script.write_text(f"#!/bin/sh\nexec env -i {env} {IMAPD} {md}\n")
    script.chmod(0o755)
    return str(script)


def _server_files(md: Path, folder: str) -> list[str]:
    d = md / folder if folder else md
    return sorted(os.listdir(d / "cur")) + sorted(os.listdir(d / "new"))


def test_mbsync_two_way(tmp_path):
    mbsync = require("mbsync", "real IMAP client")
    md = _server(tmp_path)
    local = tmp_path / "local"
    local.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(
        f'IMAPStore remote\nTunnel "{_tunnel(md)}"\n\n'
        f"MaildirStore local\nPath {local}/\nInbox {local}/INBOX\nSubFolders Verbatim\n\n"
        "Channel sync\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\n"
        "Expunge Both\nSyncState *\n")

    def sync() -> None:
        r = subprocess.run([mbsync, "-c", str(rc), "-a"], capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr

    sync()
    got = sorted(str(p.parent.parent.relative_to(local)) for p in local.rglob("*,U=*"))
    assert got == ["INBOX", "INBOX", "Work", "Work/Deep"]
    assert len(list((local / "INBOX").glob("*/*,U=*"))) == 2
    # local changes: a new message in Work, \Seen and \Flagged on an INBOX message,
    # one INBOX message deleted
    new = local / "Work" / "cur" / "1800000000.1_1.local:2,S"
    new.write_bytes(b"Subject: from mbsync\n\nlocal body\n")
    first, second = sorted((local / "INBOX").glob("*/*,U=*"))
    first.rename(first.parent.parent / "cur" / (first.name.split(":")[0] + ":2,FS"))
    second.unlink()
    sync()
    assert any("F" in n.split(":2,")[1] and "S" in n.split(":2,")[1]
               for n in _server_files(md, "") if ":2," in n)
    assert len(_server_files(md, "")) == 1
    work = [(md / ".Work" / sub / n) for sub in ("cur", "new")
            for n in os.listdir(md / ".Work" / sub)]
    # (mbsync adds an X-TUID: header of its own to what it uploads)
    assert any(b"Subject: from mbsync\n" in p.read_bytes() and p.read_bytes().endswith(
        b"\n\nlocal body\n") for p in work)
    # a server-side change comes back
    with ImapdListener([str(md)], preauth_env()) as port:
        m = imaplib.IMAP4("127.0.0.1", port)
        m.select("INBOX.Work")
        typ, _ = m.store("1", "+FLAGS", "\\Answered")
        assert typ == "OK"
        m.logout()
    assert any(n.endswith(":2,R") for n in _server_files(md, ".Work"))
    sync()
    assert any(":2,R" in n for n in os.listdir(local / "Work" / "cur"))


def test_offlineimap_two_way(tmp_path):
    offlineimap = require("offlineimap", "real IMAP client")
    md = _server(tmp_path)
    local = tmp_path / "local"
    meta = tmp_path / "meta"
    rc = tmp_path / "offlineimaprc"
    rc.write_text(
        f"[general]\naccounts = a\nmetadata = {meta}\n\n"
        "[Account a]\nlocalrepository = L\nremoterepository = R\n\n"
        f"[Repository L]\ntype = Maildir\nlocalfolders = {local}\n\n"
        f"[Repository R]\ntype = IMAP\npreauthtunnel = {_tunnel(md)}\n")

    def sync() -> None:
        r = subprocess.run([offlineimap, "-c", str(rc), "-o", "-u", "basic"],
                           capture_output=True, timeout=120)
        assert r.returncode == 0, r.stderr + r.stdout

    sync()
    assert sorted(p.name for p in local.iterdir()) == ["INBOX", "INBOX.Work",
                                                       "INBOX.Work.Deep"]
    assert len(list((local / "INBOX").glob("*/*"))) == 2
    msg = next((local / "INBOX.Work.Deep").glob("*/*"))
    assert msg.read_bytes() == MESSAGES[".Work.Deep"][0]
    (local / "INBOX.Work" / "new" / "1800000000_0.1.local").write_bytes(
        b"Subject: from offlineimap\n\nlocal\n")
    one = next(p for p in (local / "INBOX").glob("*/*") if b"body one" in p.read_bytes())
    one.rename(one.parent.parent / "cur" / (one.name.split(":")[0] + ":2,S"))
    sync()
    bodies = [(md / ".Work" / sub / n).read_bytes() for sub in ("cur", "new")
              for n in os.listdir(md / ".Work" / sub)]
    assert b"Subject: from offlineimap\n\nlocal\n" in bodies
    assert any(n.endswith(":2,S") for n in os.listdir(md / "cur"))


def test_imaplib_session(tmp_path):
    md = _server(tmp_path)
    with ImapdListener([str(md)], preauth_env()) as port:
        m = imaplib.IMAP4("127.0.0.1", port)
        typ, data = m.list()
        assert typ == "OK" and len(data) == 3
        assert m.select("INBOX") == ("OK", [b"2"])
        typ, data = m.fetch("1:2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert b"Subject: one" in data[0][1] and b"Subject: two" in data[2][1]
        typ, data = m.search(None, "FROM", "b@x")
        assert data == [b"2"]
        assert m.append("INBOX.Work", "(\\Seen)", None, b"Subject: new\r\n\r\nx\r\n")[0] == "OK"
        assert m.status("INBOX.Work", "(MESSAGES UNSEEN)")[1] == [
            b'"INBOX.Work" (MESSAGES 2 UNSEEN 1)']
        m.logout()


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
