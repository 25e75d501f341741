"""The Maildir under stress: concurrency, crashes and bad input (real processes, real files)."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from courierpy.maildir import folders, names, quota, store
from tests.support import REPO, require, require_root

DELIVERQUOTA = [sys.executable, "-m", "courierpy.cli.deliverquota"]
ENV = dict(os.environ, PYTHONPATH=str(REPO))


# -- concurrency -----------------------------------------------------------------

def _deliverer(md: str, who: int, until: float, out: str, pause: float = 0.0) -> None:
    m = store.Maildir(md)
    ids = []
    n = 0
    while time.time() < until:
        ident = f"{who}-{n}"
        m.deliver(f"X-Id: {ident}\n\nbody\n".encode(), subdir="new", enforce_quota=False)
        ids.append(ident)
        n += 1
        time.sleep(pause)
    Path(out).write_text(json.dumps(ids))


def _flagger(md: str, seed: int, until: float, out: str, pause: float = 0.0) -> None:
    rnd = random.Random(seed)
    m = store.Maildir(md)
    seen = []
    while time.time() < until:
        st = m.scan()
        seen.extend((x.basename, x.uid) for x in st.messages)
        for x in rnd.sample(st.messages, min(len(st.messages), 10)):
            try:
                m.set_flags(x.basename, "".join(rnd.sample("DFRST", rnd.randint(0, 3))))
            except store.MessageGone:
                pass
        time.sleep(pause)
    Path(out).write_text(json.dumps(seen))


def _expunger(md: str, seed: int, until: float, out: str) -> None:
    rnd = random.Random(seed)
    m = store.Maildir(md)
    gone, seen = [], []
    while time.time() < until:
        st = m.scan()
        seen.extend((x.basename, x.uid) for x in st.messages)
        for x in rnd.sample(st.messages, min(len(st.messages), 3)):
            try:
                body = (Path(md) / "cur" / m._current_name(x.basename, refresh=True)).read_bytes()
            except (OSError, store.MessageGone):
                continue
            if m.expunge([x.basename]):
                gone.append(body.split(b"\n", 1)[0].decode()[len("X-Id: "):])
        time.sleep(0.01)
    Path(out).write_text(json.dumps({"gone": gone, "seen": seen}))


def test_concurrent_deliver_flag_expunge(tmp_path: Path) -> None:
    md = folders.create_maildir(tmp_path / "M")
    until = time.time() + 2.5
    ctx = multiprocessing.get_context("fork")
    jobs = []
    for i in range(3):
        jobs.append(ctx.Process(target=_deliverer, args=(str(md), i, until, f"{tmp_path}/d{i}")))
    for i in range(2):
        jobs.append(ctx.Process(target=_flagger, args=(str(md), i, until, f"{tmp_path}/f{i}")))
    jobs.append(ctx.Process(target=_expunger, args=(str(md), 9, until, f"{tmp_path}/x")))
    for j in jobs:
        j.start()
    for j in jobs:
        j.join(30)
        assert j.exitcode == 0
    delivered = [i for k in range(3) for i in json.loads(Path(f"{tmp_path}/d{k}").read_text())]
    x = json.loads(Path(f"{tmp_path}/x").read_text())
    final = store.Maildir(md).scan()
    remaining = [(md / "cur" / m.filename).read_bytes().split(b"\n", 1)[0].decode()[6:]
                 for m in final.messages]
    assert len(delivered) > 50
    assert len(remaining) == len(set(remaining)), "a message was duplicated"
    assert len(x["gone"]) == len(set(x["gone"])) and x["gone"], "expunged twice / never"
    assert set(remaining).isdisjoint(x["gone"])
    assert sorted(remaining + x["gone"]) == sorted(delivered), "a message was lost"
    # UIDs: one per message, never reused, never changed
    seen = [tuple(p) for k in range(2) for p in json.loads(Path(f"{tmp_path}/f{k}").read_text())]
    seen += [tuple(p) for p in x["seen"]] + [(m.basename, m.uid) for m in final.messages]
    uid_of: dict[str, int] = {}
    base_of: dict[int, str] = {}
    for base, uid in seen:
        assert uid_of.setdefault(base, uid) == uid, f"{base} changed UID"
        assert base_of.setdefault(uid, base) == base, f"UID {uid} given twice"
    assert final.uidnext > max(base_of)
    assert sorted(os.listdir(md / "new")) == [] and os.listdir(md / "tmp") == []


# -- crash -------------------------------------------------------------------------

def test_killed_delivery_leaves_no_partial_message(tmp_path: Path) -> None:
    md = folders.create_maildir(tmp_path / "M")
    body = b"Subject: big\n\n" + b"0123456789abcdef\n" * 60000  # ~1 MB
    rnd = random.Random(4)
    for _ in range(12):
        p = subprocess.Popen([*DELIVERQUOTA, str(md)], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
        assert p.stdin is not None
        half = rnd.randint(0, len(body))
        p.stdin.write(body[:half])
        p.stdin.flush()
        if rnd.random() < 0.5:  # sometimes let it finish writing, then kill it anywhere
            try:
                p.stdin.write(body[half:])
                p.stdin.close()
            except BrokenPipeError:
                pass
        time.sleep(rnd.uniform(0, 0.25))
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        if not p.stdin.closed:
            p.stdin.close()
    for sub in ("new", "cur"):
        for n in os.listdir(md / sub):
            assert (md / sub / n).read_bytes() == body, f"partial message {sub}/{n}"
            assert names.parse(n).size == len(body)


# -- bad input -------------------------------------------------------------------

def _dq(*args: str, stdin: bytes = b"x\n", **kw: object) -> subprocess.CompletedProcess[bytes]:
    kw.setdefault("env", ENV)
    return subprocess.run([*DELIVERQUOTA, *args], input=stdin, capture_output=True,
                          timeout=30, **kw)  # type: ignore[call-overload]


def test_missing_maildir_is_temporary_failure(tmp_path: Path) -> None:
    r = _dq(str(tmp_path / "nope"))
    assert r.returncode == 75
    assert r.stderr.decode() == f"{tmp_path}/nope: No such file or directory\n"


def test_unwritable_maildir_is_temporary_failure(tmp_path: Path) -> None:
    md = folders.create_maildir(tmp_path / "M")
    os.chmod(md / "tmp", 0o500)
    os.chmod(md / "new", 0o500)
    try:
        if os.geteuid() == 0:
            os.chmod(tmp_path, 0o755)
            os.chmod(md, 0o755)
            # the venv is not nobody's to execute: start as root, drop, then deliver
            code = ("import os, sys, pwd; from pathlib import Path; "
                    "from courierpy.cli import deliverquota as d; pw = pwd.getpwnam('nobody'); "
                    "os.setgroups([]); os.setgid(pw.pw_gid); os.setuid(pw.pw_uid); "
                    "sys.exit(d.run(sys.argv[1:], Path('/etc/courier')))")
            r = subprocess.run([sys.executable, "-c", code, str(md)], input=b"x\n",
                               capture_output=True, env=ENV, timeout=30, cwd="/")
        else:
            r = _dq(str(md))
    finally:
        os.chmod(md / "tmp", 0o700)
        os.chmod(md / "new", 0o700)
    assert r.returncode == 75 and b"Permission denied" in r.stderr
    assert os.listdir(md / "new") == []


def test_disk_full_is_temporary_failure_and_keeps_old_mail(tmp_path: Path) -> None:
    md = folders.create_maildir(tmp_path / "M")
    quota.set_quota(md, "1000000S")
    assert _dq(str(md), stdin=b"Subject: kept\n\nold\n").returncode == 0
    before = sorted(os.listdir(md / "new"))
    size_before = (md / "maildirsize").read_bytes()

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    r = _dq(str(md), stdin=b"Subject: big\n\n" + b"z" * 100000, preexec_fn=small_disk)
    assert r.returncode == 75, r
    assert b"File too large" in r.stderr
    assert sorted(os.listdir(md / "new")) == before and os.listdir(md / "tmp") == []
    assert (md / "maildirsize").read_bytes() == size_before
    assert (md / "new" / before[0]).read_bytes() == b"Subject: kept\n\nold\n"


def test_over_quota_exit_77_nothing_stored(tmp_path: Path) -> None:
    md = folders.create_maildir(tmp_path / "M")
    quota.set_quota(md, "30S")
    assert _dq(str(md), stdin=b"a" * 20).returncode == 0
    r = _dq(str(md), stdin=b"b" * 20)
    assert (r.returncode, r.stdout, r.stderr) == (77, b"Mail quota exceeded.\n", b"")
    assert len(os.listdir(md / "new")) == 1 and os.listdir(md / "tmp") == []


@pytest.mark.parametrize("damage", [b"", b"\x00\xff garbage\n", b"100S\nnot numbers\n 5",
                                    b"100S\n" + b" 99999999 1\n" * 600])
def test_corrupt_maildirsize_never_blocks_delivery(tmp_path: Path, damage: bytes) -> None:
    md = folders.create_maildir(tmp_path / "M")
    (md / "maildirsize").write_bytes(damage)
    r = _dq(str(md), stdin=b"Subject: ok\n\n")
    assert r.returncode == 0, r
    assert len(os.listdir(md / "new")) == 1


def test_full_tmpfs_like_courier_but_exit_75(tmp_path: Path) -> None:
    """A real full disk (a 64 KB tmpfs in a private mount namespace).

    Courier's deliverquota exits 74 (EX_IOERR) here, which Exim's pipe
    transport, for one, treats as a permanent failure and bounces; we exit 75
    (EX_TEMPFAIL) so that the MTA retries. The message text has Courier's form.
    """
    require_root("mounting a tiny tmpfs")
    unshare = require("unshare")
    real = require("/usr/bin/deliverquota")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    py = f"env PYTHONPATH={REPO} {sys.executable} -m courierpy.cli"
    script = f"""
        mount -t tmpfs -o size=64k tmpfs {mnt} || exit 99
        for who in ours real; do
          if [ $who = ours ]; then dq="{py}.deliverquota"; else dq={real}; fi
          {py}.maildirmake {mnt}/$who
          echo small | $dq {mnt}/$who; echo "$who small $?"
          head -c 200000 /dev/zero | $dq {mnt}/$who 2>{mnt}/$who.err; echo "$who big $?"
          echo "$who err $(sed 's/[0-9]*[.]M[0-9]*P[0-9]*[.].*:/TMP:/' {mnt}/$who.err)"
          echo "$who new $(ls {mnt}/$who/new | wc -l) tmp $(ls {mnt}/$who/tmp | wc -l)"
        done
    """
    out = subprocess.run([unshare, "-m", "sh", "-c", script], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out
    lines = {}
    for line in out.stdout.splitlines():
        who, key, value = line.split(" ", 2)
        lines[f"{who} {key}"] = value
    assert lines["ours small"] == lines["real small"] == "0"
    assert (lines["real big"], lines["ours big"]) == ("74", "75")
    assert lines["ours err"] == f"{mnt}/ours/tmp/TMP: No space left on device"
    assert lines["real err"] == f"{mnt}/real/tmp/TMP: No space left on device"
    assert lines["ours new"] == lines["real new"] == "1 tmp 0"
