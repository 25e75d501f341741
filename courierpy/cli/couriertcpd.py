"""couriertcpd: accept TCP connections and run a program for each one.

    couriertcpd [-pid=file] [options] portlist program [arg...]
    couriertcpd -pid=file -stop | -restart

The options are Courier's, single-dash, with the same messages and exit
codes (see man/couriertcpd.1 and :mod:`courierpy.tcpd.options`).
"""

from __future__ import annotations

import os
import signal
import sys

import click

from courierpy import proc
from courierpy.errors import CourierError
from courierpy.tcpd import server
from courierpy.tcpd.options import parse_args, parse_portlist


def original_environ() -> dict[str, str]:
    """The environment we were started with.

    Python may add ``LC_CTYPE`` to ``os.environ`` at start-up (PEP 538 locale
    coercion); the program must inherit what couriertcpd inherited, no more.
    """
    env = dict(os.environ)
    try:
        with open("/proc/self/environ", "rb") as f:
            names = {item.split(b"=", 1)[0] for item in f.read().split(b"\0") if item}
    except OSError:
        return env
    if "LC_CTYPE" in env and b"LC_CTYPE" not in names:
        del env["LC_CTYPE"]
    return env


def run(argv0: str, args: list[str],
        server_class: type[server.TcpdServer] = server.TcpdServer) -> int:
    """The whole command; returns the exit status (serving returns only when stopped).

    *server_class* may be a subclass with a fast ``exec_program`` (courierpy.login.fasttcpd).
    """
    for fd in (0, 1, 2):  # a closed standard descriptor must not be reused for a socket
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)
    try:
        opts = parse_args(argv0, args)
        if opts.stop or opts.restart:
            assert opts.pid is not None
            server.control(opts.pid, signal.SIGTERM if opts.stop else signal.SIGHUP)
            return 0
        listens = parse_portlist(opts.portlist, opts.address)
        if opts.user:
            proc.lookup_user(opts.user)
        if opts.group:
            proc.lookup_group(opts.group)
        lock_fd = None
        if opts.pid:
            lock_fd = server.take_lock(opts.pid)
            if lock_fd is None:
                return 0  # already running, as Courier: quietly
        listeners = server.open_listeners(listens, opts.listen)
        environ = original_environ()
        if opts.pid and lock_fd is not None:
            # as Courier's: the pid file is written before any -user/-group, and
            # descriptors inherited from the caller are closed
            server.daemonize(opts.pid, {lock_fd, *(s.fileno() for s in listeners)})
        tcpd = server_class(opts, listeners, environ=environ)
        try:
            tcpd.open_stderr()
        except OSError as e:
            print(f"{opts.stderr}: {e.strerror}", file=sys.stderr)
            return 1
        server.drop_privileges(opts)
        tcpd.serve_forever()
        return 0
    except CourierError as e:
        print(str(e), file=sys.stderr)
        return 1  # Courier's couriertcpd exits 1 on every start-up error


@click.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                      "help_option_names": []},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def main(args: tuple[str, ...]) -> None:
    """Run PROGRAM for every connection on PORTLIST (Courier's couriertcpd)."""
    # click would swallow a "--"; Courier treats it as an option: use argv as given
    del args
    if sys.argv[1:] == ["--help"]:  # Courier's calls it an invalid option; ours helps
        click.echo(click.get_current_context().get_help())
        sys.exit(0)
    sys.exit(run(sys.argv[0], sys.argv[1:]))


if __name__ == "__main__":  # pragma: no cover
    main()
