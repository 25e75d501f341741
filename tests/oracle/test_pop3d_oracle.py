"""Differential: our pop3d against the REAL courierpop3d on copies of one Maildir.

Both run pre-authenticated over pipes, as Courier's courierpop3login starts
courierpop3d (``AUTHENTICATED`` in the environment, cwd = home, argv[1] =
Maildir). Replies must be byte-identical, except the uidv in UIDLs: it is
the clock second at which the ``courierpop3dsizelist`` was created, so two
runs may straddle a second; it is normalized on both sides. The Maildir
afterwards must hold the same files, the same courierpop3dsizelist (uidv
normalized) and the same maildirsize.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support import REPO, require

pytestmark = pytest.mark.oracle

COURIER_POP3D = "/usr/lib/courier/courier/courierpop3d"
OUR_POP3D = str(REPO / ".venv" / "bin" / "pop3d")

MESSAGES = {
    "new/1700000000.M1P1.host,S=60": b"From: a@b\nSubject: one\n\nline1\n.dot line\n..two\nline3\n",
    "cur/1700000001.M1P1.host,S=21:2,F": b"Subject: two\n\nshort\n",
    "new/1700000002.M1P1.host": b"Subject: three\n\nbody3\nmore\n",
    "cur/1700000003.M2P1.host:2,RS": b"Subject: crlf\r\nX: y\r\n\r\nbody\r\nlast",
    "cur/1700000003.M1P1.host:2,": b"Subject: no blank line",
    "new/1699999999.M9P9.host,S=40": b"Subject: caf\xc3\xa9\nFrom: a@b\n\nbody \xc3\xa9\n",
    "cur/1700000010.M1P1.host,S=13:2,": b"Subject: x\n\n\n",
    "new/1700000011.M1P1.host": b"\nbody without header\n.\n",
}
# Six body lines, for TOP n 5 / TOP n 2 cut points.
MESSAGES["new/1700000012.M1P1.host"] = b"Subject: long\nTo: t@x\n\n" + b"".join(
    b"line %d\n" % i for i in range(1, 9))

UIDV_RE = re.compile(rb"(UID\d+-)\d+")


def make_home(root: Path, *, quota: bool = True) -> Path:
    home = root
    md = home / "Maildir"
    for sub in ("tmp", "new", "cur"):
        (md / sub).mkdir(parents=True, exist_ok=True)
    for rel, data in MESSAGES.items():
        (md / rel).write_bytes(data)
    if quota:
        (md / "maildirsize").write_bytes(b"100000S,100C\n         300           10\n")
    return home


def run(prog: str, home: Path, script: bytes, **env: str) -> bytes:
    environ = {"PATH": "/usr/bin:/bin", "AUTHENTICATED": "erin",
               "TCPREMOTEIP": "127.0.0.1", "TCPREMOTEPORT": "1", **env}
    args = [prog, "Maildir"] if prog == COURIER_POP3D else [prog, "--config-dir", "/nonexistent",
                                                            "Maildir"]
    proc = subprocess.run(args, input=script, cwd=home, env=environ, capture_output=True,
                          timeout=30, check=False)
    return proc.stdout


def norm(data: bytes) -> bytes:
    return UIDV_RE.sub(rb"\1UIDV", data)


def state(home: Path) -> dict[str, bytes]:
    md = home / "Maildir"
    out: dict[str, bytes] = {}
    for dirpath, _, files in os.walk(md):
        for f in files:
            p = Path(dirpath) / f
            rel = str(p.relative_to(md))
            if rel.startswith("tmp/"):
                out[rel] = b""
                continue
            data = p.read_bytes()
            if f == "courierpop3dsizelist":
                data = re.sub(rb"(?m)^(/3 \d+ )\d+$", rb"\1UIDV", data)
                data = re.sub(rb" (\d+):\d+:(\d)$", rb" \1:UIDV:\2", data, flags=re.M)
            out[rel] = data
    return out


@pytest.fixture
def homes(tmp_path: Path) -> tuple[Path, Path]:
    require(COURIER_POP3D, "the real Courier POP3 server (courier-pop)")
    return make_home(tmp_path / "courier"), make_home(tmp_path / "ours")


def both(homes: tuple[Path, Path], script: bytes, **env: str) -> tuple[bytes, bytes]:
    theirs = run(COURIER_POP3D, homes[0], script, **env)
    ours = run(OUR_POP3D, homes[1], script, **env)
    return norm(theirs), norm(ours)


READ_SCRIPT = b"".join(
    line + b"\r\n" for line in [
        b"STAT", b"LIST", b"UIDL", b"CAPA", b"NOOP",
        *[b"LIST %d" % i for i in range(0, 11)],
        *[b"UIDL %d" % i for i in range(0, 11)],
        *[b"TOP %d 0" % i for i in range(1, 10)],
        *[b"TOP %d 5" % i for i in range(1, 10)],
        *[b"TOP %d 2" % i for i in range(1, 10)],
        *[b"RETR %d" % i for i in range(1, 10)],
        b"TOP 1", b"TOP 1 x", b"TOP 9 -1", b"LIST abc", b"LIST 1 2", b"RETR", b"DELE",
        b"uidl 2", b"list", b"", b"   ", b"XYZ", b"LAST", b"APOP erin 0123", b"USER erin",
        b"PASS x", b"STLS", b"AUTH", b"AUTH PLAIN", b"UTF8", b"STAT",
    ])


def test_read_commands_identical(homes: tuple[Path, Path]) -> None:
    theirs, ours = both(homes, READ_SCRIPT + b"QUIT\r\n")
    assert b"octets follow" in theirs  # the oracle answered at all
    assert ours.split(b"\r\n") == theirs.split(b"\r\n")
    assert state(homes[1]) == state(homes[0])


@pytest.mark.parametrize("quit_", [True, False], ids=["quit", "disconnect"])
def test_dele_state_identical(homes: tuple[Path, Path], quit_: bool) -> None:
    script = b"DELE 1\r\nDELE 3\r\nDELE 3\r\nRETR 3\r\nSTAT\r\nLIST\r\nRSET\r\nSTAT\r\n" \
             b"DELE 2\r\nDELE 5\r\nDELE 9\r\nRETR 4\r\nSTAT\r\nUIDL\r\n"
    if quit_:
        script += b"QUIT\r\n"
    theirs, ours = both(homes, script)
    assert ours == theirs
    before = state(homes[0])
    assert state(homes[1]) == before
    if quit_:
        assert len([k for k in before if k.startswith("cur/")]) == 6
    else:
        assert len([k for k in before if k.startswith("cur/")]) == 9


def test_access_options_identical(homes: tuple[Path, Path]) -> None:
    for options, tls in [("disablepop3=1", "0"), ("disableinsecurepop3=1", "0"),
                         ("disableinsecurepop3=1", "1"), ("disablepop3=0", "0")]:
        theirs, ours = both(homes, b"STAT\r\nQUIT\r\n", OPTIONS=options, POP3_TLS=tls)
        assert ours == theirs, options


def _uidls(data: bytes) -> list[bytes]:
    lines = data.split(b"\r\n")
    start = lines.index(b"+OK") + 1
    return lines[start:lines.index(b".", start)]


@pytest.mark.parametrize("first", ["courier", "ours"])
def test_uidls_survive_switching_servers(tmp_path: Path, first: str) -> None:
    """A Maildir served by one server, then by the other: same UIDLs, no re-download."""
    require(COURIER_POP3D)
    home = make_home(tmp_path / "h")
    progs = [COURIER_POP3D, OUR_POP3D]
    if first == "ours":
        progs.reverse()
    one = run(progs[0], home, b"UIDL\r\nDELE 2\r\nQUIT\r\n")
    (home / "Maildir/new/1800000000.M1P1.host,S=12").write_bytes(b"Subject: n\n\n")
    two = run(progs[1], home, b"UIDL\r\nQUIT\r\n")
    three = run(progs[0], home, b"UIDL\r\nQUIT\r\n")
    first_uidls = _uidls(one)
    kept = [u for u in first_uidls if not u.startswith(b"2 ")]
    second = [u.split(b" ", 1)[1] for u in _uidls(two)]
    assert [u.split(b" ", 1)[1] for u in kept] == second[:-1]
    assert second[-1] not in [u.split(b" ", 1)[1] for u in first_uidls]
    assert _uidls(three) == _uidls(two)


def test_old_sizelist_formats_identical(homes: tuple[Path, Path]) -> None:
    for home in homes:
        (home / "Maildir/courierpop3dsizelist").write_bytes(
            b"/2 20 1600000000\n1700000000.M1P1.host,S=60:2, 99 7:1600000000\n"
            b"1700000002.M1P1.host:2, 30 9:1500000000\n")
        for rel in MESSAGES:
            if rel.startswith("new/"):
                src = home / "Maildir" / rel
                src.rename(home / "Maildir" / "cur" / (src.name + ":2,"))
    theirs = run(COURIER_POP3D, homes[0], b"LIST\r\nUIDL\r\nQUIT\r\n")
    ours = run(OUR_POP3D, homes[1], b"LIST\r\nUIDL\r\nQUIT\r\n")
    assert b"UID7-1600000000" in theirs
    assert ours == theirs
    assert state(homes[1]) == state(homes[0])
    for home in homes:  # a /3 list with a flag change only: not rewritten
        ino = (home / "Maildir/courierpop3dsizelist").stat().st_ino
        cur = home / "Maildir/cur"
        name = next(n for n in os.listdir(cur) if n.startswith("1700000010"))
        (cur / name).rename(cur / (name + "F"))
        run(OUR_POP3D if home == homes[1] else COURIER_POP3D, home, b"QUIT\r\n")
        assert (home / "Maildir/courierpop3dsizelist").stat().st_ino == ino
    garbage = b"not a list\n"
    for home in homes:
        (home / "Maildir/courierpop3dsizelist").write_bytes(garbage)
    theirs, ours = both(homes, b"UIDL\r\nQUIT\r\n")
    assert ours == theirs
    assert state(homes[1]) == state(homes[0])
