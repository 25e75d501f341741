"""Run the real Courier auth programs against temporary files.

Courier's authdaemond, authtest, makeuserdb, userdb, ... use compiled-in
paths: ``/etc/courier`` (authdaemonrc, userdb, userdb.dat, ...) and
``/run/courier/authdaemon`` (the socket).  To point them at a test's files
without touching the system, we give them a private mount namespace in which
a temporary directory is bind-mounted over each of those paths.

Usage (needs root, ``unshare`` and ``nsenter``)::

    from tests.oracle.courier_auth import courier_namespace, real_authdaemond

    # Only the mounts: run Courier's tools on tmp_path/"etc" as /etc/courier.
    with courier_namespace(tmp_path / "etc") as ns:
        ns.run(["makeuserdb"], check=True)

    # The mounts plus the real authdaemond serving from them.
    with real_authdaemond(tmp_path / "etc") as ns:
        result = ns.authtest("alice", "secret")      # the real authtest
        assert result.returncode == 0
        ns.socket                                    # the socket path, seen from outside

How it works: one holder process (``unshare -m`` + the bind mounts + ``sleep``)
owns the namespace; every command runs inside it through ``nsenter -t PID -m``.
The daemon's socket lives in the temporary run directory, so tests outside the
namespace can also connect to it directly.  On exit every process started here
is stopped by its process-group id (the daemon and its children, then the
holder), and the namespace disappears with them; nothing on the host changes.

``etc_dir`` must hold at least ``authdaemonrc`` for the daemon (write
``authmodulelist="authuserdb"`` into it for userdb tests); :func:`write_authdaemonrc`
makes one.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import require, require_root

#: Compiled-in paths of the Debian courier-authlib packages.
ETC_COURIER = "/etc/courier"
RUN_AUTHDAEMON = "/run/courier/authdaemon"
AUTHDAEMOND = "/usr/lib/courier/courier-authlib/authdaemond"


@dataclass
class CourierNamespace:
    """A private mount namespace with test directories over Courier's paths."""

    holder: subprocess.Popen[bytes]
    etc_dir: Path
    run_dir: Path
    nsenter: str

    @property
    def socket(self) -> Path:
        """The authdaemond socket, as a path usable from outside the namespace."""
        return self.run_dir / "socket"

    def command(self, argv: Sequence[str]) -> list[str]:
        """*argv* wrapped so that it runs inside the namespace."""
        return [self.nsenter, "-t", str(self.holder.pid), "-m", "--", *argv]

    def run(self, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """``subprocess.run`` inside the namespace (output captured unless told otherwise)."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("timeout", 30)
        return subprocess.run(self.command(argv), **kwargs)

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """``subprocess.Popen`` inside the namespace, in a new session (own process group)."""
        kwargs.setdefault("start_new_session", True)
        return subprocess.Popen(self.command(argv), **kwargs)

    def authtest(self, *args: str, service: str | None = None) -> subprocess.CompletedProcess[str]:
        """The real ``authtest [-s service] args...`` against the namespace's daemon."""
        argv = [require("authtest")]
        if service is not None:
            argv += ["-s", service]
        return self.run([*argv, *args], text=True)


def write_authdaemonrc(etc_dir: Path, modules: str = "authuserdb", **extra: str) -> Path:
    """A minimal authdaemonrc for the real daemon (mode 0640, like Debian's)."""
    etc_dir.mkdir(parents=True, exist_ok=True)
    lines = {
        "authmodulelist": modules,
        "authmodulelistorig": modules,
        "daemons": "5",
        "authdaemonvar": RUN_AUTHDAEMON,
        "DEBUG_LOGIN": "0",
        "DEFAULTOPTIONS": "",
        "LOGGEROPTS": "",
        **extra,
    }
    path = etc_dir / "authdaemonrc"
    path.write_text("".join(f'{k}="{v}"\n' for k, v in lines.items()))
    path.chmod(0o640)
    return path


def _stop(proc: subprocess.Popen[Any], timeout: float = 5.0) -> None:
    """Stop *proc*'s process group (it leads its own session), TERM then KILL."""
    if proc.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def courier_namespace(etc_dir: Path, run_dir: Path | None = None) -> Iterator[CourierNamespace]:
    """A namespace where *etc_dir* is /etc/courier and *run_dir* /run/courier/authdaemon.

    *run_dir* defaults to a ``run`` directory beside *etc_dir*.  Skips (fails
    under CI) without root, ``unshare`` or ``nsenter``.
    """
    require_root("bind mounts over /etc/courier in a private mount namespace")
    unshare = require("unshare")
    nsenter = require("nsenter")
    etc_dir = Path(etc_dir).resolve()
    run_dir = Path(run_dir) if run_dir is not None else etc_dir.parent / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    run_dir = run_dir.resolve()
    for target in (ETC_COURIER, RUN_AUTHDAEMON):
        if not os.path.isdir(target):
            raise RuntimeError(f"{target} does not exist: is courier-authdaemon installed?")
    script = (
        f"mount --bind '{etc_dir}' {ETC_COURIER} && "
        f"mount --bind '{run_dir}' {RUN_AUTHDAEMON} && "
        "echo ready && exec sleep 3600"
    )
    holder = subprocess.Popen(
        [unshare, "-m", "--propagation", "private", "sh", "-c", script],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert holder.stdout is not None
        line = holder.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError(f"could not set up the mount namespace (holder said {line!r})")
        yield CourierNamespace(holder, etc_dir, run_dir, nsenter)
    finally:
        _stop(holder)
        if holder.stdout is not None:
            holder.stdout.close()


def _wait_for_socket(path: Path, proc: subprocess.Popen[Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"authdaemond exited with status {proc.returncode}")
        if path.exists():
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                try:
                    s.connect(str(path))
                    return
                except OSError:
                    pass
        time.sleep(0.02)
    raise RuntimeError(f"authdaemond did not create {path} within {timeout}s")


@contextmanager
def real_authdaemond(
    etc_dir: Path, run_dir: Path | None = None, *, timeout: float = 10.0
) -> Iterator[CourierNamespace]:
    """The real authdaemond (foreground binary) serving *etc_dir* in a private namespace.

    Yields the :class:`CourierNamespace` once the socket accepts connections;
    the daemon's stderr (its log) is discarded.  The daemon and its children
    are stopped on exit.
    """
    daemon_path = require(AUTHDAEMOND)
    if not (Path(etc_dir) / "authdaemonrc").exists():
        write_authdaemonrc(Path(etc_dir))
    with courier_namespace(etc_dir, run_dir) as ns:
        for stale in ("socket", "pid", "socket.lock"):
            p = ns.run_dir / stale
            if p.exists() or p.is_symlink():
                p.unlink()
        daemon = ns.popen([daemon_path], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_for_socket(ns.socket, daemon, timeout)
            yield ns
        finally:
            _stop(daemon)


def copy_etc(src: Path, dest: Path) -> Path:
    """Copy a test config directory, keeping modes (for running both sides on equal files)."""
    shutil.copytree(src, dest, symlinks=True)
    return dest
