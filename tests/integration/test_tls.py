"""TLS server contexts from Courier's TLS_* keys, exercised over real sockets.

A loopback echo listener wraps connections with the context under test; Python's
ssl module and ``openssl s_client`` connect to it.  (The implicit-TLS ports of
imapd-ssl/pop3d-ssl and STARTTLS use these contexts once those servers wire
them in; this file checks the contexts themselves.)
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from courierpy.cli.mkimapdcert import make_certificate
from courierpy.tls import TLSConfigError, TlsSettings, minimum_version, server_context
from tests.support import require

TEMPLATE = {"cn": ["localhost"], "organization": ["Test"], "serial": ["7"]}


@pytest.fixture(scope="module")
def pems(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("tls")
    out = {}
    for name, cn in (("main", "localhost"), ("other", "mail.example.org")):
        path = d / f"{name}.pem"
        path.write_bytes(make_certificate({**TEMPLATE, "cn": [cn]}, bits=2048))
        out[name] = path
    return out


@contextmanager
def echo_server(ctx: ssl.SSLContext) -> Iterator[int]:
    """A TLS echo listener on loopback; yields its port."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    lsock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = lsock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    data = tls.recv(1024)
                    tls.sendall(data.upper())
            except (OSError, ssl.SSLError):
                conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield lsock.getsockname()[1]
    finally:
        stop.set()
        t.join(5)
        lsock.close()


def client(port: int, *, version: ssl.TLSVersion, server_name: str = "localhost",
           cert: Path | None = None) -> tuple[str, bytes, dict]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version < ssl.TLSVersion.TLSv1_2:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():  # TLSv1_1 is deprecated: that is the point of the test
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ctx.maximum_version = version
    if cert is not None:
        ctx.load_cert_chain(cert)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as tls:
            tls.sendall(b"ping")
            got = tls.recv(100)
            peer = ssl.DER_cert_to_PEM_cert(tls.getpeercert(binary_form=True))
            return tls.version() or "", got, {"pem": peer}


def settings(pem: Path, **extra: str) -> dict[str, str]:
    return {"TLS_CERTFILE": str(pem), "TLS_VERIFYPEER": "NONE",
            "TLS_DHPARAMS": "/nonexistent/dhparams.pem", **extra}


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_python_client_connects_with_tls12_and_13(pems: dict, version: ssl.TLSVersion) -> None:
    with echo_server(server_context(settings(pems["main"]))) as port:
        got_version, data, _ = client(port, version=version)
    assert got_version == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[
        version]
    assert data == b"PING"


@pytest.mark.parametrize("flag,name", [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
def test_openssl_s_client_connects(pems: dict, flag: str, name: str) -> None:
    openssl = require("openssl")
    with echo_server(server_context(settings(pems["main"]))) as port:
        p = subprocess.run([openssl, "s_client", "-connect", f"127.0.0.1:{port}", flag,
                            "-brief", "-ign_eof", "-servername", "localhost"],
                           input=b"hello\n", capture_output=True, timeout=20)
    assert b"HELLO" in p.stdout, p.stderr
    assert f"Protocol version: {name}".encode() in p.stderr


def test_tls11_is_refused(pems: dict) -> None:
    ctx = server_context(settings(pems["main"], TLS_PROTOCOL="TLSv1"))
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2  # never below 1.2
    with echo_server(ctx) as port:
        with pytest.raises((ssl.SSLError, OSError)):
            client(port, version=ssl.TLSVersion.TLSv1_1)
        assert client(port, version=ssl.TLSVersion.TLSv1_2)[0] == "TLSv1.2"


def test_tls13_only_refuses_tls12(pems: dict) -> None:
    with echo_server(server_context(settings(pems["main"], TLS_PROTOCOL="TLSv1.3"))) as port:
        with pytest.raises((ssl.SSLError, OSError)):
            client(port, version=ssl.TLSVersion.TLSv1_2)
        assert client(port, version=ssl.TLSVersion.TLSv1_3)[0] == "TLSv1.3"


def test_starttls_protocol_is_used_for_starttls(pems: dict) -> None:
    cfg = settings(pems["main"], TLS_PROTOCOL="TLSv1.2", TLS_STARTTLS_PROTOCOL="TLSv1.3")
    assert server_context(cfg).minimum_version == ssl.TLSVersion.TLSv1_2
    assert server_context(cfg, starttls=True).minimum_version == ssl.TLSVersion.TLSv1_3


@pytest.mark.parametrize("value,expected", [
    ("", ssl.TLSVersion.TLSv1_2), ("TLSv1", ssl.TLSVersion.TLSv1_2),
    ("TLSv1.1++", ssl.TLSVersion.TLSv1_2), ("TLSv1.2", ssl.TLSVersion.TLSv1_2),
    ("TLSv1.2++", ssl.TLSVersion.TLSv1_2), ("TLS1_2PLUS", ssl.TLSVersion.TLSv1_2),
    ("SSL23", ssl.TLSVersion.TLSv1_2), ("TLSv1.3", ssl.TLSVersion.TLSv1_3),
    ("TLS1_3PLUS", ssl.TLSVersion.TLSv1_3), ("tlsv1.3+", ssl.TLSVersion.TLSv1_3),
])
def test_protocol_names(value: str, expected: ssl.TLSVersion) -> None:
    assert minimum_version(value) == expected


@pytest.mark.parametrize("value", ["TLSv2", "bogus", "TLSv1.9"])
def test_unknown_protocol_is_a_config_error(value: str) -> None:
    with pytest.raises(TLSConfigError, match="TLS_PROTOCOL"):
        minimum_version(value)


def test_missing_certificate_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(TLSConfigError, match="No such file or directory"):
        server_context(settings(tmp_path / "missing.pem"))
    with pytest.raises(TLSConfigError, match="TLS_CERTFILE is not set"):
        server_context({})


def test_bad_certificate_fails_at_construction(tmp_path: Path, pems: dict) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(TLSConfigError, match="not a usable certificate"):
        server_context(settings(bad))
    cert_only = tmp_path / "cert-only.pem"
    text = pems["main"].read_text()
    cert_only.write_text(text[text.index("-----BEGIN CERTIFICATE-----"):])
    with pytest.raises(TLSConfigError):
        server_context(settings(cert_only))
    # a key that does not belong to the certificate
    key_other = tmp_path / "key-other.pem"
    other = pems["other"].read_text()
    key_other.write_text(other[: other.index("-----BEGIN CERTIFICATE-----")])
    with pytest.raises(TLSConfigError):
        server_context(settings(cert_only, TLS_PRIVATE_KEYFILE=str(key_other)))


def test_separate_private_keyfile(tmp_path: Path, pems: dict) -> None:
    text = pems["main"].read_text()
    cut = text.index("-----BEGIN CERTIFICATE-----")
    (tmp_path / "c.pem").write_text(text[cut:])
    (tmp_path / "k.pem").write_text(text[:cut])
    ctx = server_context(settings(tmp_path / "c.pem", TLS_PRIVATE_KEYFILE=str(tmp_path / "k.pem")))
    with echo_server(ctx) as port:
        assert client(port, version=ssl.TLSVersion.TLSv1_3)[1] == b"PING"


def test_cipher_list_and_dhparams_errors(pems: dict, tmp_path: Path) -> None:
    with pytest.raises(TLSConfigError, match="TLS_CIPHER_LIST"):
        server_context(settings(pems["main"], TLS_CIPHER_LIST="NO-SUCH-CIPHER"))
    bad = tmp_path / "dh.pem"
    bad.write_text("garbage\n")
    with pytest.raises(TLSConfigError, match="DH parameters"):
        server_context(settings(pems["main"], TLS_DHPARAMS=str(bad)))
    ctx = server_context(settings(pems["main"], TLS_CIPHER_LIST="ECDHE+AESGCM"))
    with echo_server(ctx) as port:
        assert client(port, version=ssl.TLSVersion.TLSv1_2)[1] == b"PING"


def test_sni_picks_the_virtual_host_certificate(tmp_path: Path, pems: dict) -> None:
    main = tmp_path / "imapd.pem"
    main.write_bytes(pems["main"].read_bytes())
    (tmp_path / "imapd.pem.mail.example.org").write_bytes(pems["other"].read_bytes())
    with echo_server(server_context(settings(main))) as port:
        _, _, default = client(port, version=ssl.TLSVersion.TLSv1_3)
        _, _, vhost = client(port, version=ssl.TLSVersion.TLSv1_3,
                             server_name="mail.example.org")
    assert default["pem"] != vhost["pem"]
    other_cert = pems["other"].read_text()
    assert vhost["pem"].split()[2:6] == other_cert[
        other_cert.index("-----BEGIN CERTIFICATE-----"):].split()[2:6]


def test_requirepeer_needs_a_client_certificate(pems: dict) -> None:
    cfg = settings(pems["main"], TLS_VERIFYPEER="REQUIREPEER",
                   TLS_TRUSTCERTS=str(pems["other"]))
    ctx = server_context(cfg)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    with echo_server(ctx) as port:
        with pytest.raises((ssl.SSLError, OSError)):
            client(port, version=ssl.TLSVersion.TLSv1_2)
        # a certificate the trust store holds is accepted
        assert client(port, version=ssl.TLSVersion.TLSv1_2, cert=pems["other"])[1] == b"PING"
    assert server_context({**cfg, "TLS_VERIFYPEER": "PEER"}).verify_mode == ssl.CERT_OPTIONAL
    with pytest.raises(TLSConfigError, match="TLS_VERIFYPEER"):
        server_context({**cfg, "TLS_VERIFYPEER": "SOMETIMES"})
    with pytest.raises(TLSConfigError, match="TLS_TRUSTCERTS"):
        server_context({**cfg, "TLS_TRUSTCERTS": "/nonexistent/ca.pem"})


def test_settings_from_shipped_config() -> None:
    from courierpy.config import read_shell_vars
    from tests.support import REPO

    s = TlsSettings.from_config(read_shell_vars(REPO / "etc/courier/imapd-ssl"))
    assert s.certfile.endswith("imapd.pem")
    assert s.verifypeer in ("NONE", "PEER", "REQUIREPEER")
