"""pop3d (alias courierpop3d): one POP3 session on stdin/stdout, as Courier's courierpop3d."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from courierpy.cli.options import config_dir_option
from courierpy.config import resolve_config_dir
from courierpy.pop3.server import serve


@click.command(
    name="pop3d",
    context_settings={"help_option_names": ["--help"]},
    help="Serve one POP3 connection on stdin/stdout. With AUTHENTICATED in the environment "
    "(Courier's courierpop3login hand-over) the session starts logged in, cwd being the "
    "home and MAILDIR (or the MAILDIR argument, default ./Maildir) the mailbox; "
    "otherwise the client logs in against authdaemond first.",
)
@config_dir_option
@click.argument("maildir", required=False, default="./Maildir")
@click.argument("ignored", nargs=-1)
def main(config_dir: Path, maildir: str, ignored: tuple[str, ...]) -> None:
    sys.exit(serve(maildir, config_dir))


def run_argv(args: Sequence[str]) -> bool:
    """Run with the words after the program name if they hold no option (a login stage
    hands over ``courierpop3d MAILDIR``), without click; else return False."""
    if any(a.startswith("-") for a in args):
        return False
    sys.exit(serve(args[0] if args else "./Maildir", resolve_config_dir(None, os.environ)))


if __name__ == "__main__":
    main()
