"""courierpy-service: start, stop or restart one of the mail servers, as Courier's scripts do.

    courierpy-service [--config-dir DIR] imapd|imapd-ssl|pop3d|pop3d-ssl start|stop|restart

What Courier's ``/usr/lib/courier/imapd`` (and its siblings) do, with our
programs: read the service's config files (``imapd`` and ``imapd-ssl``, or
``pop3d`` and ``pop3d-ssl``) into a fresh environment (``env -i`` plus
``PATH`` and our ``COURIERPY_*`` tuning variables), honour the ``*START``
switch, and run couriertcpd (``-pid``, so it goes to the background) on
``PORT``/``SSLPORT`` and ``ADDRESS``/``SSLADDRESS`` with ``-maxprocs=MAXDAEMONS``,
``-maxperip=MAXPERIP``, ``-access=IMAPACCESSFILE.dat`` (when compiled) and
``TCPDOPTS``, in front of our login stage (``imaplogin`` / ``courierpop3login``,
``--tls`` for the SSL services) and the session program with ``MAILDIRPATH``.

The session program is our imapd / courierpop3d, or ``COURIERPY_IMAPD`` /
``COURIERPY_POP3D`` from the config (any Courier-compatible program, Courier's
own included).  Logging: ``COURIERPY_LOGFILE`` (a file, appended) or else
syslog through :mod:`courierpy.login.syslogger` under ``LOGGEROPTS``'s name.

For the SSL services the TLS settings are checked before anything listens: a
missing or bad certificate ends ``start`` with the reason and exit status 78
(EX_CONFIG), not a failure at the first connection.

``stop`` sends SIGTERM to the listener and returns once it has ended (its
sessions get ``COURIERPY_STOP_GRACE`` seconds to finish a command in progress,
see couriertcpd(1)), then removes the pid file; ``restart`` is ``stop`` then
``start``, so the configuration is read again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import click

from courierpy.cli.options import config_dir_option
from courierpy.config import read_shell_vars
from courierpy.errors import EX_CONFIG, CourierError
from courierpy.tcpd import server as tcpd_server
from courierpy.tls import TLSConfigError, server_context

#: service → (config files, start switch, ssl?)
SERVICES = {
    "imapd": (("imapd", "imapd-ssl"), "IMAPDSTART", False),
    "imapd-ssl": (("imapd", "imapd-ssl"), "IMAPDSSLSTART", True),
    "pop3d": (("pop3d", "pop3d-ssl"), "POP3DSTART", False),
    "pop3d-ssl": (("pop3d", "pop3d-ssl"), "POP3DSSLSTART", True),
}

#: defaults Courier's files give when a key is missing
_DEFAULT_PIDFILE = {"imapd": "/run/courier/imapd.pid", "imapd-ssl": "/run/courier/imapd-ssl.pid",
                    "pop3d": "/run/courier/pop3d.pid", "pop3d-ssl": "/run/courier/pop3d-ssl.pid"}
#: how much longer than the listener's own stop grace ``stop`` waits for it
_STOP_MARGIN = 5.0
_DEFAULT_PORT = {"imapd": "143", "imapd-ssl": "993", "pop3d": "110", "pop3d-ssl": "995"}


class ServiceError(CourierError):
    """The service cannot be started as configured."""

    exit_code = EX_CONFIG


def _bin(name: str) -> str:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else name


def _yes(value: str | None) -> bool:
    return (value or "").strip()[:1] in ("y", "Y", "1")


def service_env(service: str, config_dir: Path, caller: Mapping[str, str]) -> dict[str, str]:
    """The environment Courier's start script builds: the config files, then the SSL keys."""
    files, _, ssl = SERVICES[service]
    env = {"PATH": caller.get("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")}
    for name in files:
        try:
            env.update(read_shell_vars(config_dir / name))
        except OSError as e:
            raise ServiceError(f"{config_dir / name}: {e.strerror}") from None
    env.update({k: v for k, v in caller.items() if k.startswith("COURIERPY_")})
    env["COURIER_CONFDIR"] = str(config_dir)
    if service.startswith("imapd"):
        if ssl:
            env.update(IMAP_TLS="1", IMAP_STARTTLS="NO", IMAP_TLS_REQUIRED="0")
        else:
            env["IMAP_STARTTLS"] = env.get("IMAPDSTARTTLS", "NO")
    elif ssl:
        env.update(POP3_TLS="1", POP3_STARTTLS="NO", POP3_TLS_REQUIRED="0")
    return env


def tcpd_command(service: str, env: Mapping[str, str]) -> list[str]:
    """The couriertcpd command line for *service*."""
    _, _, ssl = SERVICES[service]
    imap = service.startswith("imapd")
    g = env.get
    port = (g("SSLPORT") if ssl else g("PORT")) or _DEFAULT_PORT[service]
    address = (g("SSLADDRESS") if ssl else g("ADDRESS")) or "0"
    pidfile = (g("SSLPIDFILE") if ssl else g("PIDFILE")) or _DEFAULT_PIDFILE[service]
    # our couriertcpd with the fast path (forks the loaded login stage instead of exec)
    cmd = [sys.executable, "-m", "courierpy.login.fasttcpd", f"-pid={pidfile}",
           f"-address={address}",
           f"-maxprocs={g('MAXDAEMONS') or '40'}",
           f"-maxperip={g('MAXPERIP') or ('20' if imap else '4')}"]
    access = g("IMAPACCESSFILE") if imap else g("POP3ACCESSFILE") or g("IMAPACCESSFILE")
    if access and os.path.exists(access + ".dat"):
        cmd.append(f"-access={access}.dat")
    if g("COURIERPY_LOGFILE"):
        cmd.append(f"-stderr={g('COURIERPY_LOGFILE')}")
    else:
        name = ((g("SSLLOGGEROPTS") if ssl else g("LOGGEROPTS")) or f"-name={service}")
        name = name.split()[0].removeprefix("-name=")
        logger = Path(sys.executable).parent / "courierpy-syslogger"
        cmd += [f"-stderrlogger={logger if logger.exists() else _bin('courierpy-syslogger')}",
                f"-stderrloggername={name}"]
    cmd += (g("TCPDOPTS") or "-nodnslookup -noidentlookup").split()
    cmd.append(port)
    if imap:
        cmd.append(_bin("imaplogin"))
        session = g("COURIERPY_IMAPD") or _bin("imapd")
    else:
        cmd.append(_bin("courierpop3login"))
        session = g("COURIERPY_POP3D") or _bin("courierpop3d")
    if ssl:
        cmd.append("--tls")
    cmd += [session, g("MAILDIRPATH") or "Maildir"]
    return cmd


def _pidfile(service: str, env: Mapping[str, str]) -> str:
    ssl = SERVICES[service][2]
    return (env.get("SSLPIDFILE") if ssl else env.get("PIDFILE")) or _DEFAULT_PIDFILE[service]


def start(service: str, config_dir: Path, caller: Mapping[str, str]) -> int:
    env = service_env(service, config_dir, caller)
    files, switch, ssl = SERVICES[service]
    if not _yes(env.get(switch, "YES")):
        return 0
    if ssl:
        try:
            server_context(env)
        except TLSConfigError as e:
            raise ServiceError(f"{service}: cannot start: {e}") from None
    pidfile = _pidfile(service, env)
    Path(pidfile).parent.mkdir(parents=True, exist_ok=True)
    umask = env.get("IMAP_UMASK") if service.startswith("imapd") else None
    if umask:
        os.umask(int(umask, 8))
    cmd = tcpd_command(service, env)
    done = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        return done.returncode
    return 0


def stop(service: str, config_dir: Path, caller: Mapping[str, str]) -> int:
    """SIGTERM the listener named by the pid file; return once it has ended (0), or 1.

    The listener stops listening at once, gives its sessions the stop grace
    period (COURIERPY_STOP_GRACE, see couriertcpd(1)) and ends; its lock on
    ``PIDFILE.lock`` goes with it, which is what this waits for (then the pid
    file, which couriertcpd leaves as Courier's does, is removed), so a
    ``start`` right after finds the port and the pid file free.
    """
    env = service_env(service, config_dir, caller)
    pidfile = _pidfile(service, env)
    try:
        pid = tcpd_server.running_pid(pidfile)
        if pid is None:
            return 0
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return 0
        deadline = time.monotonic() + tcpd_server.stop_grace(env) + _STOP_MARGIN
        while _locked(pidfile):
            if time.monotonic() > deadline:
                print(f"{service}: process {pid} did not stop", file=sys.stderr)
                return 1
            time.sleep(0.02)
    except OSError as e:  # the pid file, its lock or the process is not ours to touch
        print(f"{service}: cannot stop: {e.filename or pidfile}: {e.strerror}", file=sys.stderr)
        return 1
    tcpd_server.remove_pidfile(pidfile, pid)
    return 0


def _locked(pidfile: str) -> bool:
    """Some process still holds ``PIDFILE.lock`` (a listener, perhaps still ending)."""
    fd = tcpd_server.take_lock(pidfile)
    if fd is None:
        return True
    os.close(fd)
    return False


def restart(service: str, config_dir: Path, caller: Mapping[str, str]) -> int:
    """``stop`` then ``start``: the configuration is read afresh (open sessions get BYE)."""
    rc = stop(service, config_dir, caller)
    return rc if rc != 0 else start(service, config_dir, caller)


@click.command(context_settings={"help_option_names": ["--help"]})
@config_dir_option
@click.argument("service", type=click.Choice(sorted(SERVICES)))
@click.argument("action", type=click.Choice(["start", "stop", "restart"]))
def main(config_dir: Path, service: str, action: str) -> None:
    """Start, stop or restart SERVICE (imapd, imapd-ssl, pop3d, pop3d-ssl)."""
    try:
        rc = {"start": start, "stop": stop, "restart": restart}[action](
            service, config_dir, os.environ)
    except CourierError as e:
        click.echo(f"{service}: {e}" if not str(e).startswith(service) else str(e), err=True)
        sys.exit(e.exit_code)
    sys.exit(rc)


if __name__ == "__main__":
    main()
