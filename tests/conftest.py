"""Fixtures shared by every test (see tests/instance.py for the instance)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.instance import Instance, make_instance


@pytest.fixture
def instance(tmp_path: Path) -> Instance:
    """A throwaway instance: config dir, empty userdb, mail root, all under tmp_path."""
    return make_instance(tmp_path / "instance")
