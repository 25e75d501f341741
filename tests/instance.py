"""A throwaway courierpy instance for tests: config dir, userdb, Maildirs, ports.

Everything lives under one temporary directory and runs unprivileged::

    root/
      etc/courier/        copies of the repo's etc/courier, with test overrides appended
      etc/courier/userdb  the userdb text file (mode 0600)
      var/authdaemon/     authdaemonvar: the authdaemond socket and pid file
      vmail/<user>/       each user's home, with Maildir/ inside

Overrides are appended as ``KEY='value'`` lines: the config files are shell
variable files, so the last assignment wins, exactly as it does for ``sh``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from passlib.hash import md5_crypt

from tests.support import REPO, free_port

if TYPE_CHECKING:
    from courierpy.authclient import AuthClient


def _sh_quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


@dataclass
class User:
    name: str
    password: str
    uid: int
    gid: int
    home: Path
    maildir: Path
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class Instance:
    root: Path
    users: dict[str, User] = field(default_factory=dict)

    @property
    def confdir(self) -> Path:
        return self.root / "etc" / "courier"

    @property
    def authdaemonvar(self) -> Path:
        return self.root / "var" / "authdaemon"

    @property
    def socket_path(self) -> Path:
        return self.authdaemonvar / "socket"

    @property
    def userdb(self) -> Path:
        return self.confdir / "userdb"

    @property
    def mailroot(self) -> Path:
        return self.root / "vmail"

    def env(self, **extra: str) -> dict[str, str]:
        """An environment for running our commands against this instance."""
        env = dict(os.environ)
        env["COURIER_CONFDIR"] = str(self.confdir)
        env.update(extra)
        return env

    # -- configuration ------------------------------------------------------

    def set_config(self, filename: str, **values: str) -> None:
        """Override keys of a shell-variable config file (appended; last one wins)."""
        path = self.confdir / filename
        with path.open("a", encoding="utf-8") as f:
            f.write("\n# test overrides\n")
            for key, value in values.items():
                f.write(f"{key}={_sh_quote(str(value))}\n")

    # -- users and mail -----------------------------------------------------

    def add_user(self, name: str, password: str, **fields: str) -> User:
        """Add *name* to the userdb text file with an MD5-crypt ``systempw``.

        Extra *fields* (``quota``, ``options``, ``imappw``, ...) are written
        as given. The home and Maildir are created; uid/gid are ours, so the
        tests run unprivileged.
        """
        home = self.mailroot / name
        maildir = home / "Maildir"
        make_maildir(maildir)
        record = {
            "uid": str(os.getuid()),
            "gid": str(os.getgid()),
            "home": str(home),
            "mail": str(maildir),
            "systempw": md5_crypt.hash(password),
        }
        record.update(fields)
        line = name + "\t" + "|".join(f"{k}={v}" for k, v in record.items()) + "\n"
        with self.userdb.open("a", encoding="utf-8") as f:
            f.write(line)
        os.chmod(self.userdb, 0o600)
        user = User(name, password, os.getuid(), os.getgid(), home, maildir, record)
        self.users[name] = user
        return user

    def port(self) -> int:
        return free_port()

    # -- authdaemond (helpers for the auth tests) ---------------------------

    def make_userdb(self) -> None:
        """Compile the userdb text file into userdb.dat/userdbshadow.dat (our makeuserdb)."""
        from authdaemon.userdb.makeuserdb import build

        build(self.userdb)

    def auth_client(self) -> AuthClient:
        """A client for this instance's authdaemond socket."""
        from courierpy.authclient import AuthClient

        return AuthClient(self.socket_path)

    @contextmanager
    def start_authdaemond(self, *extra_args: str, **env: str) -> Iterator[AuthdaemondProcess]:
        """Run our authdaemond in the foreground on this instance until the block ends.

        Waits until the socket accepts connections; on exit sends SIGTERM and
        waits (SIGKILL after 10 s). The daemon's log is in ``root/authdaemond.log``.
        """
        log_path = self.root / "authdaemond.log"
        log = log_path.open("ab")
        proc = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "authdaemond"), "--config-dir", str(self.confdir),
             *extra_args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=self.env(**env),
        )
        try:
            _wait_for_unix_socket(self.socket_path, proc, 15.0)
            yield AuthdaemondProcess(proc, log_path)
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            log.close()


@dataclass
class AuthdaemondProcess:
    """Our running authdaemond (see Instance.start_authdaemond)."""

    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _wait_for_unix_socket(path: Path, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"authdaemond exited with status {proc.returncode}")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            try:
                s.connect(str(path))
                return
            except OSError:
                pass
        time.sleep(0.02)
    raise RuntimeError(f"authdaemond did not listen on {path} within {timeout}s")


def make_maildir(path: Path) -> None:
    """A bare Maildir (tmp, new, cur; mode 0700) as Courier's maildirmake makes it."""
    for sub in ("", "tmp", "new", "cur"):
        (path / sub).mkdir(mode=0o700, parents=True, exist_ok=True)


def deliver(maildir: Path, message: bytes, *, seq: int = 0) -> Path:
    """Put *message* into ``maildir/new`` the Maildir way (tmp, fsync, rename)."""
    now = time.time()
    base = f"{int(now)}.M{int(now % 1 * 1e6)}P{os.getpid()}_{seq}.test,S={len(message)}"
    tmp = maildir / "tmp" / base
    with tmp.open("wb") as f:
        f.write(message)
        f.flush()
        os.fsync(f.fileno())
    final = maildir / "new" / base
    os.rename(tmp, final)
    return final


def make_instance(root: Path) -> Instance:
    """Lay out a fresh instance under *root* from the repo's default config."""
    inst = Instance(root)
    shutil.copytree(REPO / "etc" / "courier", inst.confdir)
    inst.authdaemonvar.mkdir(parents=True, mode=0o750)
    inst.mailroot.mkdir(parents=True)
    inst.userdb.touch(mode=0o600)
    inst.set_config(
        "authdaemonrc",
        authmodulelist="authuserdb",
        authdaemonvar=str(inst.authdaemonvar),
        daemons="5",
    )
    return inst
