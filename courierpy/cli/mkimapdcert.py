"""mkimapdcert / mkpop3dcert: make the self-signed certificate IMAPS/POP3S start with.

    mkimapdcert [PEMFILE]      (PEMFILE without ".pem")
    mkpop3dcert [PEMFILE]

As Courier's (Debian builds them on GnuTLS certtool): the subject comes from
the certtool template ``imapd.cnf`` / ``pop3d.cnf`` in the configuration
directory (``cn``, ``organization``, ``unit``, ``locality``, ``state``,
``country``, ``email``, ``serial``, ``expiration_days``, ``dns_name``,
``ip_address``); the key is RSA, 3072 bits (``$BITS``: a certtool security
level, ``medium`` = 2048, ``high`` = 3072, ``ultra`` = 4096 here, or a number
of bits, at least 2048); the PEM file holds the key and then the certificate,
mode 600, owned by the ``courier`` user when run as root.  An existing PEM
file is never overwritten: ``<file>.pem already exists.`` and exit 1.

Without PEMFILE the file is ``TLS_CERTFILE`` of ``imapd-ssl`` /
``pop3d-ssl`` (Courier's default, ``<config dir>/imapd.pem``, when unset).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import pwd
import re
import shlex
import sys
from pathlib import Path

import click

from courierpy.cli.options import config_dir_option
from courierpy.config import read_shell_vars
from courierpy.errors import EX_CONFIG, ConfigError, CourierError

__all__ = ["make_certificate", "parse_template"]

_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
_BITS = {"low": 2048, "legacy": 2048, "medium": 2048, "high": 3072, "ultra": 4096,
         "future": 4096}


class CertError(CourierError):
    exit_code = 1


def parse_template(path: Path) -> dict[str, list[str]]:
    """certtool template ``name = value`` lines (values may be quoted; names repeat)."""
    out: dict[str, list[str]] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(str(path), None, e.strerror or str(e)) from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            if line.strip().isidentifier():  # a flag such as tls_www_server
                out.setdefault(line.strip(), []).append("")
                continue
            raise ConfigError(str(path), number, "not a 'name = value' line")
        value = m.group(2)
        try:
            words = shlex.split(value, comments=True)
        except ValueError:
            raise ConfigError(str(path), number, "unbalanced quotes") from None
        out.setdefault(m.group(1), []).append(" ".join(words))
    return out


def _key_bits(env: dict[str, str]) -> int:
    bits = env.get("BITS", "").strip().lower()
    if not bits:
        return 3072
    if bits.isdigit():
        return max(2048, int(bits))
    if bits not in _BITS:
        raise CertError(f"BITS: unknown security level {bits!r}")
    return _BITS[bits]


def make_certificate(template: dict[str, list[str]], bits: int = 3072) -> bytes:
    """The PEM bytes: the RSA key, then the self-signed certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    def first(name: str) -> str | None:
        values = template.get(name)
        return values[0] if values and values[0] != "" else None

    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    attrs = []
    for field, oid in (("country", NameOID.COUNTRY_NAME),
                       ("state", NameOID.STATE_OR_PROVINCE_NAME),
                       ("locality", NameOID.LOCALITY_NAME),
                       ("organization", NameOID.ORGANIZATION_NAME),
                       ("unit", NameOID.ORGANIZATIONAL_UNIT_NAME),
                       ("cn", NameOID.COMMON_NAME)):
        value = first(field)
        if value is not None:
            attrs.append(x509.NameAttribute(oid, value))
    name = x509.Name(attrs)
    serial_text = first("serial") or "1"
    try:
        serial = int(serial_text, 16) if serial_text.lower().startswith("0x") else int(serial_text)
        days = int(first("expiration_days") or "365")
    except ValueError as e:
        raise CertError(f"template: {e}") from None
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(max(serial, 1))
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
    )
    alt: list[x509.GeneralName] = []
    alt += [x509.RFC822Name(v) for v in template.get("email", []) if v]
    alt += [x509.DNSName(v) for v in template.get("dns_name", []) if v]
    try:
        alt += [x509.IPAddress(ipaddress.ip_address(v))
                for v in template.get("ip_address", []) if v]
    except ValueError as e:
        raise CertError(f"template: ip_address: {e}") from None
    if alt:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    if "tls_www_server" in template:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ) + cert.public_bytes(serialization.Encoding.PEM)


def run(service: str, config_dir: Path, pemfile: str | None) -> int:
    """Make ``<pemfile>.pem`` for *service* (``imapd`` or ``pop3d``)."""
    if pemfile:
        target = Path(pemfile + ".pem")
    else:
        target = config_dir / f"{service}.pem"
        ssl_cfg = config_dir / f"{service}-ssl"
        try:
            if ssl_cfg.exists():
                certfile = read_shell_vars(ssl_cfg).get("TLS_CERTFILE")
                if certfile:
                    target = Path(certfile)
        except ConfigError as e:
            print(str(e), file=sys.stderr)
            return EX_CONFIG
    if target.exists():
        print(f"{target} already exists.")
        return 1
    try:
        template = parse_template(config_dir / f"{service}.cnf")
        pem = make_certificate(template, _key_bits(dict(os.environ)))
    except CourierError as e:
        print(str(e), file=sys.stderr)
        return 1
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        print(f"{target}: {e.strerror}", file=sys.stderr)
        return 1
    try:
        os.fchmod(fd, 0o600)
        if os.geteuid() == 0:
            try:
                os.fchown(fd, pwd.getpwnam("courier").pw_uid, -1)
            except KeyError:
                pass
        os.write(fd, pem)
        os.fsync(fd)
    except OSError as e:
        os.close(fd)
        target.unlink(missing_ok=True)
        print(f"{target}: {e.strerror}", file=sys.stderr)
        return 1
    os.close(fd)
    return 0


def _command(service: str) -> click.Command:
    @click.command(name=f"mk{service}cert")
    @config_dir_option
    @click.argument("pemfile", required=False)
    def cmd(config_dir: Path, pemfile: str | None) -> None:
        sys.exit(run(service, config_dir, pemfile))

    cmd.help = (f"Make the self-signed certificate for {service} from {service}.cnf "
                "(PEMFILE is the file name without .pem).")
    return cmd


main = _command("imapd")
main_pop3 = _command("pop3d")


if __name__ == "__main__":  # pragma: no cover
    main()
