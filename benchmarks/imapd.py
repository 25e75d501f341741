"""imapd: our imapd against the real Courier imapd, whole round trips over a pipe.

    .venv/bin/python -m benchmarks.imapd [--messages 10000] [--rounds 3] [--no-append]

Builds one seeded Maildir of realistic mail with the generator of
``benchmarks.fetch_cache`` (threads, RFC 2047 names, multipart, attachments),
then per round, for Courier and for ours in turn (the order alternates between
rounds), on a fresh copy of it, each server started pre-authenticated as
Courier's imaplogin hands over (``AUTHENTICATED``, cwd = home, argv[1] =
Maildir, the keys of /etc/courier/imapd in the environment), times each
command from the request to its tagged OK as the client sees it:

- first ``SELECT INBOX`` (no courierimapuiddb, no cache file);
- ``FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)``: first, repeated in
  the same session, and in a new session (our cache file now present);
- ``FETCH 1:* BODYSTRUCTURE``: first, repeated, new session;
- ``UID SEARCH FROM x`` (header) first and repeated, ``UID SEARCH TEXT x``;
- 200 ``FETCH n BODY.PEEK[]`` one after the other;
- ``STORE 1:* +FLAGS (\\Flagged)`` and ``STORE 1:* -FLAGS (\\Flagged)``;
- 1000 ``APPEND`` with synchronizing literals.

The client reads responses (literals included) in big chunks and scans only
for the tagged line; its own cost is reported once: the NOOP round trip, and
the time to scan the largest response captured. Medians, ratios ours/Courier,
and each goal of issue 5 as met or MISSED. Measurements, not tests.
``--no-append`` leaves out the APPEND row (Courier's APPENDs take most of a
run): for quicker runs while iterating; the default is the full run.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.fetch_cache import make_message
from tests.oracle.courier_imapd import IMAPD, courier_env

REPO = Path(__file__).resolve().parents[1]
OURS = str(REPO / ".venv" / "bin" / "imapd")
ENVELOPE = b"FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)"
BODYSTRUCTURE = b"FETCH 1:* BODYSTRUCTURE"
HEADER_SEARCH = b"UID SEARCH FROM jurgen"
TEXT_SEARCH = b"UID SEARCH TEXT outage"
_LITERAL = re.compile(rb"\{(\d+)\}\r\n")

# (label, ratio goal or None)
GOALS: dict[str, float] = {
    "first SELECT": 1.5,
    "FETCH envelope repeated": 0.2,
    "FETCH envelope new session": 0.2,
    "BODYSTRUCTURE repeated": 0.1,
    "BODYSTRUCTURE new session": 0.1,
    "SEARCH header repeated": 0.1,
    "SEARCH header new session": 0.1,
    "SEARCH TEXT": 1.0,
    "APPEND 1000": 1.5,
}


def build_maildir(home: Path, count: int, seed: int = 1) -> None:
    """*count* realistic messages in home/Maildir/cur, a few in new/."""
    rng = random.Random(seed)
    md = home / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        data = make_message(rng, i).replace(b"\n", b"\r\n") if i % 50 == 0 else \
            make_message(rng, i)
        base = f"{1700000000 + i}.M{i}P1.bench,S={len(data)}"
        letters = rng.choice(["S", "S", "S", "", "FS", "RS"])
        p = md / "new" / base if i % 100 == 99 else md / "cur" / f"{base}:2,{letters}"
        p.write_bytes(data)
        mtime = 1704067200 + i * 60
        os.utime(p, (mtime, mtime))


class Client:
    """A pre-authenticated imapd over a pipe; commands timed to their tagged line."""

    def __init__(self, prog: str, home: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([prog, "Maildir"], cwd=home, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, bufsize=0)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.win = self.proc.stdin.fileno()
        self.rout = self.proc.stdout.fileno()
        self.buf = bytearray()
        self.tagno = 0
        self.last = b""
        greeting = self._until(b"* ")
        if not greeting.startswith(b"* PREAUTH"):
            raise RuntimeError(f"{prog}: greeting {greeting[:200]!r}")

    def _more(self) -> None:
        chunk = os.read(self.rout, 1 << 20)
        if not chunk:
            raise RuntimeError(f"server closed; last bytes {bytes(self.buf[-300:])!r}")
        self.buf += chunk

    def _until(self, marker: bytes) -> bytes:
        """Read until a line starting with *marker* is complete; return everything.

        Work per literal, not per line: only the next ``}\\r\\n`` and the next
        CRLF+marker are looked for, and a literal's bytes are skipped whole."""
        buf = self.buf
        at_line_start = True
        pos = 0
        nl_marker = b"\r\n" + marker
        while True:
            if at_line_start and buf.startswith(marker, pos):
                start = pos
            else:
                hit = buf.find(nl_marker, pos)
                start = hit + 2 if hit >= 0 else -1
            lit = buf.find(b"}\r\n", pos)
            if lit >= 0 and (start < 0 or lit < start):
                m = _LITERAL.search(buf, max(0, lit - 22), lit + 3)
                if m and m.end() == lit + 3:
                    end = lit + 3 + int(m.group(1))
                    while len(buf) < end:
                        self._more()
                    pos, at_line_start = end, False
                else:
                    pos, at_line_start = lit + 3, True
                continue
            if start >= 0:
                eol = buf.find(b"\r\n", start)
                while eol < 0:
                    self._more()
                    eol = buf.find(b"\r\n", start)
                out = bytes(buf[:eol + 2])
                del buf[:eol + 2]
                return out
            # neither yet: keep a tail that may hold the start of either
            tail = max(pos, len(buf) - len(nl_marker) - 24)
            if tail > pos:
                pos, at_line_start = tail, False
            self._more()

    def command(self, cmd: bytes) -> float:
        self.tagno += 1
        tag = b"B%d" % self.tagno
        t = time.perf_counter()
        os.write(self.win, tag + b" " + cmd + b"\r\n")
        out = self._until(tag + b" ")
        elapsed = time.perf_counter() - t
        self.last = out
        cut = out.rfind(b"\r\n", 0, len(out) - 2)
        status = out[cut + 2:] if cut >= 0 else out
        if not status.startswith(tag + b" OK"):
            raise RuntimeError(f"{cmd[:60]!r} -> {status[:200]!r}")
        return elapsed

    def append(self, message: bytes) -> None:
        self.tagno += 1
        tag = b"B%d" % self.tagno
        os.write(self.win, tag + b" APPEND INBOX {%d}\r\n" % len(message))
        self._until(b"+")
        os.write(self.win, message + b"\r\n")
        out = self._until(tag + b" ")
        if b"\r\n" + tag + b" OK" not in b"\r\n" + out:
            raise RuntimeError(f"APPEND -> {out[-200:]!r}")

    def close(self) -> None:
        try:
            os.write(self.win, b"Z LOGOUT\r\n")
            self._until(b"Z ")
        except (OSError, RuntimeError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                f.close()


def one_round(prog: str, home: Path, env: dict[str, str], count: int,
              appends: list[bytes]) -> dict[str, float]:
    t: dict[str, float] = {}
    c = Client(prog, home, env)
    try:
        t["first SELECT"] = c.command(b"SELECT INBOX")
        t["FETCH envelope first"] = c.command(ENVELOPE)
        t["FETCH envelope repeated"] = c.command(ENVELOPE)
        t["BODYSTRUCTURE first"] = c.command(BODYSTRUCTURE)
        t["BODYSTRUCTURE repeated"] = c.command(BODYSTRUCTURE)
        t["SEARCH header first"] = c.command(HEADER_SEARCH)
        t["SEARCH header repeated"] = c.command(HEADER_SEARCH)
        t["SEARCH TEXT"] = c.command(TEXT_SEARCH)
        step = max(1, count // 200)
        t0 = time.perf_counter()
        for n in range(1, count + 1, step)[:200]:
            c.command(b"FETCH %d BODY.PEEK[]" % n)
        t["200 BODY.PEEK[]"] = time.perf_counter() - t0
        t["STORE +FLAGS"] = c.command(b"STORE 1:* +FLAGS (\\Flagged)")
        t["STORE -FLAGS"] = c.command(b"STORE 1:* -FLAGS (\\Flagged)")
    finally:
        c.close()
    c = Client(prog, home, env)  # a new session: uiddb (and our cache file) present
    try:
        t["SELECT again"] = c.command(b"SELECT INBOX")
        t["FETCH envelope new session"] = c.command(ENVELOPE)
        t["BODYSTRUCTURE new session"] = c.command(BODYSTRUCTURE)
        t["SEARCH header new session"] = c.command(HEADER_SEARCH)
        if appends:
            t0 = time.perf_counter()
            for msg in appends:
                c.append(msg)
            t["APPEND 1000"] = time.perf_counter() - t0
    finally:
        c.close()
    return t


def client_overhead(prog: str, home: Path, env: dict[str, str]) -> tuple[float, float, int]:
    """NOOP round trip median, and the time our parser takes over a captured
    ``FETCH 1:*`` response (no I/O)."""
    c = Client(prog, home, env)
    try:
        c.command(b"SELECT INBOX")
        noop = statistics.median(c.command(b"NOOP") for _ in range(50))
        c.command(b"FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE)")
        captured = c.last
    finally:
        c.close()
    scanner = Client.__new__(Client)  # the same parser over the bytes already read
    scanner.buf = bytearray(captured)
    scanner.rout = -1
    t0 = time.perf_counter()
    assert scanner._until(b"B") == captured
    scan = time.perf_counter() - t0
    return noop, scan, len(captured)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-append", action="store_true",
                    help="skip the 1000 APPENDs (quicker runs while iterating)")
    args = ap.parse_args()
    if not os.path.exists(IMAPD):
        raise SystemExit(f"{IMAPD} is not installed (courier-imap)")
    root = Path(tempfile.mkdtemp(prefix="imapbench-"))
    try:
        template = root / "template"
        t0 = time.perf_counter()
        build_maildir(template, args.messages)
        print(f"built {args.messages} messages in {time.perf_counter() - t0:.1f}s")
        rng = random.Random(99)
        appends = [] if args.no_append else \
            [make_message(rng, 20000 + i).replace(b"\n", b"\r\n") for i in range(1000)]
        env = courier_env("bench", HOME="")
        progs = {"courier": IMAPD, "ours": OURS}
        results: dict[str, dict[str, list[float]]] = {k: {} for k in progs}
        for rnd in range(args.rounds):
            order = list(progs) if rnd % 2 == 0 else list(reversed(progs))
            for which in order:
                home = root / which
                shutil.rmtree(home, ignore_errors=True)
                shutil.copytree(template, home)
                env["HOME"] = str(home)
                for k, v in one_round(progs[which], home, env, args.messages,
                                      appends).items():
                    results[which].setdefault(k, []).append(v)
        print(f"{args.messages} messages, {args.rounds} rounds, medians, request -> tagged OK")
        print(f"{'':30} {'courier ms':>11} {'ours ms':>10} {'ratio':>7}  goal")
        for k in results["courier"]:
            cm = statistics.median(results["courier"][k]) * 1000
            om = statistics.median(results["ours"][k]) * 1000
            ratio = om / cm if cm else float("inf")
            goal = GOALS.get(k)
            verdict = "" if goal is None else \
                f"<= {goal:.1f}x {'met' if ratio <= goal else 'MISSED'}"
            print(f"{k:30} {cm:11.1f} {om:10.1f} {ratio:6.2f}x  {verdict}")
        for which, prog in progs.items():
            env["HOME"] = str(root / which)
            noop, scan, size = client_overhead(prog, root / which, env)
            print(f"client overhead ({which}): NOOP round trip {noop * 1000:.2f} ms; "
                  f"parsing a {size / 1e6:.1f} MB FETCH response {scan * 1000:.1f} ms")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
