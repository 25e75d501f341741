"""``authenumerate [-s] [-o]``: list every account authdaemond knows.

One line per account: ``name TAB uid TAB gid TAB home TAB maildir``, with
``TAB options`` added by ``-o``; ``-s`` leaves out accounts whose options
say ``disableshared=1``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from courierpy.authclient import AuthClient, AuthTempFail
from courierpy.authproto import encode, options_dict
from courierpy.cli.options import raw_args_command

USAGE = "Usage: authenumerate [-s] [-o]\n"


def _parse(args: tuple[str, ...]) -> tuple[bool, bool] | None:
    skip_shared = with_options = False
    for arg in args:
        if not arg.startswith("-") or arg == "-":
            break  # getopt stops at the first operand; Courier ignores operands
        if arg == "--":
            break
        for ch in arg[1:]:
            if ch == "s":
                skip_shared = True
            elif ch == "o":
                with_options = True
            else:
                return None
    return skip_shared, with_options


def _disabled_shared(options: str) -> bool:
    try:
        return int(options_dict(options).get("disableshared", "0") or "0") != 0
    except ValueError:
        return False


@raw_args_command(config_dir=True, interspersed=False)
def main(config_dir: Path, args: tuple[str, ...]) -> None:
    """List the accounts of every authentication module (see authenumerate(1))."""
    parsed = _parse(args)
    if parsed is None:
        sys.stderr.write(USAGE)
        sys.exit(1)
    skip_shared, with_options = parsed
    try:
        entries = list(AuthClient.from_config(config_dir).enumerate())
    except AuthTempFail as exc:
        sys.stderr.write(f"authenumerate: {exc}\n")
        sys.exit(1)
    out = sys.stdout.buffer
    for e in entries:
        if skip_shared and _disabled_shared(e.options):
            continue
        line = f"{e.name}\t{e.uid}\t{e.gid}\t{e.home}\t{e.maildir}"
        if with_options:
            line += f"\t{e.options}"
        out.write(encode(line + "\n"))
    sys.exit(0)
