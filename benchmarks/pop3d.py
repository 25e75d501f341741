"""POP3: our pop3d against the real courierpop3d on the same Maildirs.

    .venv/bin/python -m benchmarks.pop3d [--messages 10000] [--rounds 5]

Builds a seeded Maildir (small messages of 1-6 KB, some with 8-bit headers) in a
temporary directory and times, interleaved, medians over the rounds, each
session pre-authenticated over a pipe as courierpop3login starts it:

- ``login+STAT+QUIT`` on a 20-message Maildir;
- ``first login`` on N messages (no courierpop3dsizelist yet: every file read);
- ``login+UIDL`` on N messages (sizelist present);
- ``1000 RETR`` pipelined in one session.

Ours is measured two ways: ``exec`` (a new Python process per connection, as
inetd would start it) and ``fork`` (a process that has already imported
courierpy forks per connection, as our couriertcpd launcher does). Ratios
ours/Courier are printed; the issue's goal is every ratio <= 1 (fork mode) and a
first login far faster than Courier's. Measurements, not tests.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from courierpy.pop3.server import serve

COURIER = "/usr/lib/courier/courier/courierpop3d"
REPO = Path(__file__).resolve().parents[1]
OURS = str(REPO / ".venv" / "bin" / "pop3d")
ENV = {"PATH": "/usr/bin:/bin", "AUTHENTICATED": "bench", "TCPREMOTEIP": "127.0.0.1",
       "TCPREMOTEPORT": "1"}


def make_maildir(home: Path, count: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    md = home / "Maildir"
    for sub in ("tmp", "new", "cur"):
        (md / sub).mkdir(parents=True, exist_ok=True)
    words = "the of and to in is it that for on with as was at by this be from".split()
    for i in range(count):
        subject = "café report" if i % 7 == 0 else f"report {i}"
        body = "\n".join(" ".join(rng.choice(words) for _ in range(12))
                         for _ in range(rng.randint(10, 80)))
        msg = (f"From: Sender {i} <s{i}@example.com>\nTo: bench@example.com\n"
               f"Subject: {subject}\nMessage-ID: <{i}@example.com>\n\n{body}\n").encode()
        name = f"{1700000000 + i}.M{i}P1.bench,S={len(msg)}"
        sub = "new" if i % 3 == 0 else "cur"
        (md / sub / (name if sub == "new" else name + ":2,S")).write_bytes(msg)


def run_exec(prog: str, home: Path, script: bytes) -> float:
    args = [prog, "Maildir"] if prog == COURIER else [prog, "--config-dir", "/nonexistent",
                                                      "Maildir"]
    t0 = time.perf_counter()
    out = subprocess.run(args, input=script, cwd=home, env=ENV, capture_output=True,
                         check=True).stdout
    elapsed = time.perf_counter() - t0
    assert out.endswith(b"+OK Bye-bye.\r\n"), out[-200:]
    return elapsed


def run_fork(home: Path, script: bytes) -> float:
    """Our server in a forked child of this (already importing) process."""
    t0 = time.perf_counter()
    rin, win = os.pipe()
    rout, wout = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.dup2(rin, 0)
            os.dup2(wout, 1)
            for fd in (rin, win, rout, wout):
                os.close(fd)
            os.chdir(home)
            with open(os.devnull, "w") as log:
                os._exit(serve("Maildir", Path("/nonexistent"), environ=ENV, log=log))
        except BaseException:
            os._exit(1)
    os.close(rin)
    os.close(wout)
    os.write(win, script)
    os.close(win)
    chunks = []
    while data := os.read(rout, 1 << 20):
        chunks.append(data)
    os.close(rout)
    os.waitpid(pid, 0)
    elapsed = time.perf_counter() - t0
    assert b"".join(chunks).endswith(b"+OK Bye-bye.\r\n")
    return elapsed


def measure(name: str, rounds: int, setup: Callable[[Path], None], script: bytes,
            root: Path) -> None:
    results: dict[str, list[float]] = {"courier": [], "exec": [], "fork": []}
    for _ in range(rounds):
        for which in results:
            home = root / f"{name}-{which}"
            setup(home)
            if which == "courier":
                results[which].append(run_exec(COURIER, home, script))
            elif which == "exec":
                results[which].append(run_exec(OURS, home, script))
            else:
                results[which].append(run_fork(home, script))
    med = {k: statistics.median(v) * 1000 for k, v in results.items()}
    print(f"{name:28s} courier {med['courier']:8.1f} ms   ours(exec) {med['exec']:8.1f} ms "
          f"({med['exec'] / med['courier']:5.2f}x)   ours(fork) {med['fork']:8.1f} ms "
          f"({med['fork'] / med['courier']:5.2f}x)  "
          f"{'met' if med['fork'] <= med['courier'] else 'MISSED'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    if not os.path.exists(COURIER):
        raise SystemExit(f"{COURIER} is not installed (courier-pop)")
    root = Path(tempfile.mkdtemp(prefix="pop3bench-"))
    try:
        small = root / "small-template"
        make_maildir(small, 20)
        big = root / "big-template"
        make_maildir(big, args.messages)
        # a template with the sizelist already made (by Courier: both read it the same way)
        warm = root / "warm-template"
        shutil.copytree(big, warm)
        run_exec(COURIER, warm, b"QUIT\r\n")
        for name in ("courierpop3dsizelist",):
            assert (warm / "Maildir" / name).exists()

        def copy_of(template: Path) -> Callable[[Path], None]:
            def setup(home: Path) -> None:
                if home.exists():
                    shutil.rmtree(home)
                shutil.copytree(template, home)
            return setup

        def keep(template: Path) -> Callable[[Path], None]:
            def setup(home: Path) -> None:
                if not home.exists():
                    shutil.copytree(template, home)
            return setup

        print(f"{args.messages} messages, {args.rounds} rounds, medians")
        measure("login+STAT+QUIT (20 msgs)", args.rounds, keep(small), b"STAT\r\nQUIT\r\n",
                root)
        measure(f"first login ({args.messages})", args.rounds, copy_of(big),
                b"STAT\r\nQUIT\r\n", root)
        measure(f"login+UIDL ({args.messages})", args.rounds, keep(warm),
                b"UIDL\r\nQUIT\r\n", root)
        count = min(1000, args.messages)
        retr = b"".join(b"RETR %d\r\n" % i for i in range(1, count + 1)) + b"QUIT\r\n"
        measure(f"{count} RETR pipelined", args.rounds, keep(warm), retr, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
