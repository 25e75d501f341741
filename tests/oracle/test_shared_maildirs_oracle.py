"""shared-maildirs edits: our library against Courier's ``maildirmake --add/--del``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from courierpy.maildir import shared
from tests.support import require

pytestmark = pytest.mark.oracle


def _courier(maildirmake: str, args: list[str], cwd: Path) -> tuple[int, str]:
    p = subprocess.run([maildirmake, *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    return p.returncode, (p.stdout + p.stderr).strip()


def _ours(func, *args) -> tuple[int, str]:
    try:
        func(*args)
    except shared.SharedError as e:
        return e.exit_code, str(e)
    return 0, ""


def test_add_del_match_maildirmake(tmp_path: Path):
    maildirmake = require("/usr/bin/maildirmake")
    for side in ("real", "ours"):
        (tmp_path / side).mkdir()
        subprocess.run([maildirmake, str(tmp_path / side / "M")], check=True)
    pub = tmp_path / "S"
    subprocess.run([maildirmake, "-S", str(pub)], check=True)
    steps = [
        ("add", "pub", str(pub)),
        ("add", "pub", str(pub)),
        ("add", "two", "/nonexistent/x"),
        ("add", "bad.nick", str(pub)),
        ("add", "bad/nick", str(pub)),
        ("add", "sp ace", str(pub) + "/"),
        ("add", "news", str(tmp_path / "real")),
        ("del", "nonex", ""),
        ("del", "pub", ""),
        ("add", "pub", str(pub)),
    ]
    real_md = tmp_path / "real" / "M"
    our_md = tmp_path / "ours" / "M"
    for op, nick, path in steps:
        if op == "add":
            want = _courier(maildirmake, ["--add", f"{nick}={path}", str(real_md)], tmp_path)
            got = _ours(shared.add_shared_maildir, our_md, nick, path)
        else:
            want = _courier(maildirmake, ["--del", nick, str(real_md)], tmp_path)
            got = _ours(shared.del_shared_maildir, our_md, nick)
        assert got == want, (op, nick, path)
        assert (our_md / "shared-maildirs").read_bytes() == (
            real_md / "shared-maildirs"
        ).read_bytes()
    assert shared.read_shared_maildirs(real_md / "shared-maildirs") == [
        shared.SharedMaildir("sp ace", str(pub) + "/"),
        shared.SharedMaildir("news", str(tmp_path / "real")),
        shared.SharedMaildir("pub", str(pub)),
    ]
    assert oct((our_md / "shared-maildirs").stat().st_mode & 0o777) == "0o644"
