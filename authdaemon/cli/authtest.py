"""``authtest [-s service] userid [password [newpassword]]``: ask authdaemond about an account.

One argument looks the account up (PRE), two check the password (AUTH
login), three change it (PASSWD). Output, messages and exit codes are
Courier's, byte for byte.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

from courierpy.authclient import AuthClient, AuthConnectError, AuthFailed, AuthTempFail
from courierpy.authproto import AuthInfo, encode
from courierpy.cli.options import raw_args_command

USAGE = "Usage: authtest [-s service] userid [ password [ newpassword ] ]\n"


def _parse(args: tuple[str, ...]) -> tuple[str, list[str]] | None:
    """getopt("s:") as Courier's authtest does; None means a usage error."""
    service = "login"
    rest = list(args)
    while rest and rest[0].startswith("-") and rest[0] != "-":
        opt = rest.pop(0)
        if opt == "--":
            break
        i = 1
        while i < len(opt):
            if opt[i] != "s":
                return None
            if i + 1 < len(opt):
                service = opt[i + 1 :]
            elif rest:
                service = rest.pop(0)
            else:
                return None
            break
    if not rest:
        return None
    return service, rest


def format_authinfo(info: AuthInfo) -> str:
    """authtest's success report."""

    def show(value: str | None) -> str:
        return "(none)" if value is None else value

    if info.sysusername is not None:
        who = f" (system username: {info.sysusername})"
    else:
        who = f" (uid {info.uid if info.uid is not None else 0}, gid {info.gid})"
    return (
        "Authentication succeeded.\n\n"
        f"     Authenticated: {show(info.address)} {who}\n"
        f"    Home Directory: {info.home}\n"
        f"           Maildir: {show(info.maildir)}\n"
        f"             Quota: {show(info.quota)}\n"
        f"Encrypted Password: {show(info.passwd)}\n"
        f"Cleartext Password: {show(info.passwd2)}\n"
        f"           Options: {show(info.options)}\n"
    )


def _failed(err: int) -> None:
    sys.stdout.flush()
    sys.stderr.write(f"Authentication FAILED: {os.strerror(err)}\n")
    sys.exit(1)


@raw_args_command(config_dir=True, interspersed=False)
def main(config_dir: Path, args: tuple[str, ...]) -> None:
    """Test authentication through authdaemond (see authtest(1))."""
    parsed = _parse(args)
    if parsed is None:
        sys.stderr.write(USAGE)
        sys.exit(1)
    service, words = parsed
    meta = {"TCPREMOTEIP": os.environ.get("TCPREMOTEIP") or "::1"}
    client = AuthClient.from_config(config_dir, meta=meta)
    try:
        if len(words) >= 3:
            AuthClient.from_config(config_dir).passwd(service, words[0], words[1], words[2])
            sys.stderr.write("Password change succeeded.\n")
            sys.exit(0)
        if len(words) == 2:
            info = client.login(service, words[0], words[1])
        else:
            info = client.pre(service, words[0])
    except AuthConnectError as exc:
        sys.stderr.write(f"ERR: authdaemon: s_connect() failed: {exc.error.strerror}\n")
        _failed(errno.EINVAL)
    except AuthFailed:
        _failed(errno.EPERM)
    except AuthTempFail:
        # Courier's PASSWD treats a missing answer like a refusal.
        _failed(errno.EPERM if len(words) >= 3 else errno.EIO)
    sys.stdout.buffer.write(encode(format_authinfo(info)))  # bytes as the daemon sent them
    sys.exit(0)
