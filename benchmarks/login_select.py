"""IMAP connection cost: connect + LOGIN + SELECT INBOX + LOGOUT, ours against Courier's.

    .venv/bin/python -m benchmarks.login_select [--rounds 5] [--sessions 40] [--clients 32]

Needs root and the real Courier packages.  Builds one account (userdb, 20
messages) in a temporary directory and starts, on loopback ports:

- Courier: the real couriertcpd + imaplogin + /usr/bin/imapd, authenticating
  through the real authdaemond (in a private mount namespace over the same
  userdb files, see tests/oracle/courier_auth.py);
- ours: ``bin/imapd start`` (our couriertcpd + imaplogin + imapd) with our
  authdaemond on the same userdb.

Rounds alternate Courier / ours.  Each round times ``--sessions`` sessions one
after the other, then ``--clients`` concurrent clients doing the same number
of sessions each; medians of the per-session latency are printed with the
ratio ours/Courier (issue 7's goal: at most 1.5), and the CPU time the server
side used per session (the tcpd with the sessions it forked, and the
authdaemond; steadier than latencies on a loaded machine).  Then ten idle
logged-in connections are opened on each side and the resident memory of their
session processes is read from /proc (RSS, and PSS which shares libraries fairly).
Measurements, not tests: nothing here asserts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from authdaemon.passwords import hash_password
from authdaemon.userdb.makeuserdb import build

REPO = Path(__file__).resolve().parents[1]
COURIER_LIB = "/usr/lib/courier/courier"
GOAL = 1.5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(port: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port}")


def _read_tagged(f, tag: bytes) -> bytes:  # type: ignore[no-untyped-def]
    while True:
        line = f.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        if line.startswith(tag + b" "):
            return line


def _connect(port: int, tls: ssl.SSLContext | None) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    return tls.wrap_socket(s) if tls is not None else s


def session(port: int, keep: list[socket.socket] | None = None,
            tls: ssl.SSLContext | None = None) -> float:
    """One connect (with *tls*: and TLS handshake) + LOGIN + SELECT INBOX + LOGOUT; the
    seconds it took."""
    t0 = time.perf_counter()
    s = _connect(port, tls)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"a LOGIN bench benchpw\r\n")
    if not _read_tagged(f, b"a").startswith(b"a OK"):
        raise SystemExit("LOGIN failed")
    s.sendall(b"b SELECT INBOX\r\n")
    _read_tagged(f, b"b")
    if keep is not None:
        keep.append(s)
        return time.perf_counter() - t0
    s.sendall(b"c LOGOUT\r\n")
    _read_tagged(f, b"c")
    f.close()
    s.close()
    return time.perf_counter() - t0


def phases(port: int, tls: ssl.SSLContext | None = None) -> list[float]:
    """Milliseconds of: connect(+TLS)+greeting, LOGIN, SELECT INBOX, LOGOUT."""
    marks = [time.perf_counter()]
    s = _connect(port, tls)
    f = s.makefile("rb")
    f.readline()
    marks.append(time.perf_counter())
    for tag, command in ((b"a", b"LOGIN bench benchpw"), (b"b", b"SELECT INBOX"),
                         (b"c", b"LOGOUT")):
        s.sendall(tag + b" " + command + b"\r\n")
        _read_tagged(f, tag)
        marks.append(time.perf_counter())
    f.close()
    s.close()
    return [(b - a) * 1000 for a, b in zip(marks, marks[1:], strict=False)]


def sequential(port: int, n: int, tls: ssl.SSLContext | None = None) -> list[float]:
    return [session(port, tls=tls) for _ in range(n)]


def concurrent(port: int, clients: int, per_client: int,
               tls: ssl.SSLContext | None = None) -> list[float]:
    times: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        mine = [session(port, tls=tls) for _ in range(per_client)]
        with lock:
            times.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times


def _memory(pid: int) -> tuple[int, int]:
    rss = pss = 0
    try:
        for ln in Path(f"/proc/{pid}/status").read_text().splitlines():
            if ln.startswith("VmRSS:"):
                rss = int(ln.split()[1])
        for ln in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if ln.startswith("Pss:"):
                pss = int(ln.split()[1])
    except OSError:
        pass
    return rss, pss


def _tree_cpu(roots: set[int]) -> float:
    """CPU seconds used so far by the processes *roots* and their descendants (the
    living ones, and through their ``cutime``/``cstime`` those they reaped)."""
    stats: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        stats[int(entry)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo, seen = 0, [p for p in roots if p in stats], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += stats[pid][1]
        todo.extend(children.get(pid, ()))
    return total / os.sysconf("SC_CLK_TCK")


def _server_sockets(port: int) -> set[str]:
    """``socket:[inode]`` of the connected sockets whose local port is *port*."""
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if int(f[1].rsplit(":", 1)[1], 16) == port and f[3] == "01":  # ESTABLISHED
                out.add(f"socket:[{f[9]}]")
    return out


def idle_memory(port: int, home: str, n: int = 10) -> tuple[float, float, int]:
    """Median RSS and PSS (KiB) of the session processes of *n* idle logged-in connections:
    those that run in the account's home with a connection of *port* on fd 0."""
    keep: list[socket.socket] = []
    try:
        for _ in range(n):
            session(port, keep)
        time.sleep(0.3)
        sockets = _server_sockets(port)
        pids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    cwd = os.readlink(f"/proc/{entry}/cwd")
                    if ((cwd == home or cwd.startswith(home + "/"))
                            and os.readlink(f"/proc/{entry}/fd/0") in sockets):
                        pids.append(int(entry))
                except OSError:
                    continue
        mems = [_memory(p) for p in pids]
        return (statistics.median(m[0] for m in mems), statistics.median(m[1] for m in mems),
                len(pids))
    finally:
        for s in keep:
            s.close()


def _pid_of(pidfile: Path) -> int:
    return int(pidfile.read_text().split()[0])


def _namespace_pids(holder: int) -> set[int]:
    """The processes in the mount namespace of *holder* (Courier's couriertcpd, authdaemond)."""
    mine = os.readlink(f"/proc/{holder}/ns/mnt")
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/mnt") == mine:
                    out.add(int(entry))
            except OSError:
                continue
    return out


def courier_tcpd(ns, root: Path, port: int, service: str, login: str,  # type: ignore[no-untyped-def]
                 program: str, limit: int, extra: str = "") -> subprocess.Popen[bytes]:
    """The real couriertcpd in the real authdaemond's namespace *ns*, as Courier's start
    script runs it: /etc/courier/SERVICE and SERVICE-ssl in its environment (then *extra*
    shell assignments), LOGIN in front of PROGRAM, *limit* connections; its own process
    group, its log in ROOT/courier.log."""
    script = (f"set -a; . /etc/courier/{service}; . /etc/courier/{service}-ssl; {extra}"
              f"exec couriertcpd -address=127.0.0.1 -maxprocs={limit} -maxperip={limit} "
              f"-nodnslookup -noidentlookup -stderr={root}/courier.log {port} "
              f"{login} {program} Maildir")
    return ns.popen(["env", "-i", "PATH=/usr/bin:/bin:/usr/sbin", "sh", "-c", script],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, start_new_session=True)


def setup(root: Path) -> tuple[Path, Path, str]:
    etc = root / "etc"
    etc.mkdir()
    for name in ("imapd", "imapd-ssl", "imapd.pem", "dhparams.pem"):  # (Courier's namespace
        if os.path.exists(f"/etc/courier/{name}"):                    # sees this as its etc)
            shutil.copy(f"/etc/courier/{name}", etc / name)
    home = root / "vmail" / "bench"
    md = home / "Maildir"
    for sub in ("tmp", "new", "cur"):
        (md / sub).mkdir(parents=True)
    for i in range(20):
        msg = f"From: a{i}@example.com\nSubject: message {i}\n\nbody {i}\n".encode()
        (md / "cur" / f"{1700000000 + i}.M{i}P1.bench,S={len(msg)}:2,S").write_bytes(msg)
    (etc / "userdb").write_text(
        f"bench\tuid={os.getuid()}|gid={os.getgid()}|home={home}|mail={md}"
        f"|systempw={hash_password('benchpw', 'md5-crypt')}\n")
    (etc / "userdb").chmod(0o600)
    build(etc / "userdb")
    return etc, home, str(md)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--sessions", type=int, default=40)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--tls", action="store_true",
                    help="the implicit-TLS port: Courier's couriertls + imaplogin + imapd "
                         "against our imapd-ssl (/etc/courier/imapd.pem on both)")
    args = ap.parse_args()
    tls = None
    service = "imapd"
    if args.tls:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
        service = "imapd-ssl"
    if os.geteuid() != 0:
        raise SystemExit("run as root (the real authdaemond runs in a mount namespace)")
    from tests.oracle.courier_auth import real_authdaemond, write_authdaemonrc

    root = Path(tempfile.mkdtemp(prefix="bench-login-"))
    root.chmod(0o755)
    procs: list[subprocess.Popen[bytes]] = []
    ours_etc = root / "ours-etc"
    try:
        etc, home, _maildir = setup(root)
        shutil.copytree(etc, ours_etc)
        write_authdaemonrc(etc)  # Courier's: compiled-in /run/courier/authdaemon
        our_run = root / "ours-run"
        our_run.mkdir()
        write_authdaemonrc(ours_etc, authdaemonvar=str(our_run))
        p_ours, p_courier = _free_port(), _free_port()
        with (ours_etc / "imapd").open("a") as f:
            f.write(f"\nPORT={p_ours}\nADDRESS=127.0.0.1\nPIDFILE={root}/ours.pid\n"
                    f"IMAPACCESSFILE={root}/none\nIMAP_EMPTYTRASH=\n")
        with (ours_etc / "imapd-ssl").open("a") as f:
            f.write(f"\nSSLPORT={p_ours}\nSSLADDRESS=127.0.0.1\nSSLPIDFILE={root}/ours.pid\n"
                    f"TLS_CACHEFILE=\n")
        daemon = subprocess.Popen([str(REPO / ".venv" / "bin" / "authdaemond"), "--config-dir",
                                   str(ours_etc)], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(daemon)
        deadline = time.monotonic() + 15
        while not (our_run / "socket").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        env = dict(os.environ, COURIERPY_LOGFILE=str(root / "ours.log"))
        ours_ctl = str(REPO / "bin" / service)
        subprocess.run([ours_ctl, "--config-dir", str(ours_etc), "start"], env=env, check=True)
        _wait(p_ours)
        with real_authdaemond(etc, root / "courier-run") as ns:
            login, extra = f"{COURIER_LIB}/imaplogin", "IMAP_EMPTYTRASH=; "
            if args.tls:  # as Courier's imapd-ssl script runs it, without a session cache
                login = f"/usr/bin/couriertls -server -tcpd {login}"
                extra += "IMAP_TLS=1; IMAP_STARTTLS=NO; IMAP_TLS_REQUIRED=0; TLS_CACHEFILE=; "
            courier = courier_tcpd(ns, root, p_courier, "imapd", login, "/usr/bin/imapd", 200,
                                   extra)
            procs.append(courier)
            _wait(p_courier)
            with (ours_etc / "imapd").open("a") as f:
                f.write("MAXDAEMONS=200\nMAXPERIP=200\n")
            subprocess.run([ours_ctl, "--config-dir", str(ours_etc), "stop"], env=env,
                           check=True)
            subprocess.run([ours_ctl, "--config-dir", str(ours_etc), "start"], env=env,
                           check=True)
            _wait(p_ours)
            ports = {"courier": p_courier, "ours": p_ours}
            for side, port in ports.items():  # warm up
                try:
                    sequential(port, 3, tls)
                except (OSError, ssl.SSLError) as e:  # say which side, with its log
                    log = root / ("courier.log" if side == "courier" else "ours.log")
                    text = log.read_text() if log.exists() else ""
                    raise SystemExit(f"{side}: {e}\n{text}") from None
            seq: dict[str, list[float]] = {"courier": [], "ours": []}
            conc: dict[str, list[float]] = {"courier": [], "ours": []}
            # the server side's processes: couriertcpd / fasttcpd (with the sessions they
            # fork and reap) and the authdaemond (with its workers)
            roots = {"courier": _namespace_pids(ns.holder.pid),
                     "ours": {_pid_of(root / "ours.pid"), daemon.pid}}
            cpu = {"courier": 0.0, "ours": 0.0}
            per_client = max(1, args.sessions // args.clients) + 1
            for r in range(args.rounds):
                for side in (("courier", "ours") if r % 2 == 0 else ("ours", "courier")):
                    before = _tree_cpu(roots[side])
                    seq[side] += sequential(ports[side], args.sessions, tls)
                    conc[side] += concurrent(ports[side], args.clients, per_client, tls)
                    time.sleep(0.2)  # the last sessions exit and are reaped
                    cpu[side] += _tree_cpu(roots[side]) - before
            print(f"connect{'+TLS' if tls else ''}+LOGIN+SELECT INBOX+LOGOUT, "
                  f"{args.rounds} interleaved rounds")
            for label, data in (("sequential", seq), (f"{args.clients} concurrent", conc)):
                c = statistics.median(data["courier"]) * 1000
                o = statistics.median(data["ours"]) * 1000
                verdict = "met" if o / c <= GOAL else "MISSED"
                print(f"  {label:>14}: Courier {c:7.2f} ms  ours {o:7.2f} ms  "
                      f"ratio {o / c:5.2f}  (goal <= {GOAL}: {verdict})")
            n = len(seq["ours"]) + len(conc["ours"])
            c, o = (cpu[side] / n * 1000 for side in ("courier", "ours"))
            print(f"  server CPU per session: Courier {c:6.2f} ms  ours {o:6.2f} ms  "
                  f"ratio {o / c:5.2f}  (couriertcpd/fasttcpd, sessions, authdaemond)")
            for side, port in ports.items():
                runs = [phases(port, tls) for _ in range(20)]
                parts = [statistics.median(r[i] for r in runs) for i in range(4)]
                print(f"  phases ({side:>7}): greeting {parts[0]:6.2f}  LOGIN {parts[1]:6.2f}  "
                      f"SELECT {parts[2]:6.2f}  LOGOUT {parts[3]:6.2f} ms")
            for side, port in ports.items():
                if tls is not None:  # a TLS session is two processes (relay) on both sides
                    break
                rss, pss, n = idle_memory(port, str(home))
                print(f"  idle logged-in session ({side:>7}): RSS {rss / 1024:6.1f} MiB, "
                      f"PSS {pss / 1024:6.1f} MiB  ({n} processes)")
            courier.terminate()
    finally:
        for name in ("imapd", "imapd-ssl"):
            subprocess.run([str(REPO / "bin" / name), "--config-dir", str(ours_etc), "stop"],
                           check=False, capture_output=True)
        for p in procs:
            try:
                os.killpg(p.pid, 15) if p is not procs[0] else p.terminate()
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
