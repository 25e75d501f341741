"""AUTH round trips per second: our authdaemond vs Courier's, on the same userdb.

Run as root on a machine with courier-authdaemon installed (the real daemon
runs in a private mount namespace, see tests/oracle/courier_auth.py)::

    .venv/bin/python -m benchmarks.auth_roundtrips [--seconds 3] [--clients 8] [--rounds 3]

Each round runs both daemons, one after the other, for the same time with the
same number of client processes doing ``AUTH login`` round trips (valid
passwords, MD5-crypt hashes) on fresh connections. The medians of the rounds
and the ratio ours/Courier's are printed. With ``--idle N`` that many silent
connections are held open during the measurement (Courier's workers block on
them; ours do not).
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from authdaemon.passwords import hash_password
from authdaemon.userdb.makeuserdb import build
from tests.oracle.courier_auth import courier_namespace, real_authdaemond, write_authdaemonrc

REPO = Path(__file__).resolve().parents[1]
USERS = 200


def auth_request(i: int) -> bytes:
    body = f"imap\nlogin\nuser{i}\npw{i}\n".encode()
    return b"AUTH %d\n" % len(body) + body


def client(path: str, seconds: float, seed: int, out: multiprocessing.Queue) -> None:
    """Round trips until the time is up; puts (answered, failed) on *out*."""
    n = failed = 0
    i = seed
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            i = (i + 7) % USERS
            reply = b""
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.settimeout(max(1.0, deadline - time.monotonic()))
                    s.connect(path)
                    s.sendall(auth_request(i))
                    while not reply.endswith(b"\n.\n") and reply != b"FAIL\n":
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        reply += chunk
            except OSError:
                pass
            if reply.startswith(b"UID="):
                n += 1
            else:
                failed += 1
    finally:
        out.put((n, failed))


def measure(path: Path, seconds: float, clients: int, idle: int) -> tuple[float, int]:
    """(answered round trips per second, requests not answered in time)."""
    held = []
    for _ in range(idle):
        s = socket.socket(socket.AF_UNIX)
        s.connect(str(path))
        held.append(s)
    try:
        q: multiprocessing.Queue = multiprocessing.Queue()
        procs = [
            multiprocessing.Process(target=client, args=(str(path), seconds, k * 31, q))
            for k in range(clients)
        ]
        start = time.monotonic()
        for p in procs:
            p.start()
        results = [q.get(timeout=seconds + 60) for _ in procs]
        for p in procs:
            p.join()
        answered = sum(r[0] for r in results)
        return answered / (time.monotonic() - start), sum(r[1] for r in results)
    finally:
        for s in held:
            s.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--idle", type=int, default=0)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="authbench-") as tmp:
        root = Path(tmp)
        text = "".join(
            f"user{i}\tuid=5000|gid=5000|home=/srv/vmail/user{i}|mail=/srv/vmail/user{i}/Maildir"
            f"|systempw={hash_password(f'pw{i}', 'md5-crypt')}\n"
            for i in range(USERS)
        )
        real_etc, ours_etc = root / "real" / "etc", root / "ours" / "etc"
        for etc in (real_etc, ours_etc):
            etc.mkdir(parents=True)
            (etc / "userdb").write_text(text)
            (etc / "userdb").chmod(0o600)
        write_authdaemonrc(real_etc)
        write_authdaemonrc(ours_etc, authdaemonvar=str(root / "ours" / "run"))
        with courier_namespace(real_etc) as ns:
            ns.run(["makeuserdb"], check=True)
        build(ours_etc / "userdb")

        ours_sock = root / "ours" / "run" / "socket"
        ours = subprocess.Popen(
            [REPO / ".venv" / "bin" / "authdaemond", "--config-dir", ours_etc],
            stderr=subprocess.DEVNULL,
        )
        try:
            while not ours_sock.exists():
                time.sleep(0.05)
            with real_authdaemond(real_etc) as real:
                rates: dict[str, list[float]] = {"courier": [], "ours": []}
                for r in range(args.rounds):
                    for name, path in (("courier", real.socket), ("ours", ours_sock)):
                        rate, missed = measure(path, args.seconds, args.clients, args.idle)
                        rates[name].append(rate)
                        print(f"round {r + 1}: {name:8s} {rate:9.1f} AUTH/s"
                              f"  ({missed} not answered in time)", flush=True)
        finally:
            ours.terminate()
            ours.wait()

    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"median  courier {med['courier']:.1f} AUTH/s, ours {med['ours']:.1f} AUTH/s")
    ratio = "infinite (Courier stalled)"
    if med["courier"]:
        ratio = f"{med['ours'] / med['courier']:.2f}x"
    print(f"ratio ours/courier: {ratio} "
          f"({args.clients} clients, {args.idle} idle connections, daemons=5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
