"""Small helpers shared by the tests: required programs, free ports."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

#: Under CI a test that needs something missing must fail, never skip.
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(path_or_name: str, why: str = "") -> str:
    """The path of a program or file the test needs; skip (fail under CI=true) if absent."""
    found = path_or_name if os.path.isabs(path_or_name) else shutil.which(path_or_name)
    if found and os.path.exists(found):
        return found
    message = (
        f"{path_or_name} is not installed{': ' + why if why else ''} (scripts/setup installs it)"
    )
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def require_root(why: str) -> None:
    """Skip (fail under CI, which runs as root) when the test needs root."""
    if os.geteuid() == 0:
        return
    if IN_CI:
        pytest.fail(f"needs root: {why}")
    pytest.skip(f"needs root: {why}")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on *host* that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


REPO = Path(__file__).resolve().parents[1]
