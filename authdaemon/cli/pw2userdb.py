"""``pw2userdb``: print /etc/passwd and /etc/shadow as userdb text records.

For each account, one record and (unless ``--nouid``) one reverse uid record::

    sys<TAB>uid=3|gid=3|home=/dev|shell=/usr/sbin/nologin|systempw=*|gecos=sys
    3=<TAB>sys

Courier prints the accounts in Perl hash order (random); we print them in
passwd file order.  The options are Courier's (undocumented) ones.
"""

from __future__ import annotations

import pwd
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from authdaemon.userdb.textdb import ENCODING, ERRORS


@dataclass
class _Account:
    uid: str | None
    gid: str | None
    home: str | None
    shell: str | None
    gecos: str


def _has_char(value: str | None) -> bool:
    return value is not None and any(c != "\n" for c in value)


def _fields(line: str, count: int) -> list[str | None]:
    """Perl's ``(a, b, ...) = split(/:/)`` into *count* variables."""
    parts: list[str | None] = list(line.split(":", count)) if line else []
    parts += [None] * (count + 1 - len(parts))
    return parts[:count]


def convert(
    passwd_text: str,
    shadow_text: str | None,
    *,
    domain: str = "",
    nouid: bool = False,
    fixed_ids: tuple[str, str] | None = None,
) -> str:
    """The userdb lines for a passwd file (and its shadow file, if given)."""
    accounts: dict[str, _Account] = {}
    passwords: dict[str, str | None] = {}
    lines = passwd_text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the last line's newline, not an empty line
    for line in lines:
        if line.startswith("#"):
            continue
        acct, pw, uid, gid, name, home, shell = _fields(line, 7)
        acct = acct or ""
        if fixed_ids is not None:
            uid, gid = fixed_ids
        if pw != "x":
            passwords[acct] = pw
        accounts[acct] = _Account(uid, gid, home, shell, (name or "").replace("|", "."))
    if shadow_text is not None:
        for line in re.findall(r"[^\n]*\n|[^\n]+\Z", shadow_text):
            if line.startswith("#"):
                continue
            acct, pw, _ = _fields(line, 3)
            passwords[acct or ""] = pw
    suffix = f"@{domain}" if domain else ""
    out: list[str] = []
    for key, a in accounts.items():
        line = f"{key}{suffix}\tuid={a.uid or ''}|gid={a.gid or ''}|home={a.home or ''}"
        if _has_char(a.shell):
            line += f"|shell={a.shell}"
        if _has_char(passwords.get(key)):
            line += f"|systempw={passwords[key]}"
        if _has_char(a.gecos):
            line += f"|gecos={a.gecos}"
        out.append(line + "\n")
        if not nouid:
            out.append(f"{a.uid or ''}=\t{key}\n")
    return "".join(out)


def _read(path: str) -> str:
    with open(path, "rb") as f:
        return f.read().decode(ENCODING, ERRORS)


@click.command(context_settings={"help_option_names": ["--help"]})
@click.option("--passwd", "-passwd", "passwd", default="", metavar="FILE",
              help="passwd file (default /etc/passwd).")
@click.option("--shadow", "-shadow", "shadow", default="", metavar="FILE",
              help="shadow file (default /etc/shadow).")
@click.option("--noshadow", "-noshadow", is_flag=True, help="Do not read the shadow file.")
@click.option("--nouid", "-nouid", is_flag=True, help="Do not print reverse uid records.")
@click.option("--domain", "-domain", default="", metavar="DOMAIN",
              help="Append @DOMAIN to every account name.")
@click.option("--vpopuid", "-vpopuid", is_flag=True,
              help="Use the uid and gid of the vpopmail account for everyone.")
def main(passwd: str, shadow: str, noshadow: bool, nouid: bool, domain: str,
         vpopuid: bool) -> None:
    """Convert passwd/shadow to userdb format on standard output (see pw2userdb(8))."""
    passwd = passwd or "/etc/passwd"
    shadow = shadow or "/etc/shadow"
    fixed: tuple[str, str] | None = None
    if vpopuid:
        try:
            pw = pwd.getpwnam("vpopmail")
            fixed = (str(pw.pw_uid), str(pw.pw_gid))
        except KeyError:
            fixed = ("", "")
    try:
        passwd_text = _read(passwd)
        shadow_text = _read(shadow) if Path(shadow).is_file() and not noshadow else None
    except OSError as exc:
        sys.stderr.write(f"{exc.strerror}\n")
        sys.exit(exc.errno or 1)
    text = convert(passwd_text, shadow_text, domain=domain, nouid=nouid, fixed_ids=fixed)
    sys.stdout.buffer.write(text.encode(ENCODING, ERRORS))
    sys.stdout.flush()
    sys.exit(0)
