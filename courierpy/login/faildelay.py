"""How long a failed login waits before its answer.

Courier waits a fixed 5 seconds after every failed login.  We wait the same,
plus, beyond Courier, a growing delay for an address or an account that keeps
failing: each failure adds 1 to a score kept for the client's IP address and
for the login name; scores halve every ``half_life`` seconds.  With a score
``s`` (the larger of the two before this failure counts, rounded) the wait is::

    base + min(cap, growth * 2 ** (s - 1))      (just ``base`` when s < 1)

Every connection is its own process, so the scores live in a small file
shared by all of them (``<authdaemonvar>/loginfailures`` by default), read
and rewritten under an exclusive ``fcntl`` lock.  The file holds at most
``max_entries`` lines (``key TAB score TAB unix-time``); the weakest entries
(lowest decayed score) are dropped first, and entries that decayed below
0.05 are forgotten.  A file that cannot be opened only loses the growth: the
base delay always applies.

Environment (tests and tuning): ``COURIERPY_LOGIN_FAIL_DELAY`` (base, 5),
``COURIERPY_LOGIN_FAIL_GROWTH`` (2), ``COURIERPY_LOGIN_FAIL_MAX`` (cap, 60),
``COURIERPY_LOGIN_FAIL_HALFLIFE`` (600), ``COURIERPY_LOGIN_FAIL_TABLE`` (the
file; ``none`` turns the growth off).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FailDelay", "FailTable", "from_env"]

TABLE_NAME = "loginfailures"


def _float(env: Mapping[str, str], key: str, default: float) -> float:
    try:
        return float(env.get(key, "") or default)
    except ValueError:
        return default


@dataclass(frozen=True)
class FailTable:
    """The shared score file."""

    path: Path
    half_life: float = 600.0
    max_entries: int = 2000

    def _decayed(self, score: float, then: float, now: float) -> float:
        return score * 0.5 ** (max(0.0, now - then) / self.half_life)

    def record(self, keys: list[str], now: float | None = None) -> float:
        """Count one failure for each key; return the highest score before it."""
        now = time.time() if now is None else now
        keys = [k.replace("\t", " ").replace("\n", " ") for k in keys if k]
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with os.fdopen(os.dup(fd), "r+", encoding="utf-8", errors="replace") as f:
                table: dict[str, float] = {}
                for line in f:
                    parts = line.rstrip("\n").split("\t")
                    if len(parts) != 3:
                        continue
                    try:
                        score = self._decayed(float(parts[1]), float(parts[2]), now)
                    except ValueError:
                        continue
                    if score >= 0.05:
                        table[parts[0]] = score
                before = max((table.get(k, 0.0) for k in keys), default=0.0)
                for k in keys:
                    table[k] = table.get(k, 0.0) + 1.0
                if len(table) > self.max_entries:
                    keep = sorted(table.items(), key=lambda kv: kv[1], reverse=True)
                    table = dict(keep[: self.max_entries])
                f.seek(0)
                f.truncate()
                f.write("".join(f"{k}\t{v:.4f}\t{now:.3f}\n" for k, v in table.items()))
            return before
        finally:
            os.close(fd)


@dataclass(frozen=True)
class FailDelay:
    """The delay policy; :meth:`failed` records a failure and returns the wait."""

    base: float = 5.0
    growth: float = 2.0
    cap: float = 60.0
    table: FailTable | None = None

    def extra(self, score: float) -> float:
        s = int(score + 0.5)
        if s < 1 or self.growth <= 0:
            return 0.0
        return min(self.cap, self.growth * 2 ** min(s - 1, 30))

    def failed(self, ip: str, user: str | None) -> float:
        if self.table is None:
            return self.base
        keys = [f"ip:{ip}"] if ip else []
        if user:
            keys.append(f"user:{user}")
        try:
            score = self.table.record(keys)
        except OSError:
            return self.base
        return self.base + self.extra(score)


def from_env(env: Mapping[str, str], authdaemonvar: str | os.PathLike[str] | None) -> FailDelay:
    """The policy from the environment; the table in *authdaemonvar* unless overridden."""
    where = env.get("COURIERPY_LOGIN_FAIL_TABLE")
    table = None
    if where and where.lower() != "none":
        table = Path(where)
    elif not where and authdaemonvar:
        table = Path(authdaemonvar) / TABLE_NAME
    return FailDelay(
        base=_float(env, "COURIERPY_LOGIN_FAIL_DELAY", 5.0),
        growth=_float(env, "COURIERPY_LOGIN_FAIL_GROWTH", 2.0),
        cap=_float(env, "COURIERPY_LOGIN_FAIL_MAX", 60.0),
        table=None if table is None else FailTable(
            table, half_life=max(1.0, _float(env, "COURIERPY_LOGIN_FAIL_HALFLIFE", 600.0))),
    )
