"""The failed-login delay table: growth, decay, the bound, and sharing between processes."""

from __future__ import annotations

import os
from pathlib import Path

from courierpy.login.faildelay import FailDelay, FailTable, from_env
from courierpy.login.syslogger import split_level


def test_growth_and_cap(tmp_path: Path) -> None:
    d = FailDelay(base=5.0, growth=2.0, cap=60.0, table=FailTable(tmp_path / "t"))
    waits = [d.failed("1.2.3.4", "erin") for _ in range(8)]
    assert waits == [5.0, 7.0, 9.0, 13.0, 21.0, 37.0, 65.0, 65.0]
    # another account from the same address is delayed as the address is
    assert d.failed("1.2.3.4", "frank") == 65.0
    # the account from another address too
    assert d.failed("5.6.7.8", "erin") == 65.0
    assert d.failed("9.9.9.9", "zoe") == 5.0


def test_decay(tmp_path: Path) -> None:
    t = FailTable(tmp_path / "t", half_life=100.0)
    for _ in range(4):
        t.record(["ip:a"], now=1000.0)
    assert t.record(["ip:a"], now=1000.0) == 4.0
    assert abs(t.record(["ip:a"], now=1100.0) - 2.5) < 1e-3  # 5 halved
    assert t.record(["ip:a"], now=1100.0 + 100 * 20) == 0.0  # forgotten


def test_bounded(tmp_path: Path) -> None:
    t = FailTable(tmp_path / "t", max_entries=50)
    t.record(["ip:keep"])
    t.record(["ip:keep"])
    for i in range(200):
        t.record([f"ip:{i}"])
    lines = (tmp_path / "t").read_text().splitlines()
    assert len(lines) <= 50
    assert any(ln.startswith("ip:keep\t") for ln in lines)  # the strongest survive


def test_shared_between_processes(tmp_path: Path) -> None:
    t = FailTable(tmp_path / "t", half_life=1e9)  # no decay while the children run
    pids = []
    for _ in range(4):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                for _ in range(25):
                    t.record(["ip:x"])
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    assert abs(t.record(["ip:x"]) - 100.0) < 1e-3  # no update lost under the lock


def test_env_and_unwritable(tmp_path: Path) -> None:
    d = from_env({"COURIERPY_LOGIN_FAIL_DELAY": "0.5", "COURIERPY_LOGIN_FAIL_TABLE": "none"},
                 tmp_path)
    assert d.table is None and d.failed("1.1.1.1", "x") == 0.5
    d = from_env({}, tmp_path / "missing-dir")
    assert d.base == 5.0 and d.failed("1.1.1.1", "x") == 5.0  # no table: Courier's 5 s
    d = from_env({}, tmp_path)
    assert d.table is not None and d.table.path == tmp_path / "loginfailures"


def test_syslog_level_split() -> None:
    import syslog

    assert split_level("INFO: LOGIN FAILED, user=a, ip=[1.2.3.4], port=[5]") == (
        syslog.LOG_INFO, "LOGIN FAILED, user=a, ip=[1.2.3.4], port=[5]")
    assert split_level("no level") == (syslog.LOG_ERR, "no level")
