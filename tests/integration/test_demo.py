"""The README's demo command builds a working instance (run with --check)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import REPO


def test_demo_sets_up_and_logs_in(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--check", "--dir", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "Authentication succeeded." in proc.stdout
    assert "Cleartext Password: demo" in proc.stdout
    assert "IMAP and POP3 logins as demo work: 3 messages in INBOX." in proc.stdout
    maildir = root / "vmail" / "demo" / "Maildir"
    assert len([*(maildir / "new").iterdir(), *(maildir / "cur").iterdir()]) == 3
    assert (root / "vmail" / "demo" / "Maildir" / ".Sent" / "maildirfolder").exists()
    assert (root / "vmail" / "demo" / "Maildir" / "maildirsize").read_text().startswith(
        "10000000S\n"
    )


def test_every_command_answers_help() -> None:
    """Each console script prints a usage summary for --help and exits 0 (differences.md)."""
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    bindir = Path(sys.executable).parent
    for name in scripts:
        proc = subprocess.run(
            [str(bindir / name), "--help"],
            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert proc.returncode == 0, (name, proc.stderr)
        assert "usage" in proc.stdout.lower(), (name, proc.stdout)
