"""FETCH rendering and SEARCH with a cold and a warm metadata cache, 10,000 messages.

    .venv/bin/python -m benchmarks.fetch_cache [--messages 10000] [--rounds 5] [--courier]

Builds a seeded Maildir of realistic mail (threads with Re: subjects, RFC 2047
encoded names and subjects, multipart/alternative, attachments, forwarded
messages) in a temporary directory, then times, in interleaved rounds:

- ``cold``: ``FETCH 1:* (ENVELOPE BODYSTRUCTURE)`` rendered by
  courierpy.imap.fetch with no cache file (every message parsed);
- ``warm``: the same with a new session loading the saved cache file (its
  entries trusted by the inode numbers the folder listing gives, as after a
  SELECT);
- ``repeat``: the same again in that session (cache in memory);
- ``header SEARCH``: ``SEARCH FROM x`` from a freshly loaded cache, then again;
- ``TEXT SEARCH``: ``SEARCH TEXT x`` (reads every message).

With ``--courier`` the real Courier imapd (pre-authenticated over a pipe) runs
the same FETCH twice and the header SEARCH in one session, for comparison; the
ratios ours/Courier are printed.  Medians over the rounds; these are
measurements, not tests (no timing assertions anywhere).
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from courierpy.imap.fetch import MessageView, render_fetch
from courierpy.imap.fetchatts import FetchAtt
from courierpy.imap.flags import imap_flags
from courierpy.imap.search import search
from courierpy.imap.searchkeys import Header, Text
from courierpy.maildir.cache import CACHE_NAME, MetadataCache
from courierpy.maildir.store import Maildir

FIRST = ["Alice", "Bob", "Carol", "Dan", "Erin", "Frank", "Jürgen", "Zoë", "Łukasz", "Ana"]
LAST = ["Smith", "Müller", "Novak", "García", "Ivanova", "Brown", "O'Neil", "Dupont"]
TOPICS = ["budget", "release plan", "lunch", "café meeting", "bug 4711", "Q3 report",
          "holiday photos", "contract", "server outage", "réunion d'équipe"]
WORDS = ("the of and to in is it that for on with as was at by this be from or have an "
         "not are but all we when your can said there use each which she do how their if "
         "will up other about out many then them these so some her would make like").split()


def _encoded(text: str) -> str:
    if text.isascii():
        return text
    return "=?utf-8?B?" + base64.b64encode(text.encode()).decode() + "?="


def _person(rng: random.Random) -> tuple[str, str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    addr = f"{first.lower()}.{last.lower()}".encode("ascii", "ignore").decode()
    return f"{first} {last}", addr.replace("'", "") + "@example.com"


def _para(rng: random.Random, n: int) -> str:
    lines = []
    for _ in range(n):
        lines.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))))
    return "\n".join(lines) + "\n"


def make_message(rng: random.Random, i: int) -> bytes:
    name, addr = _person(rng)
    to_name, to_addr = _person(rng)
    topic = rng.choice(TOPICS)
    subject = ("Re: " * rng.choice([0, 0, 1, 2])) + topic
    day = 1 + i % 28
    head = [
        f"Return-Path: <{addr}>",
        f"Received: from mx{i % 7}.example.com by mail.example.org; "
        f"{day} Jan 2024 10:{i % 60:02d}:00 +0000",
        f'From: "{_encoded(name)}" <{addr}>',
        f"To: {_encoded(to_name)} <{to_addr}>",
        f"Subject: {_encoded(subject)}",
        f"Date: Mon, {day} Jan 2024 10:{i % 60:02d}:00 +0100",
        f"Message-ID: <{i}.{rng.getrandbits(32):08x}@example.com>",
    ]
    if i > 10 and rng.random() < 0.5:
        head.append(f"In-Reply-To: <{i - rng.randint(1, 10)}.x@example.com>")
    kind = rng.random()
    if kind < 0.5:
        body = _para(rng, rng.randint(3, 30))
        return ("\n".join(head) + "\n\n" + body).encode()
    head.append("MIME-Version: 1.0")
    b = f"=_b{i}"
    if kind < 0.8:
        text = _para(rng, rng.randint(3, 20))
        html = "<html><body><p>" + text.replace("\n", "</p><p>") + "</p></body></html>\n"
        head.append(f'Content-Type: multipart/alternative; boundary="{b}"')
        parts = [
            "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n" + text,
            "Content-Type: text/html; charset=utf-8\n\n" + html,
        ]
    else:
        head.append(f'Content-Type: multipart/mixed; boundary="{b}"')
        blob = base64.encodebytes(rng.randbytes(rng.randint(2000, 30000))).decode()
        parts = [
            "Content-Type: text/plain; charset=utf-8\n\n" + _para(rng, 5),
            "Content-Type: application/pdf; name=\"doc.pdf\"\nContent-Transfer-Encoding: base64\n"
            "Content-Disposition: attachment; filename=\"doc.pdf\"\n\n" + blob,
        ]
        if rng.random() < 0.3:
            parts.append("Content-Type: message/rfc822\n\nFrom: someone@example.net\n"
                         "Subject: forwarded\n\n" + _para(rng, 4))
    body = "".join(f"--{b}\n{p}" for p in parts) + f"--{b}--\n"
    return ("\n".join(head) + "\n\n" + body).encode()


def build_maildir(root: Path, count: int, seed: int = 1) -> tuple[Path, list[MessageView]]:
    rng = random.Random(seed)
    md = root / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True, exist_ok=True)
    views = []
    for i in range(count):
        data = make_message(rng, i)
        base = f"{1700000000 + i}.M{i}P1.bench"
        letters = rng.choice(["S", "S", "S", "", "FS", "RS"])
        p = md / "cur" / f"{base},S={len(data)}:2,{letters}"
        p.write_bytes(data)
        mtime = 1704067200 + i * 60
        os.utime(p, (mtime, mtime))
        views.append(MessageView(i + 1, i + 1, p, f"{base},S={len(data)}",
                                 imap_flags(letters, (), False), float(mtime), len(data)))
    return md, views


ATTS = (FetchAtt("ENVELOPE"), FetchAtt("BODYSTRUCTURE"))


def fetch_all(views, cache) -> int:
    n = 0
    for v in views:
        for piece in render_fetch(v, ATTS, cache):
            n += len(piece)  # type: ignore[arg-type]
    return n


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def courier_times(root: Path, n: int) -> dict[str, float] | None:
    """One real imapd session: SELECT, FETCH twice, header SEARCH; seconds each."""
    from tests.oracle.courier_imapd import IMAPD, courier_env

    if not os.path.exists(IMAPD):
        return None
    env = courier_env("bench", HOME=str(root))
    proc = subprocess.Popen([IMAPD, "Maildir"], cwd=root, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdin and proc.stdout

    def run(tag: bytes, cmd: bytes) -> float:
        t = time.perf_counter()
        proc.stdin.write(tag + b" " + cmd + b"\r\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
        while True:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if not line or line.startswith(tag + b" "):
                return time.perf_counter() - t

    proc.stdout.readline()
    out = {"select": run(b"s", b"SELECT INBOX")}
    out["fetch first"] = run(b"f1", b"FETCH 1:* (ENVELOPE BODYSTRUCTURE)")
    out["fetch repeat"] = run(b"f2", b"FETCH 1:* (ENVELOPE BODYSTRUCTURE)")
    out["header search"] = run(b"h", b"SEARCH FROM jurgen")
    out["text search"] = run(b"t", b"SEARCH TEXT outage")
    run(b"z", b"LOGOUT")
    proc.wait(timeout=30)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--courier", action="store_true", help="also time the real Courier imapd")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="fetchbench") as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        md, views = build_maildir(root, args.messages)
        print(f"built {args.messages} messages in {time.perf_counter() - t:.1f}s "
              f"({sum(v.size or 0 for v in views) / 1e6:.1f} MB)")
        results: dict[str, list[float]] = {}
        header_key = Header("FROM", "jürgen")
        text_key = Text("TEXT", "outage")
        theirs: list[dict[str, float]] = []
        # a new session's caches get the inode numbers its SELECT listed
        inodes = Maildir(md).listing().inodes
        for _ in range(args.rounds):
            (md / CACHE_NAME).unlink(missing_ok=True)
            cold = MetadataCache(md)
            results.setdefault("FETCH 1:* (ENVELOPE BODYSTRUCTURE) cold", []).append(
                timed(lambda c=cold: fetch_all(views, c)))
            results.setdefault("cache save", []).append(timed(cold.save))
            warm = MetadataCache(md, inodes=inodes)
            results.setdefault("FETCH ... warm (new session, cache file)", []).append(
                timed(lambda c=warm: fetch_all(views, c)))
            results.setdefault("FETCH ... repeated (same session)", []).append(
                timed(lambda c=warm: fetch_all(views, c)))
            fresh = MetadataCache(md, inodes=inodes)
            results.setdefault("SEARCH FROM (new session, cache file)", []).append(
                timed(lambda c=fresh: search(views, header_key, c, max_uid=len(views),
                                             max_seq=len(views))))
            results.setdefault("SEARCH FROM repeated (same session)", []).append(
                timed(lambda c=fresh: search(views, header_key, c, max_uid=len(views),
                                             max_seq=len(views))))
            results.setdefault("SEARCH TEXT (reads every message)", []).append(
                timed(lambda c=fresh: search(views, text_key, c, max_uid=len(views),
                                             max_seq=len(views))))
            if args.courier:
                got = courier_times(root, args.messages)
                if got:
                    theirs.append(got)
        size = (md / CACHE_NAME).stat().st_size
        print(f"cache file: {size / 1e6:.1f} MB ({size / args.messages:.0f} bytes/message)")
        print(f"{'median over ' + str(args.rounds) + ' rounds':48} {'ms':>9}")
        med = {k: statistics.median(v) * 1000 for k, v in results.items()}
        for k, v in med.items():
            print(f"{k:48} {v:9.1f}")
        if theirs:
            cmed = {k: statistics.median(r[k] for r in theirs) * 1000 for k in theirs[0]}
            print("\nreal Courier imapd, same Maildir (one session per round):")
            for k, v in cmed.items():
                print(f"  {k:46} {v:9.1f}")
            pairs = [
                ("FETCH ... repeated (same session)", "fetch repeat", 0.2),
                ("FETCH ... warm (new session, cache file)", "fetch first", None),
                ("SEARCH FROM repeated (same session)", "header search", 0.1),
                ("SEARCH FROM (new session, cache file)", "header search", None),
                ("SEARCH TEXT (reads every message)", "text search", 1.0),
            ]
            print("\nratios ours/Courier (goal from issue 5 where one applies; Courier's"
                  " times include\nwriting the responses to a pipe, ours only rendering):")
            for ours_k, theirs_k, goal in pairs:
                ratio = med[ours_k] / cmed[theirs_k] if cmed[theirs_k] else float("inf")
                note = ""
                if goal is not None:
                    verdict = "met" if ratio <= goal else "MISSED"
                    note = f"  goal <= {goal:.1f}x {verdict}"
                print(f"  {ours_k:46} {ratio:6.2f}x{note}")


if __name__ == "__main__":
    main()
