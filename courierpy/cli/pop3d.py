"""pop3d (alias courierpop3d): one POP3 session on stdin/stdout, as Courier's courierpop3d."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from courierpy.cli.options import config_dir_option
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


if __name__ == "__main__":
    main()
