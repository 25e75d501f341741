"""The couriertcpd process: sockets, the accept loop, the children.

One process listens; each admitted connection gets a forked child that puts
the socket on fd 0 and 1, sets the environment and execs the program, as
Courier's couriertcpd does.  What is observable (the environment, which
connections are refused and how, the log lines on stderr, the signals) is
Courier's; :mod:`courierpy.tcpd.limits` and :mod:`courierpy.tcpd.access` hold
the rules.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping
from typing import TextIO

from courierpy import proc
from courierpy.gdbm import GdbmError
from courierpy.tcpd import lookups
from courierpy.tcpd.access import AccessDb, Decision, canonical_ip
from courierpy.tcpd.limits import Limits, Slots
from courierpy.tcpd.options import Listen, OptionError, TcpdOptions

__all__ = ["DEFAULT_STOP_GRACE", "TcpdServer", "control", "open_listeners", "remove_pidfile",
           "running_pid", "stop_grace"]

#: seconds a session gets to finish a command in progress when stopped (COURIERPY_STOP_GRACE)
DEFAULT_STOP_GRACE = 10.0
#: what couriertcpd waits for its children beyond that before SIGKILL
_KILL_MARGIN = 5.0


def stop_grace(environ: Mapping[str, str]) -> float:
    """How long a stopped couriertcpd waits for its children: the sessions' grace + 5 s."""
    try:
        grace = max(0.0, float(environ.get("COURIERPY_STOP_GRACE") or DEFAULT_STOP_GRACE))
    except ValueError:
        grace = DEFAULT_STOP_GRACE
    return grace + _KILL_MARGIN

def _atoi(text: str | None) -> int | None:
    if text is None:
        return None
    digits = ""
    for c in text.strip():
        if not (c.isascii() and c.isdigit()):
            break
        digits += c
    return int(digits) if digits else 0


def _bind(family: int, host: str, port: int, backlog: int, v6only: bool | None) -> socket.socket:
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and v6only is not None:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if v6only else 0)
        s.bind((host, port))
        s.listen(backlog)
        s.setblocking(False)
        os.set_inheritable(s.fileno(), False)
    except BaseException:
        s.close()
        raise
    return s


def open_listeners(listens: list[Listen], backlog: int | None) -> list[socket.socket]:
    """Bind and listen as Courier does.

    A wildcard gets an IPv6 ``::`` socket that also takes IPv4, then an IPv4
    ``0.0.0.0`` one whose failure is ignored; a given address gets a socket of
    its family.  (Either way IPv4 peers are shown in the mapped form.)  A bind
    error is an :class:`OptionError` ``bind: <reason>``.
    """
    depth = backlog if backlog is not None else socket.SOMAXCONN
    out: list[socket.socket] = []
    try:
        for item in listens:
            try:
                if item.host is None:
                    try:
                        out.append(_bind(socket.AF_INET6, "::", item.port, depth, False))
                    except OSError as e:
                        if e.errno not in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
                            raise
                        out.append(_bind(socket.AF_INET, "0.0.0.0", item.port, depth, None))
                    else:
                        try:
                            out.append(_bind(socket.AF_INET, "0.0.0.0", item.port, depth, None))
                        except OSError:
                            pass
                elif ":" in item.host:
                    out.append(_bind(socket.AF_INET6, item.host, item.port, depth, None))
                else:
                    out.append(_bind(socket.AF_INET, item.host, item.port, depth, None))
            except OSError as e:
                raise OptionError(f"bind: {e.strerror}") from None
    except BaseException:
        for s in out:
            s.close()
        raise
    return out


class TcpdServer:
    """A running couriertcpd: call :meth:`serve_forever` after construction."""

    def __init__(self, opts: TcpdOptions, listeners: list[socket.socket], *,
                 log: TextIO | None = None,
                 environ: dict[str, str] | None = None) -> None:
        self.opts = opts
        self.listeners = listeners
        self.log = log if log is not None else sys.stderr
        self.environ = dict(os.environ if environ is None else environ)
        self.slots = Slots(Limits(opts.maxprocs, opts.warn_level, opts.maxperip, opts.maxperc))
        #: pid → remote address of the child serving it (``None``: a refusing child)
        self.children: dict[int, str | None] = {}
        self.access: AccessDb | None = None
        if opts.access is not None:
            self.access = AccessDb(opts.access)
            if self.access.error:
                self._say(self.access.error)
        elif opts.accesslocal:
            self._say("-accesslocal requires -access")
        self.stderr_fd: int | None = None
        self.logger_pid: int | None = None
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
            os.set_inheritable(fd, False)
        self._stopping = False
        self._reload = False
        #: seconds the children get after SIGTERM before SIGKILL (see :meth:`shutdown`)
        self.stop_grace = stop_grace(self.environ)

    # -- set-up ------------------------------------------------------------------

    def open_stderr(self) -> None:
        """``-stderr=file`` (append) or ``-stderrlogger=prog``; call before dropping root.

        It becomes couriertcpd's own standard error as well as the programs'.
        """
        o = self.opts
        if o.stderrlogger:
            r, w = os.pipe()
            name = o.stderrloggername or os.path.basename(o.program)
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the logger process
                try:
                    os.dup2(r, 0)
                    os.close(r)
                    os.close(w)
                    os.execv(o.stderrlogger, [o.stderrlogger, name])
                except OSError as e:
                    os.write(2, f"{o.stderrlogger}: {e.strerror}\n".encode())
                os._exit(1)
            os.close(r)
            os.set_inheritable(w, False)
            self.stderr_fd, self.logger_pid = w, pid
        elif o.stderr and o.stderr != "socket":
            fd = os.open(o.stderr, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.set_inheritable(fd, False)
            self.stderr_fd = fd
        if self.stderr_fd is not None:
            # couriertcpd's own lines (WARN/ALERT) go there too, as with Courier's
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(self.stderr_fd, 2)

    def _say(self, line: str) -> None:
        try:
            self.log.write(line + "\n")
            self.log.flush()
        except (OSError, ValueError):
            pass

    # -- signals -----------------------------------------------------------------

    def _on_signal(self, signum: int, frame: object) -> None:
        if signum == signal.SIGTERM:
            self._stopping = True
        elif signum == signal.SIGHUP:
            self._reload = True

    def install_signals(self) -> None:
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGHUP, self._on_signal)
        signal.signal(signal.SIGCHLD, self._on_signal)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    # -- the loop ----------------------------------------------------------------

    def serve_forever(self) -> None:
        self.install_signals()
        try:
            while not self._stopping:
                self._reap()
                if self._reload:
                    self._reload = False
                    if self.access is not None:
                        self.access.reopen()
                watch = {self._wake_r: None}
                if not self.slots.full():
                    watch.update((s.fileno(), s) for s in self.listeners)
                extra = self._control_fds()
                watch.update((fd, None) for fd in extra)
                poller = select.poll()
                for fd in watch:
                    poller.register(fd, select.POLLIN)
                ready = [fd for fd, _ in poller.poll(self._poll_timeout() * 1000)]
                if self._wake_r in ready:
                    try:
                        os.read(self._wake_r, 512)
                    except BlockingIOError:
                        pass
                if extra:
                    self._on_control([fd for fd in ready if fd in extra])
                for fd in ready:
                    sock = watch.get(fd)
                    if sock is None or self._stopping:
                        continue
                    self._accept_from(sock)
                self._tick()
        finally:
            self.shutdown()

    # -- hooks for a subclass that keeps processes of its own (courierpy.login.fasttcpd) --

    def _control_fds(self) -> set[int]:
        """Further descriptors the loop watches; :meth:`_on_control` is told which are readable."""
        return set()

    def _on_control(self, fds: list[int]) -> None:
        """*fds*, some of :meth:`_control_fds` (perhaps none), are readable."""

    def _poll_timeout(self) -> float:
        return 5.0

    def _tick(self) -> None:
        """Called after each turn of the loop."""

    def _living(self) -> list[int]:
        """The pids :meth:`shutdown` stops and waits for."""
        return list(self.children)

    def _ended(self, pid: int) -> None:
        """Child *pid* was reaped: give back what it held."""
        if pid not in self.children:
            return
        ip = self.children.pop(pid)
        if ip is None:
            self.slots.give_back()
        else:
            self.slots.release(ip)

    def shutdown(self) -> None:
        """Stop: close the listening sockets at once (a new instance can bind), SIGTERM every
        child, wait up to :attr:`stop_grace` seconds for them to end, SIGKILL the rest.

        Our imapd finishes a command in progress (an APPEND whose message is still
        arriving) within its own, shorter grace period before it says BYE.
        """
        for s in self.listeners:
            s.close()
        self.listeners = []
        for pid in self._living():
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + self.stop_grace
        self._reap()
        while self._living() and time.monotonic() < deadline:
            try:  # SIGCHLD writes to the wake-up pipe
                select.select([self._wake_r], [], [], min(0.5, deadline - time.monotonic()))
            except InterruptedError:  # pragma: no cover - PEP 475 retries
                pass
            try:
                os.read(self._wake_r, 512)
            except BlockingIOError:
                pass
            self._reap()
        for pid in self._living():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            self._ended(pid)
        if self.access is not None:
            self.access.close()

    def _reap(self) -> None:
        while True:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._ended(pid)

    def _accept_from(self, sock: socket.socket) -> None:
        while not self.slots.full() and not self._stopping:
            try:
                conn, _addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # ECONNABORTED, EMFILE, ...
                self._say(f"accept: {e.strerror}")
                return
            try:
                self._handle(conn)
            finally:
                conn.close()

    def _handle(self, conn: socket.socket) -> None:
        conn.setblocking(True)
        try:
            peer = conn.getpeername()
            here = conn.getsockname()
        except OSError:
            return
        remote_ip, remote_port = canonical_ip(peer[0]), int(peer[1])
        local_ip, local_port = canonical_ip(here[0]), int(here[1])
        for line in self.slots.take():
            self._say(line)
        decision = Decision()
        if self.access is not None:
            try:
                if self.opts.accesslocal:
                    decision = self.access.check(remote_ip, local_ip, local_port)
                else:
                    decision = self.access.check(remote_ip)
            except GdbmError as e:  # a damaged file: as if the address were not listed
                self._say(str(e))
        if not decision.allowed:
            self._refuse(conn, self.opts.denymsg)
            return
        refused = self.slots.admit(remote_ip, _atoi(decision.get("MAXCPERIP")))
        if refused is not None:
            if refused:
                self._say(refused)
            self._refuse(conn, None)
            return
        env = self._child_env(decision, remote_ip, remote_port, local_ip, local_port)
        self._start(conn, env, remote_ip)

    def _start(self, conn: socket.socket, env: dict[str, str], remote_ip: str) -> None:
        """Run the program for an admitted connection (its slot taken for *remote_ip*)."""
        if self._spawnable():
            pid = self._spawn(conn, env)
            if pid is None:
                self.slots.release(remote_ip)
                return
        else:
            try:
                pid = os.fork()
            except OSError as e:
                self.slots.release(remote_ip)
                self._say(f"fork: {e.strerror}")
                return
            if pid == 0:  # pragma: no cover - runs in the child, ends in exec
                self._child(conn, env)
        self.children[pid] = remote_ip

    #: Signals a program must start with at their default disposition (see _child).
    _DEFAULT_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGPIPE,
                        signal.SIGXFSZ, signal.SIGINT)

    def _spawnable(self) -> bool:
        """Nothing has to run between fork and exec: posix_spawn can start the program.

        (Lookups, DNS lists and -drop need code in the child; a fork is used then.)
        """
        o = self.opts
        return (o.nodnslookup and o.noidentlookup and not o.block and not o.allow
                and not o.drop and type(self).exec_program is TcpdServer.exec_program)

    def _spawn(self, conn: socket.socket, env: dict[str, str]) -> int | None:
        """Start the program with posix_spawn (no copy of this process); its pid.

        A program that cannot be executed gets Courier's ``program: reason`` on
        the programs' standard error, and the connection is closed.
        """
        o = self.opts
        fd = conn.fileno()
        actions = [(os.POSIX_SPAWN_DUP2, fd, 0), (os.POSIX_SPAWN_DUP2, fd, 1)]
        if o.stderr == "socket":
            actions.append((os.POSIX_SPAWN_DUP2, fd, 2))
        try:
            return os.posix_spawn(o.program, [o.program, *o.args], env,
                                  file_actions=actions, setsigdef=self._DEFAULT_SIGNALS)
        except OSError as e:
            message = f"{o.program}: {e.strerror}\n".encode()
            try:
                if o.stderr == "socket":
                    conn.sendall(message)
                else:
                    os.write(2, message)
            except OSError:
                pass
            return None

    def _refuse(self, conn: socket.socket, message: str | None) -> None:
        """Close a refused connection from a short-lived child, as Courier does.

        The child holds the connection's slot until it is reaped, so a burst of
        refused connections counts toward -maxprocs (and its WARN/ALERT lines)
        exactly as it does with Courier's.
        """
        try:
            pid = os.fork()
        except OSError:
            self.slots.give_back()
            return
        if pid == 0:  # pragma: no cover - the refusing child
            code = 0
            try:
                if message:
                    conn.sendall((message + "\n").encode("utf-8", "surrogateescape"))
                conn.close()
            except BaseException:  # noqa: BLE001
                code = 1
            os._exit(code)
        self.children[pid] = None

    # -- the child ---------------------------------------------------------------

    def _child_env(self, decision: Decision, remote_ip: str, remote_port: int,
                   local_ip: str, local_port: int) -> dict[str, str]:
        env = dict(self.environ)
        for name, value in decision.env:
            if name and "=" not in name and "\0" not in name + value:
                env[name] = value
        env["TCPREMOTEIP"] = remote_ip
        env["TCPREMOTEPORT"] = str(remote_port)
        env["TCPLOCALIP"] = local_ip
        env["TCPLOCALPORT"] = str(local_port)
        return env

    def _child(self, conn: socket.socket, env: dict[str, str]) -> None:  # pragma: no cover
        """In the forked child: finish the environment, set up fds 0-2, exec."""
        code = 1
        try:
            self._leave_parent()
            o = self.opts
            if not o.nodnslookup:
                lookups.add_dns(env)
            if not o.noidentlookup:
                lookups.add_ident(env)
            if o.block or o.allow:
                lookups.add_dnsbl(env, o.allow, o.block)
            if o.drop and env.get(o.drop):
                os._exit(0)
            fd = conn.fileno()
            os.dup2(fd, 0)
            os.dup2(fd, 1)
            if o.stderr == "socket":
                os.dup2(fd, 2)
            elif self.stderr_fd is not None:
                os.dup2(self.stderr_fd, 2)
            if fd > 2:
                os.close(fd)
            self.exec_program(env)
        except BaseException as e:  # noqa: BLE001 - nothing may escape a forked child
            try:
                os.write(2, f"couriertcpd: {e}\n".encode())
            except OSError:
                pass
        os._exit(code)

    def _leave_parent(self) -> None:  # pragma: no cover - in a child
        """In a forked child: drop the parent's signal handlers and descriptors."""
        # the dispositions Courier's children get: Python ignores SIGPIPE and
        # SIGXFSZ, Courier catches SIGINT; each is default after exec there
        for sig in self._DEFAULT_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        for s in self.listeners:
            s.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        if self.access is not None:
            self.access.abandon()

    def exec_program(self, env: dict[str, str]) -> None:  # pragma: no cover - exec
        """Replace the child with the program (a fast path may override this)."""
        o = self.opts
        try:
            os.execve(o.program, [o.program, *o.args], env)
        except OSError as e:
            os.write(2, f"{o.program}: {e.strerror}\n".encode())
            os._exit(1)


# -- -pid, -stop, -restart -------------------------------------------------------


def _lock_path(pidfile: str) -> str:
    return pidfile + ".lock"


def take_lock(pidfile: str) -> int | None:
    """Lock ``pidfile.lock``; the fd (kept open for life), or ``None`` if held elsewhere."""
    old = os.umask(0o077)
    try:
        fd = os.open(_lock_path(pidfile), os.O_RDWR | os.O_CREAT, 0o600)
    finally:
        os.umask(old)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    os.set_inheritable(fd, False)
    return fd


def running_pid(pidfile: str) -> int | None:
    """The pid of the running instance (its lock is held), else ``None``."""
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip() or "0")
    except (OSError, ValueError):
        return None
    fd = take_lock(pidfile) if os.path.exists(_lock_path(pidfile)) else None
    if fd is not None:  # nobody holds the lock: the process is gone
        os.close(fd)
        return None
    return pid if pid > 0 else None


def control(pidfile: str, sig: int, wait: Callable[[int], None] | None = None) -> None:
    """``-stop`` (SIGTERM) / ``-restart`` (SIGHUP): signal the instance, if running."""
    pid = running_pid(pidfile)
    if pid is None:
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    if wait is not None:
        wait(pid)


def remove_pidfile(pidfile: str, pid: int) -> None:
    """Remove *pidfile* if it still names *pid* (a stopped instance; couriertcpd itself
    leaves it, as Courier's does)."""
    try:
        with open(pidfile) as f:
            named = int(f.read().strip() or "0")
    except (OSError, ValueError):
        return
    if named == pid:
        try:
            os.unlink(pidfile)
        except OSError:
            pass


def daemonize(pidfile: str, keep: set[int]) -> None:
    """Go to the background: the parent exits 0, the child writes *pidfile*.

    Standard input, output and error become /dev/null, and every other
    descriptor except those in *keep* (the lock, the listening sockets) is closed.
    """
    pid = os.fork()
    if pid:
        os._exit(0)
    os.setpgrp()  # a process group of its own, in the same session (as Courier's)
    for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []:
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
    with open(pidfile, "w") as f:
        f.write(f"{os.getpid()}\n")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)


def drop_privileges(opts: TcpdOptions) -> None:
    """``-user``/``-group`` through :mod:`courierpy.proc`."""
    if opts.user or opts.group:
        proc.drop_to(opts.user or None, opts.group or None)
