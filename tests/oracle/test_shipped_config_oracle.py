"""The real Courier programs accept our default files in etc/courier/.

- Courier's authdaemond reads authdaemonrc with its own line parser (not a
  shell): it must start on ours and authenticate through the module list we
  ship (authuserdb), checked with the real authtest.
- mkimapdcert/mkpop3dcert feed imapd.cnf/pop3d.cnf to GnuTLS certtool as a
  template: ours must give the same certificate subject and lifetime as
  Debian's.
- deliverquota -w copies quotawarnmsg into the maildir: ours must come out as a
  well-formed message.
"""

from __future__ import annotations

import datetime
import email
import email.policy
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.oracle.courier_auth import real_authdaemond
from tests.support import REPO, require

pytestmark = pytest.mark.oracle

OURS = REPO / "etc" / "courier"


def test_real_authdaemond_runs_on_our_authdaemonrc(tmp_path: Path) -> None:
    require("/usr/lib/courier/courier-authlib/authdaemond")
    userdbpw = require("userdbpw")
    etc = tmp_path / "etc"
    etc.mkdir()
    shutil.copy(OURS / "authdaemonrc", etc / "authdaemonrc")
    (etc / "authdaemonrc").chmod(0o640)
    pw = subprocess.run([userdbpw, "-md5"], input="alicepw\n", capture_output=True, text=True,
                        check=True).stdout.strip()
    (etc / "userdb").write_text(
        f"alice\tuid=5000|gid=5000|home=/srv/vmail/alice|systempw={pw}\n"
    )
    (etc / "userdb").chmod(0o600)
    with real_authdaemond(etc) as ns:
        ns.run([require("makeuserdb")], check=True)
        ok = ns.authtest("alice", "alicepw")
        bad = ns.authtest("alice", "wrong")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Home Directory: /srv/vmail/alice" in ok.stdout
    assert bad.returncode != 0


def _self_signed_subject(tmp_path: Path, template: Path, tag: str) -> tuple[str, int]:
    """Subject line and validity in days of a certificate certtool makes from *template*."""
    certtool = require("/usr/bin/certtool", "mkimapdcert's backend on Debian")
    openssl = require("openssl")
    key, cert = tmp_path / f"{tag}.key", tmp_path / f"{tag}.pem"
    subprocess.run([certtool, "--generate-privkey", "--key-type=ecdsa", "--outfile", key],
                   capture_output=True, check=True)
    subprocess.run([certtool, "--generate-self-signed", "--load-privkey", key,
                    "--template", template, "--outfile", cert], capture_output=True, check=True)
    out = subprocess.run([openssl, "x509", "-noout", "-subject", "-startdate", "-enddate",
                          "-serial", "-nameopt", "RFC2253", "-in", cert],
                         capture_output=True, text=True, check=True).stdout
    fields = dict(line.split("=", 1) for line in out.splitlines())
    lifetime = _openssl_time(fields["notAfter"]) - _openssl_time(fields["notBefore"])
    return f"{fields['subject']} serial={fields['serial']}", round(lifetime.total_seconds() / 86400)


def _openssl_time(text: str) -> datetime.datetime:
    """openssl's "Nov 25 16:40:00 2026 GMT"."""
    return datetime.datetime.strptime(text, "%b %d %H:%M:%S %Y %Z")


@pytest.mark.parametrize("name", ["imapd.cnf", "pop3d.cnf"])
def test_certificate_template_gives_debians_subject(tmp_path: Path, name: str) -> None:
    debian = Path(require(f"/etc/courier/{name}", "Debian's template (the oracle)"))
    ours = _self_signed_subject(tmp_path, OURS / name, "ours")
    theirs = _self_signed_subject(tmp_path, debian, "debian")
    assert ours == theirs
    assert "CN=localhost" in ours[0] and ours[1] == 365


def test_deliverquota_sends_our_quota_warning(tmp_path: Path) -> None:
    maildirmake = require("maildirmake")
    deliverquota = require("deliverquota")
    md = tmp_path / "Maildir"
    subprocess.run([maildirmake, md], check=True, timeout=10)
    # Set the quota on an existing maildir: maildirmake -q on a missing one never returns.
    subprocess.run([maildirmake, "-q", "1000S", md], check=True, timeout=10)
    warn = OURS / "quotawarnmsg"
    for body in ("x" * 900, "y"):  # the second delivery sees the maildir 90% full
        subprocess.run([deliverquota, "-w", "50", "-W", warn, md],
                       input=f"Subject: t\n\n{body}\n".encode(), check=True, timeout=10)
    warnings = [p for p in (md / "new").iterdir() if "_warn" in p.name]
    assert len(warnings) == 1
    raw = warnings[0].read_bytes()
    assert re.match(rb"Date: [^\n]+\nMessage-Id: <[^\n]+>\n", raw)
    assert raw.endswith(warn.read_bytes())
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Subject"] and msg["From"] and msg.get_content_type() == "text/plain"
    assert msg.get_content().strip()
