"""``authdaemond [start|stop|restart]``: the authentication daemon.

Without an argument it runs in the foreground and logs to standard error
(for tests and supervisors such as systemd or runit). ``start`` detaches
and logs to syslog, ``stop`` signals the running daemon (found through
``<authdaemonvar>/pid``) and waits for it to exit, ``restart`` does both.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path

import click

from authdaemon.modules import DebugLog, ModuleContext, load_modules
from authdaemon.server import ServerConfig, courier_log_handler, serve
from courierpy.cli.options import config_dir_option
from courierpy.errors import CourierError


def _logger(syslog: bool) -> logging.Logger:
    log = logging.getLogger("authdaemond")
    log.handlers[:] = [courier_log_handler(syslog=syslog)]
    log.setLevel(logging.DEBUG)
    log.propagate = False
    return log


def _quiet() -> DebugLog:
    return DebugLog(logging.getLogger("authdaemond.check"), 0)


def _running_pid(config: ServerConfig) -> int | None:
    try:
        pid = int(config.pid_path.read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid


def _stop(config: ServerConfig, wait: float = 10.0) -> None:
    pid = _running_pid(config)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if not config.pid_path.exists():
            time.sleep(0.05)
            return
        time.sleep(0.05)


def _start(config_dir: Path, config: ServerConfig) -> int:
    if _running_pid(config) is not None:
        return 0  # already running, as Courier's start is idempotent
    pid = os.fork()
    if pid:
        # Wait until the daemon's socket is there (or it died).
        _, status = os.waitpid(pid, 0)  # the intermediate child exits at once
        if os.waitstatus_to_exitcode(status) != 0:
            return 1
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if config.socket_path.exists() and _running_pid(config) is not None:
                return 0
            time.sleep(0.05)
        sys.stderr.write("authdaemond: did not start (see the mail log)\n")
        return 1
    os.setsid()
    if os.fork():
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.chdir("/")
    os._exit(serve(config_dir, _logger(syslog=True)))


@click.command(context_settings={"help_option_names": ["--help"]})
@config_dir_option
@click.argument(
    "action", required=False, type=click.Choice(["start", "stop", "restart"]), default=None
)
def main(config_dir: Path, action: str | None) -> None:
    """Serve Courier's authdaemon protocol (see authdaemond(8))."""
    if action is None:
        sys.exit(serve(config_dir, _logger(syslog=False)))
    try:
        config = ServerConfig.load(config_dir)
        # Refuse a bad module list here, where the admin sees the message.
        for module in load_modules(config.modules, ModuleContext(config.confdir, _quiet())):
            module.close()
    except CourierError as exc:
        sys.stderr.write(f"authdaemond: {exc}\n")
        sys.exit(exc.exit_code)
    if action in ("stop", "restart"):
        _stop(config)
    if action in ("start", "restart"):
        sys.exit(_start(config_dir, config))
    sys.exit(0)
