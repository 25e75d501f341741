"""authdaemond: Courier's authentication socket service.

Shape (Courier's, minus its stall):

- The master creates ``<authdaemonvar>/socket`` (mode 0777, directory 0750),
  writes ``<authdaemonvar>/pid`` and holds a lock on ``pid.lock``, then forks
  ``daemons`` workers that all accept on the one socket.
- Each worker runs an event loop over its connections: it reads requests
  without blocking, so an idle or slow client costs nothing but a file
  descriptor, and is dropped after 10 s without a complete request (Courier's
  read timeout). Courier's children each serve one connection at a time, so a
  handful of silent clients stall every login; ours do not.
- A complete request goes through :class:`Dispatcher`, which tries the
  ``authmodulelist`` modules in order (REJECT → next, OK → answer, TEMPFAIL →
  hang up silently) and applies ``DEFAULTOPTIONS``.
- SIGHUP: re-read ``authdaemonrc`` and restart the workers. SIGTERM/SIGINT:
  stop the workers, remove the socket and pid file, exit 0.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import io
import logging
import os
import resource
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from authdaemon.modules import (
    PLAIN,
    AuthModule,
    DebugLog,
    ModuleContext,
    ModuleTempFail,
    authinfo_summary,
    load_modules,
)
from courierpy import authproto
from courierpy.authproto import (
    NEED_DATA,
    AuthInfo,
    AuthRequest,
    BadRequest,
    EnumerateRequest,
    PasswdRequest,
    PreRequest,
    RequestError,
    RequestParser,
)
from courierpy.config import read_shell_vars
from courierpy.errors import EX_CONFIG, EX_OSERR, ConfigError, CourierError

__all__ = [
    "AlreadyRunning",
    "Dispatcher",
    "Master",
    "ServerConfig",
    "WorkerLoop",
    "courier_log_handler",
]

#: Courier's defaults.
DEFAULT_MODULES = ("authuserdb",)
DEFAULT_DAEMONS = 5
DEFAULT_AUTHDAEMONVAR = "/run/courier/authdaemon"
#: Seconds a client has to send its request, and to take the reply.
READ_TIMEOUT = 10.0
WRITE_TIMEOUT = 30.0


class AlreadyRunning(CourierError):
    exit_code = EX_OSERR


@dataclass(frozen=True)
class ServerConfig:
    """The authdaemonrc settings authdaemond uses."""

    confdir: Path
    modules: tuple[str, ...] = DEFAULT_MODULES
    daemons: int = DEFAULT_DAEMONS
    authdaemonvar: Path = Path(DEFAULT_AUTHDAEMONVAR)
    debug_login: int = 0
    default_options: str = ""

    @property
    def socket_path(self) -> Path:
        return self.authdaemonvar / "socket"

    @property
    def pid_path(self) -> Path:
        return self.authdaemonvar / "pid"

    @classmethod
    def load(cls, confdir: Path, environ: Mapping[str, str] = os.environ) -> ServerConfig:
        """Read ``<confdir>/authdaemonrc``.

        Courier's start-up script exports the file, so a key missing from the
        file may come from the environment (DEBUG_LOGIN, DEFAULTOPTIONS).
        """
        rc_path = Path(confdir) / "authdaemonrc"
        rc: Mapping[str, str] = read_shell_vars(rc_path) if rc_path.exists() else {}

        def get(key: str, default: str) -> str:
            if key in rc:
                return rc[key]
            return environ.get(key, default)

        modules = tuple(get("authmodulelist", " ".join(DEFAULT_MODULES)).split())
        if not modules:
            raise ConfigError(str(rc_path), None, "authmodulelist is empty")
        try:
            daemons = int(get("daemons", str(DEFAULT_DAEMONS)) or DEFAULT_DAEMONS)
            debug = int(get("DEBUG_LOGIN", "0") or 0)
        except ValueError as exc:
            raise ConfigError(str(rc_path), None, f"not a number: {exc}") from None
        return cls(
            confdir=Path(confdir),
            modules=modules,
            daemons=max(1, daemons),
            authdaemonvar=Path(get("authdaemonvar", "") or DEFAULT_AUTHDAEMONVAR),
            debug_login=debug,
            default_options=get("DEFAULTOPTIONS", ""),
        )


# -- logging ------------------------------------------------------------------

_LEVEL_NAMES = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARN",
    logging.ERROR: "ERR",
    logging.CRITICAL: "CRIT",
}


class _CourierFormatter(logging.Formatter):
    """``LEVEL: message``, Courier's log line format."""

    def format(self, record: logging.LogRecord) -> str:
        if record.levelno == PLAIN:
            return record.getMessage()
        return f"{_LEVEL_NAMES.get(record.levelno, record.levelname)}: {record.getMessage()}"


def courier_log_handler(syslog: bool = False) -> logging.Handler:
    """A handler writing Courier-style lines to stderr, or to syslog (mail facility)."""
    handler: logging.Handler
    if syslog:
        from logging.handlers import SysLogHandler

        handler = SysLogHandler(address="/dev/log", facility=SysLogHandler.LOG_MAIL)
        handler.ident = "authdaemond: "
    else:
        # account data may hold any bytes: write them back unchanged
        stream = io.TextIOWrapper(
            sys.stderr.buffer, errors="surrogateescape", line_buffering=True, write_through=True
        )
        handler = logging.StreamHandler(stream)
    handler.setFormatter(_CourierFormatter())
    return handler


# -- request handling -----------------------------------------------------------


class Dispatcher:
    """Runs one request through the module chain and gives the reply bytes.

    ``None`` means "send nothing and hang up" (Courier's temporary failure).
    """

    def __init__(
        self, modules: Sequence[AuthModule], default_options: str, debug: DebugLog
    ) -> None:
        self.modules = list(modules)
        self.default_options = default_options
        self.debug = debug

    def handle(self, request: authproto.Request | BadRequest) -> bytes | None:
        if isinstance(request, BadRequest):
            self.debug(f"bad request: {request.reason}")
            return authproto.encode_fail()
        try:
            if isinstance(request, PreRequest):
                self.debug(f"received userid lookup request: {request.userid}")
                return self._chain(
                    request.module, lambda m: m.pre(request.service, request.userid)
                )
            if isinstance(request, AuthRequest):
                self.debug(
                    f"received auth request, service={request.service}, "
                    f"authtype={request.authtype}"
                )
                return self._chain(
                    ".", lambda m: m.auth(request.service, request.authtype, request.authdata)
                )
            if isinstance(request, PasswdRequest):
                return self._passwd(request)
            if isinstance(request, EnumerateRequest):
                return self._enumerate()
        except ModuleTempFail as exc:
            self.debug(f"TEMPFAIL: {exc}")
            return None
        raise TypeError(f"not a request: {request!r}")

    def _chain(self, only: str, call: Callable[[AuthModule], AuthInfo | None]) -> bytes:
        for module in self.modules:
            if only != "." and module.name != only:
                continue
            if self.debug.enabled:
                self.debug(f"{module.name}: trying this module")
            info: AuthInfo | None = call(module)
            if info is None:
                self.debug(f"{module.name}: REJECT - try next module")
                continue
            if self.debug.enabled:
                self.debug.plain(f"Authenticated: {authinfo_summary(info)}")
                if self.debug.passwords:
                    self.debug.plain(
                        f"Authenticated: clearpasswd={info.passwd2 or '<null>'}, "
                        f"passwd={info.passwd or '<null>'}"
                    )
            options = authproto.merge_options(info.options, self.default_options)
            if options != info.options:
                info = dataclasses.replace(info, options=options)
            return authproto.encode_authinfo(info)
        self.debug("FAIL, all modules rejected")
        return authproto.encode_fail()

    def _passwd(self, request: PasswdRequest) -> bytes:
        for module in self.modules:
            if module.passwd(request.service, request.userid, request.oldpw, request.newpw):
                return authproto.encode_passwd_reply(True)
        return authproto.encode_passwd_reply(False)

    def _enumerate(self) -> bytes:
        """Every module's accounts; a module that fails cuts the list short.

        As with Courier, the client then sees the accounts so far without the
        final ``.``, which tells it the list is incomplete.
        """
        out = bytearray()
        try:
            for module in self.modules:
                entries = module.enumerate()
                if entries is None:
                    continue
                out += authproto.encode_enum_module(module.name)
                for entry in entries:
                    options = authproto.merge_options(entry.options, self.default_options) or ""
                    out += authproto.encode_enum_entry(dataclasses.replace(entry, options=options))
        except ModuleTempFail as exc:
            self.debug(f"ENUMERATE aborted: {exc}")
            return bytes(out)
        out += b".\n"
        return bytes(out)


# -- the worker's event loop ------------------------------------------------------


_LISTENER = "listener"
_STOP = "stop"


@dataclass
class _Conn:
    sock: socket.socket
    deadline: float
    parser: RequestParser = dataclasses.field(default_factory=RequestParser)
    out: memoryview | None = None  # the reply still to send


class WorkerLoop:
    """Accepts on *listener* and serves many connections, one request each."""

    def __init__(
        self,
        listener: socket.socket,
        dispatcher: Dispatcher,
        log: logging.Logger,
        read_timeout: float = READ_TIMEOUT,
        write_timeout: float = WRITE_TIMEOUT,
    ) -> None:
        self.listener = listener
        self.dispatcher = dispatcher
        self.log = log
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.sel = selectors.DefaultSelector()
        self.conns: dict[int, _Conn] = {}
        self.accepting = True
        self._accept_paused_until = 0.0

    def run(self, parent_pid: int | None = None, stop_fd: int | None = None) -> None:
        """Serve until *stop_fd* becomes readable (then finish open connections).

        The worker also stops when its parent (*parent_pid*) is gone.
        """
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, _LISTENER)
        if stop_fd is not None:
            self.sel.register(stop_fd, selectors.EVENT_READ, _STOP)
        try:
            while self.accepting or self.conns:
                now = time.monotonic()
                if parent_pid is not None and os.getppid() != parent_pid:
                    break  # the master died; stop serving
                if self._accept_paused_until and now >= self._accept_paused_until:
                    self._accept_paused_until = 0.0
                    if self.accepting:
                        self.sel.register(self.listener, selectors.EVENT_READ, _LISTENER)
                timeout = 1.0
                if self.conns:
                    first = min(c.deadline for c in self.conns.values())
                    timeout = min(timeout, max(0.0, first - now))
                for key, events in self.sel.select(timeout):
                    if key.data is _LISTENER:
                        self._accept()
                    elif key.data is _STOP:
                        self._stop_accepting(key.fd)
                    elif events & selectors.EVENT_READ and key.data.out is None:
                        self._read(key.data)
                    elif events & selectors.EVENT_WRITE:
                        self._write(key.data)
                self._expire()
        finally:
            for conn in list(self.conns.values()):
                self._close(conn)
            self.sel.close()

    def _stop_accepting(self, stop_fd: int) -> None:
        self.sel.unregister(stop_fd)
        if self.accepting and not self._accept_paused_until:
            self.sel.unregister(self.listener)
        self.accepting = False

    def _accept(self) -> None:
        for _ in range(64):
            try:
                sock, _addr = self.listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self.log.error(f"accept: {exc}")
                    self.sel.unregister(self.listener)
                    self._accept_paused_until = time.monotonic() + 0.1
                    return
                raise
            sock.setblocking(False)
            conn = _Conn(sock, time.monotonic() + self.read_timeout)
            self.conns[sock.fileno()] = conn
            self.sel.register(sock, selectors.EVENT_READ, conn)

    def _read(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            self._close(conn)
            return
        try:
            result = conn.parser.feed(data)
        except RequestError as exc:
            self.dispatcher.debug(f"closing connection: {exc}")
            self._close(conn)
            return
        if result is NEED_DATA:
            return
        try:
            reply = self.dispatcher.handle(result)  # type: ignore[arg-type]
        except Exception:  # a module bug must not kill the worker
            self.log.exception("authdaemond: internal error while handling a request")
            reply = None
        if reply is None:
            self._close(conn)
            return
        conn.out = memoryview(reply)
        conn.deadline = time.monotonic() + self.write_timeout
        self.sel.modify(conn.sock, selectors.EVENT_WRITE, conn)
        self._write(conn)

    def _write(self, conn: _Conn) -> None:
        assert conn.out is not None
        try:
            sent = conn.sock.send(conn.out)
        except BlockingIOError:
            return
        except OSError:
            self._close(conn)
            return
        conn.out = conn.out[sent:]
        if not conn.out:
            self._close(conn)

    def _expire(self) -> None:
        now = time.monotonic()
        for conn in [c for c in self.conns.values() if c.deadline <= now]:
            self._close(conn)

    def _close(self, conn: _Conn) -> None:
        fd = conn.sock.fileno()
        if fd in self.conns:
            del self.conns[fd]
            try:
                self.sel.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
        conn.sock.close()


# -- the master ------------------------------------------------------------------


def _raise_fd_limit(want: int = 65536) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass


def _someone_listens(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def _make_listener(config: ServerConfig) -> socket.socket:
    """Bind ``<authdaemonvar>/socket`` (0777) in a 0750 directory, replacing any old one."""
    var = config.authdaemonvar
    var.mkdir(mode=0o750, parents=True, exist_ok=True)
    tmp = var / f"socket.tmp.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(tmp))
        os.chmod(tmp, 0o777)
        sock.listen(socket.SOMAXCONN)
        os.rename(tmp, config.socket_path)
    except BaseException:
        sock.close()
        tmp.unlink(missing_ok=True)
        raise
    return sock


_SIGNALS = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)


class Master:
    """authdaemond's parent process: socket, pid file, workers, signals."""

    def __init__(
        self,
        confdir: Path,
        log: logging.Logger,
        environ: Mapping[str, str] = os.environ,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        self.confdir = Path(confdir)
        self.log = log
        self.environ = environ
        self.read_timeout = read_timeout
        self.config = ServerConfig.load(self.confdir, environ)
        self.workers: set[int] = set()
        #: Workers of an older configuration, finishing their connections.
        self.retiring: set[int] = set()
        self._lock_fd: int | None = None

    # Called before anything is started, so config errors surface at once.
    def _modules(self, config: ServerConfig) -> list[AuthModule]:
        debug = DebugLog(self.log, config.debug_login)
        return load_modules(config.modules, ModuleContext(config.confdir, debug))

    def _log_start(self, config: ServerConfig) -> None:
        names = " ".join(config.modules)
        self.log.info(f'modules="{names}", daemons={config.daemons}')
        for name in config.modules:
            self.log.info(f"Installing lib{name}.so.0")
        self.log.info(f"Installation complete: {' '.join(config.modules)}")

    def _take_pid_lock(self) -> None:
        var = self.config.authdaemonvar
        var.mkdir(mode=0o750, parents=True, exist_ok=True)
        fd = os.open(var / "pid.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunning(f"authdaemond is already running ({var / 'pid.lock'})") from None
        self._lock_fd = fd
        tmp = var / "pid.tmp"
        tmp.write_text(f"{os.getpid()}\n")
        os.rename(tmp, self.config.pid_path)

    def _spawn(self, listener: socket.socket, config: ServerConfig) -> None:
        while len(self.workers) < config.daemons:
            pid = os.fork()
            if pid == 0:  # the worker
                code = 0
                try:
                    # SIGTERM wakes the loop through a pipe: stop accepting,
                    # finish the connections in hand, exit.
                    stop_r, stop_w = os.pipe()
                    os.set_blocking(stop_w, False)
                    signal.set_wakeup_fd(stop_w, warn_on_full_buffer=False)
                    for sig in (signal.SIGHUP, signal.SIGINT):
                        signal.signal(sig, signal.SIG_IGN)
                    signal.signal(signal.SIGTERM, lambda signo, frame: None)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    signal.pthread_sigmask(signal.SIG_SETMASK, [])
                    if self._lock_fd is not None:
                        os.close(self._lock_fd)
                    modules = self._modules(config)
                    debug = DebugLog(self.log, config.debug_login)
                    dispatcher = Dispatcher(modules, config.default_options, debug)
                    loop = WorkerLoop(listener, dispatcher, self.log, self.read_timeout)
                    loop.run(parent_pid=os.getppid(), stop_fd=stop_r)
                except BaseException:
                    self.log.exception("authdaemond worker died")
                    code = 1
                finally:
                    logging.shutdown()
                    os._exit(code)
            self.workers.add(pid)

    def _retire_workers(self) -> None:
        """Ask the current workers to finish what they hold and exit (not waited for)."""
        for pid in self.workers:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        self.retiring |= self.workers
        self.workers = set()

    def _stop_workers(self, grace: float = 3.0) -> None:
        self._retire_workers()
        deadline = time.monotonic() + grace
        while self.retiring and time.monotonic() < deadline:
            self._reap()
            if self.retiring:
                time.sleep(0.01)
        for pid in self.retiring:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        self.retiring.clear()

    def _reap(self) -> None:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.retiring.clear()
                return
            if not pid:
                return
            self.workers.discard(pid)
            self.retiring.discard(pid)

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; returns the exit status."""
        config = self.config
        self._modules(config)  # unknown module names fail here, before the socket
        _raise_fd_limit()  # idle clients each hold a descriptor until their timeout
        if _someone_listens(config.socket_path):
            # e.g. Courier's own authdaemond, which does not use our pid lock
            raise AlreadyRunning(
                f"authdaemond is already running (something answers on {config.socket_path})"
            )
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        self._take_pid_lock()
        listener: socket.socket | None = None
        try:
            listener = _make_listener(config)
            self._log_start(config)
            self._spawn(listener, config)
            while True:
                info = signal.sigtimedwait(_SIGNALS, 1.0)
                if info is None:
                    self._reap()
                    self._spawn(listener, config)
                    continue
                if info.si_signo == signal.SIGCHLD:
                    self._reap()
                    self._spawn(listener, config)
                elif info.si_signo == signal.SIGHUP:
                    config = self._reload(config, listener)
                else:
                    self.log.info("stopping authdaemond")
                    return 0
        finally:
            self._stop_workers()
            paths = [config.pid_path]
            if listener is not None:
                listener.close()
                paths.append(config.socket_path)
            for path in paths:
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)

    def _reload(self, config: ServerConfig, listener: socket.socket) -> ServerConfig:
        try:
            new = ServerConfig.load(self.confdir, self.environ)
            self._modules(new)
        except CourierError as exc:
            self.log.error(f"{exc}; keeping the old configuration")
            return config
        if new.authdaemonvar != config.authdaemonvar:
            self.log.error("authdaemonvar changed: restart authdaemond to move the socket")
            new = dataclasses.replace(new, authdaemonvar=config.authdaemonvar)
        self.log.info("stopping authdaemond children")
        self._retire_workers()
        self.log.info("restarting authdaemond children")
        for name in config.modules:
            self.log.info(f"Uninstalling {name}")
        self._log_start(new)
        self.config = new
        self._spawn(listener, new)
        return new


def serve(confdir: Path, log: logging.Logger, environ: Mapping[str, str] = os.environ) -> int:
    """Run authdaemond in the foreground; config errors give exit status 78."""
    try:
        return Master(confdir, log, environ).run()
    except CourierError as exc:
        log.critical(str(exc))
        return exc.exit_code or EX_CONFIG

