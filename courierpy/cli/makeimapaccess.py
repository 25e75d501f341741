"""makeimapaccess: compile IMAPACCESSFILE and tell the running servers.

Reads ``IMAPACCESSFILE``, ``PIDFILE`` and ``SSLPIDFILE`` from ``imapd`` and
``imapd-ssl`` in the configuration directory, compiles the access list (a file
or a directory) into ``$IMAPACCESSFILE.dat`` with CIDR expansion, then sends
SIGHUP to the couriertcpd of imapd and of imapd-ssl so they reopen it.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import click

from courierpy.cli.options import config_dir_option
from courierpy.config import read_shell_vars
from courierpy.errors import ConfigError
from courierpy.tcpd.makedat import MakedatError, compile_access, expand_cidr, read_source
from courierpy.tcpd.server import control


def run(config_dir: Path) -> int:
    values: dict[str, str] = {}
    try:
        for name in ("imapd", "imapd-ssl"):
            path = config_dir / name
            if path.exists():
                values.update(read_shell_vars(path, values))
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        return 1
    access = values.get("IMAPACCESSFILE", "")
    if not access:
        print(f"ERROR: No IMAPACCESSFILE specified in {config_dir}/imapd(-msa)", file=sys.stderr)
        return 1
    old = os.umask(0o022)
    try:
        lines = read_source(access)
        compile_access(expand_cidr(lines), access + ".dat", access + ".tmp")
    except MakedatError as e:
        print(str(e), file=sys.stderr)
        return 1
    finally:
        os.umask(old)
    for key in ("PIDFILE", "SSLPIDFILE"):
        if values.get(key):
            control(values[key], signal.SIGHUP)
    return 0


@click.command(context_settings={"help_option_names": ["--help"]})
@config_dir_option
def main(config_dir: Path) -> None:
    """Compile IMAPACCESSFILE into IMAPACCESSFILE.dat and signal imapd/imapd-ssl."""
    sys.exit(run(config_dir))


if __name__ == "__main__":  # pragma: no cover
    main()
