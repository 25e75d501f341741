"""Our default files in etc/courier/ keep Debian Courier's keys and default values.

Each shell-format file is parsed with :func:`courierpy.config.read_shell_vars`,
ours and the one the Debian packages installed in /etc/courier, and every key
Debian sets must be set by ours to the same value, except the few deliberate
differences listed (and explained) in ``DELIBERATE``.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from authdaemon.server import ServerConfig
from courierpy.config import read_shell_vars
from tests.support import REPO, require

OURS = REPO / "etc" / "courier"
DEBIAN = Path("/etc/courier")

SHELL_FORMAT_FILES = ["authdaemonrc", "imapd", "imapd-ssl", "pop3d", "pop3d-ssl"]

#: Keys whose default we change on purpose: {file: {key: our value}}.
DELIBERATE = {
    "authdaemonrc": {
        # Debian's packaged authdaemonrc says authmodulelist="authpam" (its
        # conffile checksum matches the file on the oracle machine, so that
        # is the shipped value, not a local edit); Courier's upstream sample
        # lists every module.  We ship the modules courierpy implements first.
        # An admin may also have edited the system file: whatever it says, our
        # value is checked on its own below, not compared.
        "authmodulelist": "authuserdb",
    },
}

_NAME_LINE = re.compile(r"^##NAME: (\S+):\d+$", re.MULTILINE)


def _debian_file(name: str) -> Path:
    return Path(require(str(DEBIAN / name), "Debian's Courier config files (the oracle)"))


def _dpkg_conffile_md5(path: Path) -> str | None:
    """The checksum dpkg recorded for *path* as a conffile, if any package owns it."""
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Conffiles}\n"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == str(path):
            return parts[1]
    return None


@pytest.mark.parametrize("name", SHELL_FORMAT_FILES)
def test_same_keys_and_values_as_debian(name: str) -> None:
    debian = read_shell_vars(_debian_file(name))
    ours = read_shell_vars(OURS / name)
    allowed = DELIBERATE.get(name, {})
    assert debian, f"{DEBIAN / name} parsed to nothing"
    problems = []
    for key, value in debian.items():
        if key in allowed:
            continue
        if key not in ours:
            problems.append(f"{key}: missing (Debian: {value!r})")
        elif ours[key] != value:
            problems.append(f"{key}: ours {ours[key]!r}, Debian {value!r}")
    # Nothing extra either: a key Debian leaves unset stays unset (commented) in ours.
    problems += [f"{key}: set by us ({ours[key]!r}) but not by Debian"
                 for key in ours if key not in debian and key not in allowed]
    assert not problems, f"{name}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("name", SHELL_FORMAT_FILES)
def test_deliberate_differences_have_our_value(name: str) -> None:
    ours = read_shell_vars(OURS / name)
    for key, value in DELIBERATE.get(name, {}).items():
        assert ours.get(key) == value, f"{name}: {key}"


def test_debian_authmodulelist_is_what_the_package_ships() -> None:
    """Document the difference honestly: say what Debian really ships, and whether it was edited."""
    path = _debian_file("authdaemonrc")
    recorded = _dpkg_conffile_md5(path)
    if recorded is None:
        pytest.skip("authdaemonrc is not a dpkg conffile here")
    actual = hashlib.md5(path.read_bytes()).hexdigest()  # dpkg records MD5 checksums
    if actual != recorded:
        pytest.skip(f"{path} was edited locally; its authmodulelist is the admin's, not Debian's")
    assert read_shell_vars(path)["authmodulelist"] == "authpam"


@pytest.mark.parametrize("name", SHELL_FORMAT_FILES)
def test_sysconftool_markers_kept(name: str) -> None:
    """Every ``##NAME:`` section of Debian's file is present in ours (webadmin/sysconftool)."""
    debian = set(_NAME_LINE.findall(_debian_file(name).read_text()))
    ours = set(_NAME_LINE.findall((OURS / name).read_text()))
    assert debian - ours == set()


def _keyword_file(path: Path) -> dict[str, str]:
    """authmysqlrc-style ``KEY<blanks>value`` with ``#`` comments and ``\\`` continuation.

    A minimal reader for this test only (the real one belongs to the SQL/LDAP
    modules); continuation lines are joined with a single space.
    """
    values: dict[str, str] = {}
    pending: list[str] = []
    for raw in path.read_text().splitlines():
        if not pending and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        line = raw.rstrip()
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line.strip())
        joined = " ".join(p for p in pending if p)
        pending = []
        key, value = re.fullmatch(r"(\S+)[ \t]*(.*)", joined).groups()
        values[key] = value
    return values


@pytest.mark.parametrize("name", ["authmysqlrc", "authpgsqlrc", "authldaprc"])
def test_module_files_same_keys_and_values_as_debian(name: str) -> None:
    debian = _keyword_file(_debian_file(name))
    ours = _keyword_file(OURS / name)
    assert debian
    assert ours == debian


def test_authsqliterc_has_the_authsqlite_keys() -> None:
    keys = set(_keyword_file(OURS / "authsqliterc"))
    text = (OURS / "authsqliterc").read_text()
    expected = {
        "SQLITE_DATABASE", "SQLITE_USER_TABLE", "SQLITE_CRYPT_PWFIELD", "SQLITE_CLEAR_PWFIELD",
        "SQLITE_UID_FIELD", "SQLITE_GID_FIELD", "SQLITE_LOGIN_FIELD", "SQLITE_HOME_FIELD",
        "SQLITE_NAME_FIELD", "SQLITE_MAILDIR_FIELD", "SQLITE_DEFAULTDELIVERY",
        "SQLITE_QUOTA_FIELD", "SQLITE_AUXOPTIONS_FIELD", "SQLITE_WHERE_CLAUSE",
        "SQLITE_SELECT_CLAUSE", "SQLITE_ENUMERATE_CLAUSE", "SQLITE_CHPASS_CLAUSE",
    }
    # Set like authmysqlrc sets its MYSQL_ twins; the optional ones are documented, commented out.
    assert keys == {"SQLITE_DATABASE", "SQLITE_USER_TABLE", "SQLITE_CRYPT_PWFIELD",
                    "SQLITE_UID_FIELD", "SQLITE_GID_FIELD", "SQLITE_LOGIN_FIELD",
                    "SQLITE_HOME_FIELD", "SQLITE_NAME_FIELD"}
    for key in expected:
        assert re.search(rf"^#? ?{key}\s", text, re.MULTILINE), key


def _template_fields(path: Path) -> dict[str, str]:
    """``name = value`` lines of a certtool template, comments skipped."""
    fields = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            fields[name.strip()] = value.strip()
    return fields


@pytest.mark.parametrize("name", ["imapd.cnf", "pop3d.cnf"])
def test_certificate_templates_same_fields_as_debian(name: str) -> None:
    assert _template_fields(OURS / name) == _template_fields(_debian_file(name))


def test_quota_warning_is_a_plain_message() -> None:
    """deliverquota copies the file verbatim after Date: and Message-Id:, so no comments in it."""
    raw = (OURS / "quotawarnmsg").read_bytes()
    raw.decode("ascii")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert not msg.defects
    assert [k.lower() for k in msg.keys()] == [
        "from", "reply-to", "to", "subject", "mime-version", "content-type",
        "content-transfer-encoding",
    ]
    assert "Date" not in msg and "Message-Id" not in msg  # deliverquota adds those
    assert msg.get_content_type() == "text/plain" and msg.get_content().strip()


def test_our_authdaemond_reads_the_shipped_authdaemonrc() -> None:
    config = ServerConfig.load(OURS, environ={})
    assert config.modules == ("authuserdb",)
    assert config.daemons == 5
    assert str(config.authdaemonvar) == "/run/courier/authdaemon"
    assert config.debug_login == 0 and config.default_options == ""
