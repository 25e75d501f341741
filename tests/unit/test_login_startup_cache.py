"""StartupCache (courierpy.login.startup): results reused only while their files' bytes are
unchanged; set_environ (courierpy.login.handoff): os.environ becomes exactly the mapping."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from courierpy.cli.mkimapdcert import make_certificate
from courierpy.config import read_shell_vars
from courierpy.errors import ConfigError
from courierpy.login.handoff import set_environ
from courierpy.login.startup import StartupCache, read_config


@pytest.fixture(scope="module")
def pems(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return {cn: make_certificate({"cn": [cn], "organization": ["T"], "serial": ["1"]},
                                 bits=2048) for cn in ("a.example", "b.example")}


def test_config_parsed_once_and_again_when_the_bytes_change(tmp_path: Path) -> None:
    f = tmp_path / "imapd"
    f.write_text('A=1\nB="$A two"\n')
    cache = StartupCache()
    first = cache.shell_vars(f)
    assert dict(first) == {"A": "1", "B": "1 two"} == dict(read_shell_vars(f))
    assert cache.shell_vars(f) is first
    f.write_text('A=3\nB="$A two"\n')  # same size, other bytes
    second = cache.shell_vars(f)
    assert dict(second) == {"A": "3", "B": "3 two"}
    assert cache.shell_vars(f) is second


def test_config_errors_are_those_of_read_shell_vars(tmp_path: Path) -> None:
    cache = StartupCache()
    with pytest.raises(ConfigError, match="no such file"):
        cache.shell_vars(tmp_path / "missing")
    bad = tmp_path / "bad"
    bad.write_text("A=$(date)\n")
    with pytest.raises(ConfigError):
        cache.shell_vars(bad)
    (tmp_path / "good").write_text("A=1\n")
    assert read_config(tmp_path, ("missing", "bad", "good"), cache) == {"A": "1"}


def test_tls_context_reused_until_a_file_or_setting_changes(tmp_path: Path,
                                                            pems: dict[str, bytes]) -> None:
    cert = tmp_path / "server.pem"
    cert.write_bytes(pems["a.example"])
    settings = {"TLS_CERTFILE": str(cert)}
    cache = StartupCache()
    ctx = cache.server_context(settings, starttls=True)
    assert cache.server_context(dict(settings), starttls=True) is ctx
    assert ctx.num_tickets == 0
    assert cache.server_context(settings) is not ctx  # implicit TLS: a context of its own
    assert cache.server_context({**settings, "TLS_PROTOCOL": "TLSv1.3"},
                                starttls=True) is not ctx
    cert.write_bytes(pems["b.example"])
    other = cache.server_context(settings, starttls=True)
    assert other is not ctx
    assert cache.server_context(settings, starttls=True) is other


def test_a_new_generation_keeps_only_what_it_is_asked_for(tmp_path: Path,
                                                          pems: dict[str, bytes]) -> None:
    cert = tmp_path / "server.pem"
    cert.write_bytes(pems["a.example"])
    (tmp_path / "x").write_text("X=1\n")
    (tmp_path / "y").write_text("Y=1\n")
    old = StartupCache()
    x, ctx = old.shell_vars(tmp_path / "x"), old.server_context({"TLS_CERTFILE": str(cert)})
    old.shell_vars(tmp_path / "y")
    new = StartupCache(previous=old)
    assert new.shell_vars(tmp_path / "x") is x
    assert new.server_context({"TLS_CERTFILE": str(cert)}) is ctx
    new.seal()
    assert new.shell_vars(tmp_path / "x") is x
    assert str(tmp_path / "y") not in new._vars  # dropped with the old generation


def test_set_environ_makes_os_environ_exactly_the_mapping(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setenv("STAYS", "same")
    monkeypatch.setenv("CHANGES", "old")
    monkeypatch.setenv("GOES", "x")
    want = {"STAYS": "same", "CHANGES": "new", "COMES": "y z", "EMPTY": ""}
    saved = dict(os.environ)
    try:
        set_environ(want)
        assert dict(os.environ) == want
    finally:
        set_environ(saved)
    assert dict(os.environ) == saved
