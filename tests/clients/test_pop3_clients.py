"""Real POP3 clients against our pop3d on loopback: every message, byte for byte.

fetchmail (keep and delete modes), getmail6 and Python's poplib log in
through our authdaemond (tests/clients/pop3_listener.py) and download a
Maildir of varied messages (dot lines, no final newline, 8-bit, binary-ish).
"""

from __future__ import annotations

import os
import poplib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients.pop3_listener import Pop3Listener, wait_children
from tests.instance import Instance, deliver, make_maildir
from tests.support import require

BODIES = [
    b"From: a@example.com\nTo: erin@example.com\nSubject: one\n\nline1\n.dot line\n..\nend\n",
    b"Subject: caf\xc3\xa9\nFrom: b@example.com\n\nbody \xc3\xa9\n" + b"x" * 1500 + b"\n",
    b"Subject: three\nFrom: c@example.com\n\n" + b"".join(b"line %d\n" % i for i in range(2000)),
    b"Subject: four\nFrom: d@example.com\n\n.\n",
]


@pytest.fixture
def inst(instance: Instance) -> Iterator[Instance]:
    erin = instance.add_user("erin", "erinpw")
    for i, body in enumerate(BODIES):
        deliver(erin.maildir, body, seq=i)
        time.sleep(0.002)
    instance.make_userdb()
    instance.set_config("pop3d-ssl", POP3_STARTTLS="NO")
    # byte for byte: no wrapping of the UTF-8 message for these non-UTF8 clients
    # (test_poplib_unicode_wrapping covers it)
    instance.set_config("pop3d", MIME_UNICODE_MESSAGE_TYPE="")
    with instance.start_authdaemond():
        yield instance


def crlf(body: bytes) -> bytes:
    return body.replace(b"\n", b"\r\n")


def test_poplib(inst: Instance) -> None:
    with Pop3Listener(inst) as port:
        p = poplib.POP3("127.0.0.1", port, timeout=10)
        p.user("erin")
        p.pass_("erinpw")
        count, size = p.stat()
        assert count == len(BODIES) and size == sum(len(crlf(b)) for b in BODIES)
        uidls = p.uidl()[1]
        assert len(set(uidls)) == len(BODIES)
        for i, body in enumerate(BODIES, 1):
            _, lines, octets = p.retr(i)
            assert b"\n".join(lines) + b"\n" == body
        p.dele(1)
        p.quit()
    assert len(os.listdir(inst.users["erin"].maildir / "cur")) == len(BODIES) - 1


def _received(maildir: Path) -> list[bytes]:
    out = []
    for sub in ("new", "cur"):
        for name in sorted(os.listdir(maildir / sub)):
            out.append((maildir / sub / name).read_bytes())
    return out


def _strip_added_headers(msg: bytes) -> bytes:
    """Drop the Received:/Delivered-To:/Return-Path: lines a client puts on top."""
    lines = msg.split(b"\n")
    while lines and (lines[0].startswith((b"Received:", b"Delivered-To:", b"Return-Path:",
                                          b"X-getmail", b"\t", b" "))):
        lines.pop(0)
    return b"\n".join(lines)


@pytest.mark.parametrize("keep", [True, False], ids=["keep", "delete"])
def test_fetchmail(inst: Instance, tmp_path: Path, keep: bool) -> None:
    fetchmail = require("fetchmail")
    out = tmp_path / "out"
    out.mkdir()
    mda = tmp_path / "mda.sh"
    mda.write_text(f'#!/bin/sh\ncat > "{out}/msg.$$.$(date +%s%N)"\n')
    mda.chmod(0o755)
    rc = tmp_path / "fetchmailrc"
    with Pop3Listener(inst) as port:
        rc.write_text(
            f"poll 127.0.0.1 service {port} protocol pop3 uidl auth password\n"
            f"  user erin password erinpw is erin here {'keep' if keep else 'nokeep'}\n"
            f"  sslproto '' mda \"{mda}\"\n")
        rc.chmod(0o600)
        env = dict(os.environ, HOME=str(tmp_path), FETCHMAILHOME=str(tmp_path))
        proc = subprocess.run([fetchmail, "-f", str(rc), "-N", "--nosyslog", "-a"],
                              env=env, capture_output=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        got = sorted(_strip_added_headers(p.read_bytes()) for p in out.iterdir())
        assert got == sorted(BODIES)
    cur = os.listdir(inst.users["erin"].maildir / "cur")
    assert len(cur) == (len(BODIES) if keep else 0)


def test_getmail6(inst: Instance, tmp_path: Path) -> None:
    getmail = require("getmail")
    dest = tmp_path / "dest"
    make_maildir(dest)
    gdir = tmp_path / "getmail"
    gdir.mkdir()
    lst = Pop3Listener(inst)
    with lst as port:
        (gdir / "getmailrc").write_text(
            "[retriever]\ntype = SimplePOP3Retriever\nserver = 127.0.0.1\n"
            f"port = {port}\nusername = erin\npassword = erinpw\n\n"
            "[destination]\ntype = MDA_external\npath = /bin/sh\n"
            f"arguments = (\"-c\", \"cat > {dest}/new/msg.$$\")\n"
            "allow_root_commands = true\n\n"
            "[options]\nread_all = true\ndelete = false\nverbose = 0\n"
            "delivered_to = false\nreceived = false\n")
        proc = subprocess.run([getmail, "--getmaildir", str(gdir), "--rcfile", "getmailrc"],
                              capture_output=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        wait_children(lst)
    got = sorted(_strip_added_headers(m) for m in _received(dest))
    assert got == sorted(BODIES)


def test_poplib_unicode_wrapping(inst: Instance) -> None:
    """With MIME_UNICODE_MESSAGE_TYPE, a client that did not say UTF8 gets Courier's wrapper."""
    inst.set_config("pop3d", MIME_UNICODE_MESSAGE_TYPE="message/global")
    with Pop3Listener(inst) as port:
        p = poplib.POP3("127.0.0.1", port, timeout=10)
        p.user("erin")
        p.pass_("erinpw")
        got = [b"\n".join(p.retr(i)[1]) + b"\n" for i in range(1, len(BODIES) + 1)]
        wrapped = [m for m in got if m.startswith(b"From: Mail Delivery Subsystem")]
        assert len(wrapped) == 1  # only the message with an 8-bit header
        assert wrapped[0].startswith(b"From: Mail Delivery Subsystem <postmaster>\n"
                                     b"Subject: Cannot display Unicode content\n")
        assert b"Content-Type: message/global\n\n" + BODIES[1] in wrapped[0]
        assert sorted(m for m in got if m not in wrapped) == sorted(
            b for i, b in enumerate(BODIES) if i != 1)  # ASCII headers: as they are
        p.quit()
        p = poplib.POP3("127.0.0.1", port, timeout=10)
        p.utf8()
        p.user("erin")
        p.pass_("erinpw")
        got = [b"\n".join(p.retr(i)[1]) + b"\n" for i in range(1, len(BODIES) + 1)]
        assert sorted(got) == sorted(BODIES)
        p.quit()
