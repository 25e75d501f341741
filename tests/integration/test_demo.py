"""The README's demo command builds a working instance (run with --check)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.support import REPO, free_port


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_demo_sets_up_and_logs_in(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    ports = {"imap": free_port(), "pop3": free_port()}
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--check", "--dir", str(root),
         "--imap-port", str(ports["imap"]), "--pop3-port", str(ports["pop3"])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "Authentication succeeded." in proc.stdout
    assert "Cleartext Password: demo" in proc.stdout
    assert "IMAP and POP3 logins as demo work: 3 messages in INBOX." in proc.stdout
    # through the service commands: login stage → imapd / pop3d, logged; then all stopped
    assert "demo: servers stopped." in proc.stdout
    log = (root / "mail.log").read_text()
    assert "INFO: LOGIN, user=demo, ip=[::ffff:127.0.0.1]" in log and "protocol=IMAP" in log
    assert "INFO: LOGOUT, user=demo" in log
    assert not _listening(ports["imap"]) and not _listening(ports["pop3"])
    assert not (root / "run" / "imapd.pid").exists()
    assert not (root / "run" / "pop3d.pid").exists()
    assert not (root / "var" / "authdaemon" / "pid").exists()
    maildir = root / "vmail" / "demo" / "Maildir"
    assert len([*(maildir / "new").iterdir(), *(maildir / "cur").iterdir()]) == 3
    assert (root / "vmail" / "demo" / "Maildir" / ".Sent" / "maildirfolder").exists()
    assert (root / "vmail" / "demo" / "Maildir" / "maildirsize").read_text().startswith(
        "10000000S\n"
    )


def test_demo_stops_its_servers_on_sigterm(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    ports = {"imap": free_port(), "pop3": free_port()}
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--dir", str(root),
         "--imap-port", str(ports["imap"]), "--pop3-port", str(ports["pop3"])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # until the banner's last line
            if line.startswith("Ctrl-C stops the demo"):
                break
        else:
            raise AssertionError(proc.stderr.read() if proc.stderr else "no banner")
        assert _listening(ports["imap"]) and _listening(ports["pop3"])
        imapd_pid = int((root / "run" / "imapd.pid").read_text())
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "demo: servers stopped." in out
    assert not _listening(ports["imap"]) and not _listening(ports["pop3"])
    deadline = time.monotonic() + 5
    while Path(f"/proc/{imapd_pid}").exists() and time.monotonic() < deadline:
        try:  # a zombie nobody reaps (pid 1 of a container may not) counts as gone
            if Path(f"/proc/{imapd_pid}/stat").read_text().split(") ", 1)[1][:1] == "Z":
                break
        except FileNotFoundError:
            break
        time.sleep(0.05)
    else:
        assert not Path(f"/proc/{imapd_pid}").exists()
    assert not (root / "var" / "authdaemon" / "pid").exists()


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
