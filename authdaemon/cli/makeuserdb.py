"""``makeuserdb [-f file]``: compile the userdb text source into GDBM databases.

Builds ``userdb.dat`` and ``userdbshadow.dat`` next to the source
(``<config dir>/userdb``, or the ``-f`` file), atomically.
"""

from __future__ import annotations

import sys
from pathlib import Path

from authdaemon.userdb.makeuserdb import BuildError, build
from courierpy.cli.options import raw_args_command


@raw_args_command(config_dir=True, interspersed=False)
def main(config_dir: Path, args: tuple[str, ...]) -> None:
    """Compile the userdb text database (see makeuserdb(8))."""
    source = str(config_dir / "userdb")
    # As Courier's: only a leading "-f file" means anything; other words are ignored.
    if args and args[0] == "-f":
        source = args[1] if len(args) > 1 else ""
    try:
        if not source:
            raise BuildError(": not found.", 2)
        build(Path(source))
    except BuildError as exc:
        sys.stderr.write(f"{exc}\n")
        sys.exit(exc.exit_code)
    sys.exit(0)
