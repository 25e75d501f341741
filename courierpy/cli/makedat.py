"""makedat: compile a text access list (file or directory) into a GDBM database.

    makedat -src=src -file=file -tmp=tmpfile [-hup=pidfile] [-cidr]

As Courier's makedat: the text is read, checked for duplicate keys and
written to *tmpfile*, which then replaces *file*; with ``-hup`` the process
whose pid is in that file (if it exists) gets SIGHUP.  ``-cidr`` expands
``net/len`` and ``first-last`` ranges (see :mod:`courierpy.tcpd.makedat`).
"""

from __future__ import annotations

import os
import signal
import sys

import click

from courierpy.tcpd.makedat import MakedatError, compile_access, expand_cidr, read_source


def _usage(argv0: str) -> int:
    print(f"Usage: {argv0} -src=src -file=file -tmp=tmpfile -hup=hupfile [-cidr]",
          file=sys.stderr)
    return 1


def run(argv0: str, args: list[str]) -> int:
    """The command; returns the exit status."""
    values: dict[str, str] = {}
    cidr = False
    for arg in args:
        name, eq, value = arg.partition("=")
        if arg == "-cidr":
            cidr = True
        elif eq and name in ("-src", "-file", "-tmp", "-hup"):
            values[name[1:]] = value
        else:
            return _usage(argv0)
    if not values.get("file") or not values.get("src") or not values.get("tmp"):
        return _usage(argv0)
    try:
        lines = read_source(values["src"])
        compile_access(expand_cidr(lines) if cidr else lines, values["file"], values["tmp"])
    except MakedatError as e:
        print(str(e), file=sys.stderr)
        return 1
    hup = values.get("hup")
    if hup and os.path.isfile(hup):
        try:
            with open(hup) as f:
                os.kill(int(f.read().split()[0]), signal.SIGHUP)
        except (OSError, ValueError, IndexError) as e:
            print(f"{hup}: {e}", file=sys.stderr)
    return 0


@click.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                      "help_option_names": []},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def main(args: tuple[str, ...]) -> None:
    """Compile an access list into a GDBM database (Courier's makedat)."""
    # click would swallow a "--"; Courier treats it as an option: use argv as given
    del args
    if sys.argv[1:] == ["--help"]:  # Courier's calls it an invalid option; ours helps
        click.echo(click.get_current_context().get_help())
        sys.exit(0)
    sys.exit(run(sys.argv[0], sys.argv[1:]))


if __name__ == "__main__":  # pragma: no cover
    main()
