"""mbox2maildir as a process: a few thousand generated messages, trees, bad input."""

from __future__ import annotations

import os
import pty
import re
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from courierpy.maildir import folders, names
from tests.support import REPO
from tests.unit.test_mbox import WANT_FLAGS, generate, write_mboxrd

MBOX2MAILDIR = [sys.executable, "-m", "courierpy.cli.mbox2maildir"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [*MBOX2MAILDIR, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def stored(folder: Path) -> dict[bytes, tuple[str, str, bytes, float]]:
    """Message-ID → (subdir, flags, content, mtime) of every message in *folder*."""
    out = {}
    for sub in ("new", "cur"):
        for entry in os.scandir(folder / sub):
            data = Path(entry.path).read_bytes()
            mid = re.search(rb"^Message-ID: (.*)$", data, re.M)
            assert mid, entry.name
            parsed = names.parse(entry.name)
            assert parsed.size == len(data)
            out[mid.group(1)] = (sub, names.flags_of(entry.name), data, entry.stat().st_mtime)
    return out


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    return folders.create_maildir(tmp_path / "Maildir")


def test_thousands_of_messages_keep_bytes_flags_and_dates(tmp_path: Path, maildir: Path):
    messages = generate(seed=11, count=2500)
    mbox = tmp_path / "big.mbox"
    mbox.write_bytes(write_mboxrd(messages))
    p = run(str(mbox), str(maildir))
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""  # not a terminal: no progress bar
    total = sum(len(m[0]) for m in messages)
    assert p.stdout == (
        f"mbox2maildir: imported 2500 messages ({total} bytes) from 1 mbox file into 1 folder\n"
    )
    got = stored(maildir)
    assert len(got) == len(messages)
    for content, date, status, xstatus in messages:
        mid = re.search(rb"^Message-ID: (.*)$", content, re.M).group(1)
        sub, flags, data, mtime = got[mid]
        assert data == content
        assert mtime == date
        want = ({"S"} if "R" in status else set()) | {WANT_FLAGS[c] for c in xstatus}
        assert flags == "".join(sorted(want))
        assert sub == ("cur" if ("O" in status or want) else "new")
    assert os.listdir(maildir / "tmp") == []


def test_directory_tree_becomes_folders(tmp_path: Path, maildir: Path):
    tree = tmp_path / "Mail"
    (tree / "lists").mkdir(parents=True)
    (tree / "sent").write_bytes(write_mboxrd(generate(seed=1, count=3)))
    (tree / "lists" / "python.org").write_bytes(write_mboxrd(generate(seed=2, count=4)))
    (tree / "lists" / "empty").write_bytes(b"")
    (tree / ".hidden").write_bytes(b"junk")
    (tree / "notes.txt").write_bytes(b"not mail\n")
    p = run("--folder", "Archive", str(tree), str(maildir))
    assert p.returncode == 0, p.stderr
    assert "notes.txt: not an mbox file, skipped" in p.stderr
    assert p.stdout.startswith("mbox2maildir: imported 7 messages")
    assert p.stdout.endswith("from 2 mbox files into 2 folders\n")
    assert len(stored(maildir / ".Archive.sent")) == 3
    assert len(stored(maildir / ".Archive.lists.python_org")) == 4
    assert (maildir / ".Archive.sent" / "maildirfolder").exists()
    assert stored(maildir) == {}


def test_into_one_folder_then_more_mboxes_into_inbox(tmp_path: Path, maildir: Path):
    a = tmp_path / "a"
    b = tmp_path / "b"
    a.write_bytes(write_mboxrd(generate(seed=5, count=2)))
    b.write_bytes(write_mboxrd(generate(seed=6, count=3)))
    assert run("--folder", "INBOX.Old", str(a), str(maildir)).returncode == 0
    assert len(stored(maildir / ".Old")) == 2
    p = run(str(a), str(b), str(maildir))
    assert p.returncode == 0 and len(stored(maildir)) == 5
    assert "from 2 mbox files into 1 folder\n" in p.stdout


def test_progress_bar_on_a_terminal(tmp_path: Path, maildir: Path):
    mbox = tmp_path / "m"
    mbox.write_bytes(write_mboxrd(generate(seed=3, count=300)))
    master, slave = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="80")
    with subprocess.Popen(
        [*MBOX2MAILDIR, str(mbox), str(maildir)],
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
    ) as proc:
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the other side is closed
                break
            if not chunk:
                break
            seen += chunk
        out = proc.stdout.read()
    os.close(master)
    assert proc.returncode == 0
    assert b"Importing" in seen and b"100%" in seen
    assert out.startswith(b"mbox2maildir: imported 300 messages")


def test_malformed_and_empty_mboxes_are_named(tmp_path: Path, maildir: Path):
    bad = tmp_path / "bad.mbox"
    bad.write_bytes(b"Subject: no From_ line\n\nbody\n")
    p = run(str(bad), str(maildir))
    assert p.returncode == 65
    assert f"mbox2maildir: {bad}:1: not an mbox file" in p.stderr
    assert "imported 0 messages" in p.stdout
    empty = tmp_path / "empty.mbox"
    empty.write_bytes(b"")
    p = run(str(empty), str(maildir))
    assert p.returncode == 65 and f"{empty}:1: empty mbox file" in p.stderr
    assert stored(maildir) == {}


def test_missing_inputs(tmp_path: Path, maildir: Path):
    p = run(str(tmp_path / "nope"), str(maildir))
    assert p.returncode == 66 and "nope: No such file or directory" in p.stderr
    mbox = tmp_path / "m"
    mbox.write_bytes(write_mboxrd(generate(seed=3, count=1)))
    p = run(str(mbox), str(tmp_path / "nomaildir"))
    assert p.returncode == 66 and "not a maildir" in p.stderr
    p = run(str(mbox))
    assert p.returncode == 2  # click usage error


def test_quota_file_and_subscriptions_follow_the_import(tmp_path: Path, maildir: Path):
    from courierpy.maildir import quota, subscriptions

    quota.set_quota(maildir, "100000000S,100000C")
    a = tmp_path / "a"
    a.write_bytes(write_mboxrd(generate(seed=8, count=40)))
    assert run(str(a), str(maildir)).returncode == 0
    assert run("--folder", "Old.2020", str(a), str(maildir)).returncode == 0
    assert run("--no-subscribe", "--folder", "Quiet", str(a), str(maildir)).returncode == 0
    assert subscriptions.read(maildir) == ["INBOX.Old.2020"]
    lines = (maildir / "maildirsize").read_text().splitlines()
    assert len(lines) == 1 + 1 + 3  # quota, initial count, one line per import
    usage = quota.read_usage(maildir)
    assert not usage.recalculated
    fresh = quota.recalculate(maildir, usage.spec)
    assert (usage.bytes, usage.count) == (fresh.bytes, fresh.count)
    assert usage.count > 0


def test_a_full_disk_stops_cleanly_with_a_temporary_failure(tmp_path: Path, maildir: Path):
    """RLIMIT_FSIZE stands in for a full disk: exit 75, what was stored stays whole."""
    messages = generate(seed=9, count=30)
    big = b"Subject: big\nMessage-ID: <big@gen>\n\n" + b"x" * 200_000 + b"\n"
    messages.insert(20, (big, 1_700_000_000, "", ""))
    mbox = tmp_path / "m"
    mbox.write_bytes(write_mboxrd(messages))

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.run(
        [*MBOX2MAILDIR, str(mbox), str(maildir)],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=limit,
        timeout=60,
    )
    assert p.returncode == 75, p.stderr
    assert "mbox2maildir: imported 20 messages" in p.stdout
    assert "File too large" in p.stderr
    got = stored(maildir)
    assert len(got) == 20 and all(len(v[2]) < 100_000 for v in got.values())
    assert os.listdir(maildir / "tmp") == []
