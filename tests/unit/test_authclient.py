"""The client's settings: Courier's timeouts and environment overrides, the socket path."""

from __future__ import annotations

from pathlib import Path

from courierpy.authclient import AuthClient, Timeouts, cram_response_b64, socket_path_from_config


def test_timeouts_defaults_and_environment() -> None:
    assert Timeouts.from_environ({}) == Timeouts(10, 10, 30)
    env = {"TIMEOUT_SOCK": "3", "TIMEOUT_WRITE": "4.5", "TIMEOUT_READ": "60"}
    assert Timeouts.from_environ(env) == Timeouts(3, 4.5, 60)
    # nonsense falls back to the defaults
    bad = {"TIMEOUT_SOCK": "x", "TIMEOUT_WRITE": "-1", "TIMEOUT_READ": "0"}
    assert Timeouts.from_environ(bad) == Timeouts(10, 10, 30)


def test_socket_path_from_authdaemonrc(tmp_path: Path) -> None:
    assert socket_path_from_config(tmp_path) == Path("/run/courier/authdaemon/socket")
    (tmp_path / "authdaemonrc").write_text('daemons=5\nauthdaemonvar="/var/run/x"\n')
    assert socket_path_from_config(tmp_path) == Path("/var/run/x/socket")
    assert AuthClient.from_config(tmp_path).socket_path == "/var/run/x/socket"


def test_cram_response() -> None:
    # the response of the CRAM-MD5 capture in courier-transcripts/authdaemon-auth.txt
    assert cram_response_b64("carol", "85c363c71a9abb3b207c10a569255148") == (
        "Y2Fyb2wgODVjMzYzYzcxYTlhYmIzYjIwN2MxMGE1NjkyNTUxNDg="
    )
