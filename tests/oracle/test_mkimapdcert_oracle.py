"""mkimapdcert/mkpop3dcert against Courier's (Debian's, which runs GnuTLS certtool).

Both make a PEM from the same template; openssl must show the same subject,
serial, extensions, key size and validity, the file must be mode 600, and both
refuse to overwrite an existing file with the same message and exit code.
Our PEM must also give a working server context (courierpy.tls).
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from courierpy.tls import server_context
from tests.support import require

pytestmark = pytest.mark.oracle

OURS_DIR = Path(sys.executable).parent


def describe(pem: Path) -> dict[str, object]:
    openssl = require("openssl")

    def x509(*args: str) -> str:
        return subprocess.run([openssl, "x509", "-in", str(pem), "-noout", *args],
                              capture_output=True, text=True, check=True).stdout

    key = subprocess.run([openssl, "pkey", "-in", str(pem), "-noout", "-text"],
                         capture_output=True, text=True, check=True).stdout.splitlines()[0]
    start = x509("-startdate").split("=", 1)[1].strip()
    end = x509("-enddate").split("=", 1)[1].strip()
    days = (ssl.cert_time_to_seconds(end) - ssl.cert_time_to_seconds(start)) // 86400
    return {
        "subject": x509("-subject"),
        "issuer": x509("-issuer"),
        "serial": x509("-serial"),
        "ext": x509("-ext", "subjectAltName,basicConstraints"),
        "key": key,
        "days": days,
        "mode": oct(pem.stat().st_mode & 0o777),
        "owner": pem.owner(),
    }


@pytest.mark.parametrize("service", ["imapd", "pop3d"])
def test_certificate_matches_courier(service: str, tmp_path: Path) -> None:
    real = require(f"/usr/sbin/mk{service}cert")
    require("certtool", "Debian's mkimapdcert needs GnuTLS certtool")
    template = require(f"/etc/courier/{service}.cnf")
    ours = require(str(OURS_DIR / f"mk{service}cert"), "pip install -e .")
    conf = tmp_path / "conf"
    conf.mkdir()
    shutil.copy(template, conf / f"{service}.cnf")
    results = {}
    for name, argv in (("courier", [real, str(tmp_path / "real")]),
                       ("ours", [ours, "--config-dir", str(conf), str(tmp_path / "ours")])):
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        pem = tmp_path / f"{'real' if name == 'courier' else 'ours'}.pem"
        info = describe(pem)
        again = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        info["again"] = (again.returncode, again.stdout.replace(str(pem), "<pem>"))
        results[name] = info
    assert results["ours"] == results["courier"]
    assert results["ours"]["again"] == (1, "<pem> already exists.\n")
    ctx = server_context({"TLS_CERTFILE": str(tmp_path / "ours.pem")})
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2


def test_default_target_is_tls_certfile(tmp_path: Path) -> None:
    ours = require(str(OURS_DIR / "mkimapdcert"), "pip install -e .")
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "imapd.cnf").write_text('cn = "mail.example.com"\norganization = "Example"\n'
                                    "country = DE\nexpiration_days = 10\nserial = 5\n")
    target = tmp_path / "certs" / "my.pem"
    target.parent.mkdir()
    (conf / "imapd-ssl").write_text(f"TLS_CERTFILE={target}\n")
    p = subprocess.run([ours, "--config-dir", str(conf)], capture_output=True, text=True,
                       env={"BITS": "medium", "PATH": "/usr/bin:/bin"}, timeout=60)
    assert p.returncode == 0, p.stderr
    info = describe(target)
    assert info["subject"] == "subject=C = DE, O = Example, CN = mail.example.com\n"
    assert info["serial"] == "serial=05\n" and info["days"] == 10
    assert "2048 bit" in str(info["key"])
    assert not (conf / "imapd.pem").exists()
