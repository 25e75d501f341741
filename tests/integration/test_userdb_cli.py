"""userdb, makeuserdb and pw2userdb as processes, on a throwaway instance."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from passlib.hash import md5_crypt

from authdaemon.userdb.database import UserDatabase, set_password
from tests.instance import Instance

BIN = Path(sys.executable).parent


def run(prog: str, *args: str, stdin: str = "", env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / prog), *args], input=stdin, capture_output=True,
                          text=True, env=env, timeout=30)


def test_edit_build_and_read_through_config_dir(instance: Instance) -> None:
    instance.add_user("alice", "alicepw")
    env = instance.env()  # COURIER_CONFDIR points at the instance
    assert run("userdb", "bob", "set", "home=/h/bob", "uid=7", "gid=7", env=env).returncode == 0
    r = run("userdb", "bob", "set", "systempw", stdin=md5_crypt.hash("bobpw") + "\n", env=env)
    assert (r.returncode, r.stdout) == (0, "")  # no prompt when stdin is not a terminal
    assert run("userdb", "-show", env=env).stdout == "alice\nbob\n"
    r = run("makeuserdb", "--config-dir", str(instance.confdir))
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    bob = UserDatabase(instance.confdir).lookup("bob")
    assert bob is not None
    assert bob.fields == {"home": "/h/bob", "uid": "7", "gid": "7", "_": ""}
    assert md5_crypt.verify("bobpw", bob.secrets["systempw"])


def test_prompt_on_a_terminal(instance: Instance) -> None:
    controller, terminal = pty.openpty()
    try:
        os.write(controller, b"secretvalue\n")
        proc = subprocess.run(
            [str(BIN / "userdb"), "--config-dir", str(instance.confdir), "carol", "set",
             "home=/h/c", "quota"],
            stdin=terminal, capture_output=True, text=True, timeout=30,
        )
    finally:
        os.close(terminal)
        os.close(controller)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "carol.quota: "
    assert "carol\thome=/h/c|quota=secretvalue\n" in instance.userdb.read_text()


def test_makeuserdb_reports_the_bad_line(instance: Instance) -> None:
    instance.add_user("alice", "alicepw")
    assert run("makeuserdb", "--config-dir", str(instance.confdir)).returncode == 0
    before = (instance.confdir / "userdb.dat").read_bytes()
    with instance.userdb.open("a") as f:
        f.write("# fine\n\nbroken line without a tab\n")
    r = run("makeuserdb", "--config-dir", str(instance.confdir))
    assert r.returncode == 1
    assert r.stderr == f"{instance.userdb}:4: malformed line (no TAB after the account name).\n"
    assert (instance.confdir / "userdb.dat").read_bytes() == before


def test_usage_goes_to_stdout_with_status_1(instance: Instance) -> None:
    r = run("userdb", "--config-dir", str(instance.confdir), "onlyname")
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert len(lines) == 4
    assert lines[0] == f"Usage: {BIN / 'userdb'} [path/.../ | -f file ]name set field=value" \
        " field=value..."


def test_symlinked_userdb_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").write_text("")
    (tmp_path / "userdb").symlink_to(tmp_path / "real")
    r = run("userdb", "--config-dir", str(tmp_path), "a", "set", "x=1")
    assert r.returncode == 255
    assert r.stderr == f"ERROR: Wrong userdb command.\n       ({tmp_path}/userdb is a symbolic" \
        " link)\n"


def test_set_password(instance: Instance) -> None:
    instance.add_user("alice", "alicepw", imappw=md5_crypt.hash("imap"))
    assert run("makeuserdb", "--config-dir", str(instance.confdir)).returncode == 0
    db = UserDatabase(instance.confdir)
    set_password(instance.confdir, "alice", "", "imappw", md5_crypt.hash("newimap"))
    alice = db.lookup("alice")
    assert alice is not None
    assert md5_crypt.verify("newimap", alice.secrets["imappw"])
    assert md5_crypt.verify("alicepw", alice.secrets["systempw"])


def test_pw2userdb_with_files(tmp_path: Path) -> None:
    (tmp_path / "passwd").write_text("u:x:5:6:Name|X,1:/home/u:/bin/sh\n")
    (tmp_path / "shadow").write_text("u:$1$a$b:1:::::\n")
    r = run("pw2userdb", "--passwd", str(tmp_path / "passwd"), "--shadow",
            str(tmp_path / "shadow"))
    assert r.stdout == "u\tuid=5|gid=6|home=/home/u|shell=/bin/sh|systempw=$1$a$b" \
        "|gecos=Name.X,1\n5=\tu\n"


def test_show_path_forms(tmp_path: Path) -> None:
    (tmp_path / "userdb" / "sub").mkdir(parents=True)
    (tmp_path / "userdb" / "sub" / "f").write_text("a\thome=/a\nb\thome=/b|uid=1\n")
    conf = ["--config-dir", str(tmp_path)]
    # As Courier: "-show sub/f/b" shows record b of file sub/f.
    assert run("userdb", *conf, "-show", "sub/f/b").stdout == "home=/b\nuid=1\n"
    # Courier lists nothing here; we list the file.
    assert run("userdb", *conf, "-show", "sub/f/").stdout == "a\nb\n"
    # The documented "-show path addr" (Courier ignores addr).
    assert run("userdb", *conf, "-show", "sub/f", "a").stdout == "home=/a\n"
    assert run("userdb", *conf, "-show", "sub/f/", "a").stdout == "home=/a\n"
