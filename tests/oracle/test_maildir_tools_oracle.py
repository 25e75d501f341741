"""maildirmake and deliverquota, ours against Courier's, command by command.

Each step runs in two identical scratch directories, one per implementation,
with the same relative arguments; stdout, stderr, the exit status and the
resulting tree (names, modes, maildirsize/shared-maildirs contents, message
sizes and bodies) must match. Unique message names differ by design (pid,
time, inode) and are compared by size and content.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO, require

pytestmark = pytest.mark.oracle

OURS = {
    "maildirmake": [sys.executable, "-m", "courierpy.cli.maildirmake"],
    "deliverquota": [sys.executable, "-m", "courierpy.cli.deliverquota"],
}
REAL = {"maildirmake": "/usr/bin/maildirmake.courier", "deliverquota": "/usr/bin/deliverquota"}


def _run(
    cmd: list[str], cwd: Path, stdin: bytes = b"", env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    e = dict(os.environ, PYTHONPATH=str(REPO))
    e.update(env or {})
    p = subprocess.run(cmd, cwd=cwd, input=stdin, capture_output=True, timeout=20, env=e)
    # Courier prints its argv[0] in the usage line; so do we.
    err = re.sub(r"^Usage: \S+", "Usage: PROG", p.stderr.decode())
    return p.returncode, p.stdout.decode(), err


def _tree(root: Path) -> list[tuple[str, str, str]]:
    """(relative path with message names normalised, mode, content or size)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for n in sorted(dirnames) + sorted(filenames):
            p = Path(dirpath) / n
            rel = str(p.relative_to(root))
            if n == "courierimapsubscribed.new":
                continue  # Courier's --checkutf8 leaves this scratch file behind; we do not
            mode = oct(stat.S_IMODE(p.lstat().st_mode))
            if p.is_dir():
                out.append((rel, mode, "dir"))
                continue
            if re.search(r"/(new|cur)/", "/" + rel):
                body = p.read_bytes()
                if b"overquota@" in body:  # warning message: Date/Message-Id vary
                    body = re.sub(rb"(?m)^(Date|Message-Id): .*$", rb"\1: X", body)
                size = re.search(r",S=(\d+)", n)
                tag = "_warn" if "_warn." in n else ""
                rel = re.sub(r"[^/]+$", f"MSG{tag},S={size.group(1) if size else '?'}", rel)
                out.append((rel, mode, body.decode("utf-8", "replace")))
            else:
                out.append((rel, mode, p.read_text("utf-8", "replace")))
    return sorted(out)


def _both(
    tmp_path: Path,
    tool: str,
    steps: list[tuple[list[str], bytes]],
    env: dict[str, str] | None = None,
) -> None:
    require(REAL[tool])
    real, ours = tmp_path / "real", tmp_path / "ours"
    for d in (real, ours):
        d.mkdir(exist_ok=True)
    for args, stdin in steps:
        r = _run([REAL[tool], *args], real, stdin, env)
        o = _run([*OURS[tool], *args], ours, stdin, env)
        assert o == r, f"{tool} {args}: ours {o} != Courier {r}"
        assert _tree(ours) == _tree(real), f"after {tool} {args}"


def test_maildirmake_matches_courier(tmp_path: Path) -> None:
    require(REAL["maildirmake"])
    subprocess.run([REAL["maildirmake"], "S1"], cwd=tmp_path, check=True)
    s1 = f"{tmp_path}/S1"
    steps = [
        [],
        ["-x", "A"],
        ["A"],
        ["A"],
        ["A", "B"],
        ["-f", "Sub", "A"],
        ["-f", "Sub", "A"],
        ["-f", "Sub", "nonexist"],
        ["-f", ".x", "A"],
        ["-f", "Drafts.Urgent", "A"],
        ["-f", "Résumé", "A"],
        ["-f", "R&AOk-sum&AOk-", "A"],
        ["-f", "Y", "-F", "Z", "A"],
        ["-F", "Café", "A"],
        ["-q", "10X", "A"],
        ["-q", "100S,3C", "A"],
        ["-q", "7C", "A/.Sub"],
        ["-q", "5S", "-f", "Sub", "A"],
        ["-q5000S,10C", "A"],
        ["-S", "B"],
        ["-s", "write", "-f", "W", "B"],
        ["-s", "read", "-f", "R", "B"],
        ["-s", "read,group", "-f", "G", "B"],
        ["-s", "write,group", "-f", "WG", "B"],
        ["-S", "-f", "X", "B"],
        ["-s", "write", "B2"],
        ["-S", "S1"],
        ["--del", "n", "B"],
        ["--add", "n=S1", "B"],  # relative path: usage error
        ["--add", f"n={s1}", "B"],
        ["--add", f"n={s1}", "B"],
        ["--add", f"m={s1}", "B"],
        ["--add", "k=/nowhere", "B"],
        ["--add", f"k={s1}", "Q"],
        ["--add", "noeq", "B"],
        ["--del", "zz", "B"],
        ["--del", "n", "B"],
        ["--del", "m", "B"],
    ]
    _both(tmp_path, "maildirmake", [(s, b"") for s in steps])


def test_deliverquota_matches_courier(tmp_path: Path) -> None:
    for d in ("real", "ours"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "warnmsg").write_bytes(b"From: admin\nSubject: quota\n\nNear quota.\n")
        subprocess.run(["/usr/bin/maildirmake", "M"], cwd=tmp_path / d, check=True)
        subprocess.run(["/usr/bin/maildirmake", "P"], cwd=tmp_path / d, check=True)
    steps = [
        ([], b"x\n"),
        (["-w"], b"x\n"),
        (["M"], b"Subject: x\n\nbody\n"),
        (["M", "100S,3C"], b"Subject: y\n\nbody\r\nline2\n"),
        (["-w", "10", "-W", "warnmsg", "M"], b"Subject: z\n\nbody\n"),
        (["-w", "10", "-W", "warnmsg", "M"], b"Subject: z2\n\n"),  # warned already: no 2nd
        (["M"], b"Subject: w\n\nover\n"),
        (["nonexist"], b"x\n"),
        (["-c", "new/a/b"], b"made\n"),
        (["P", "1000S"], b"p\n"),
        (["P"], b""),
        (["P", "2S"], b"big\n"),
        (["P", "100S"], b""),
        (["P", "10X"], b"q\n"),
    ]
    _both(tmp_path, "deliverquota", steps)


def test_deliverquota_folders_recount_and_env_match_courier(tmp_path: Path) -> None:
    """Delivery into a folder (quota and warning are the parent's), a recount of a
    Maildir with Trash, T-flagged and size-less messages, and MAILDIRQUOTA (ignored)."""
    for d in ("real", "ours"):
        root = tmp_path / d
        root.mkdir()
        (root / "w").write_bytes(b"warn\n")
        subprocess.run(["/usr/bin/maildirmake", "M"], cwd=root, check=True)
        for f in ("Sub", "Trash"):
            subprocess.run(["/usr/bin/maildirmake", "-f", f, "M"], cwd=root, check=True)
        m = root / "M"
        (m / "cur" / "1.M1P1.h,S=6:2,T").write_bytes(b"12345\n")
        (m / "cur" / "2.M1P1.h,S=6:2,S").write_bytes(b"12345\n")
        (m / "cur" / "3.M1P1.h:2,S").write_bytes(b"123\n")
        (m / ".Trash" / "cur" / "4.M1P1.h,S=8:2,S").write_bytes(b"1234567\n")
        (m / ".Sub" / "new" / "5.M1P1.h,S=9").write_bytes(b"1234567\n")
        (m / ".Sub" / "new" / "6.M1P1.h,S=abc").write_bytes(b"1234567\n")
    steps = [
        (["M", "1000S,50C"], b"recount\n"),
        (["-w", "1", "-W", "w", "M/.Sub"], b"d" * 20 + b"\n"),
        (["M/.Sub"], b"more\n"),
    ]
    _both(tmp_path, "deliverquota", steps)
    _both(tmp_path, "deliverquota", [(["M"], b"ccccc\n")], env={"MAILDIRQUOTA": "4S"})
    for d in ("real", "ours"):  # a last line without its newline still counts
        (tmp_path / d / "M" / "maildirsize").write_text("100S\n          50            1")
    _both(tmp_path, "deliverquota", [(["M"], b"z" * 60)])


def test_maildirmake_utf8_conversion_matches_courier(tmp_path: Path) -> None:
    """--checkutf8/--convutf8 on a pre-5.0 Maildir (modified-UTF-7 names only)."""
    for d in ("real", "ours"):
        root = tmp_path / d
        root.mkdir()
        mk = REAL["maildirmake"]
        for args in (["A"], ["-f", "R&AOk-sum&AOk-", "A"], ["-f", "R&AOk-sum&AOk-.Sub", "A"],
                     ["-f", "Plain", "A"], ["-f", "A&-B", "A"]):
            subprocess.run([mk, *args], cwd=root, check=True)
        (root / "A" / "courierimapsubscribed").write_text("INBOX.R&AOk-sum&AOk-\nINBOX.Plain\n")
    _both(tmp_path, "maildirmake", [(["--checkutf8", "A"], b""), (["--convutf8", "A"], b""),
                                    (["--checkutf8"], b"")])
    assert {p.name for p in (tmp_path / "ours" / "A").iterdir()} >= {".Résumé", ".Résumé.Sub",
                                                                    ".A&B", ".Plain"}


def test_maildirmake_utf8_conversion_is_safe(tmp_path: Path) -> None:
    """Where Courier's converter mangles: UTF-8 names kept, conflicts refused up front."""
    md = tmp_path / "A"
    for args in ([str(md)], ["-f", "Résumé", str(md)], ["-f", "Caf&AOk-", str(md)]):
        assert _run([*OURS["maildirmake"], *args], tmp_path)[0] == 0
    rc, out, _ = _run([*OURS["maildirmake"], "--convutf8", str(md)], tmp_path)
    assert rc == 0 and "Résumé" not in out.replace("Checking", "")
    assert sorted(p.name for p in md.iterdir() if p.name.startswith(".")) == [".Café", ".Résumé"]
    assert _run([*OURS["maildirmake"], "-f", "R&AOk-sum&AOk-", str(md)], tmp_path)[0] == 0
    rc, _, err = _run([*OURS["maildirmake"], "--convutf8", str(md)], tmp_path)
    assert rc == 1 and "already exists" in err
    assert (md / ".R&AOk-sum&AOk-").is_dir() and (md / ".Résumé").is_dir()
    assert _run([*OURS["maildirmake"], "-f", "Bad&-x&AOk", str(md)], tmp_path)[0] == 0
    rc, out, err = _run([*OURS["maildirmake"], "--checkutf8", str(md)], tmp_path)
    assert rc == 1 and "does not appear to be valid modified-UTF7" in err
