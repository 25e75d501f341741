"""Our processes and the real Courier imapd on one Maildir at the same time.

Our deliverers, flaggers and an expunger run while a real imapd session
APPENDs, re-flags and re-reads the folder. Both sides use Courier's lock
(``tmp/courier.lock``) for the uiddb, so afterwards: nothing lost, nothing
duplicated, and every message kept one UID, the same one for both sides.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import re
import time
from pathlib import Path

import pytest

from courierpy.maildir import folders, store, uiddb
from tests.integration.test_maildir_robustness import _deliverer, _expunger, _flagger
from tests.oracle.courier_imapd import CourierImapd

pytestmark = pytest.mark.oracle


def test_ours_and_courier_together(tmp_path: Path) -> None:
    md = folders.create_maildir(tmp_path / "Maildir")
    appended: list[str] = []
    courier_seen: list[tuple[str, int]] = []
    rnd = random.Random(3)
    ctx = multiprocessing.get_context("fork")
    jobs: list[multiprocessing.process.BaseProcess] = []
    try:
        with CourierImapd(tmp_path, timeout=30) as imap:
            imap.command("SELECT INBOX")
            until = time.time() + 3
            jobs = [ctx.Process(target=_deliverer,
                                args=(str(md), i, until, f"{tmp_path}/d{i}", 0.01))
                    for i in range(2)]
            # our sessions re-scan about as often as an IMAP client polls, not in a tight loop
            # (Courier polls its lock slowly and would starve)
            jobs.append(ctx.Process(target=_flagger,
                                    args=(str(md), 1, until, f"{tmp_path}/f", 0.05)))
            jobs.append(ctx.Process(target=_expunger, args=(str(md), 2, until, f"{tmp_path}/x")))
            for j in jobs:
                j.start()
            n = 0
            while time.time() < until or n < 5:
                ident = f"c-{n}"
                imap.append("INBOX", f"X-Id: {ident}\r\n\r\nbody\r\n".encode())
                appended.append(ident)
                n += 1
                imap.command("NOOP")  # Courier rescans the folder on NOOP
                untagged, _ = imap.command(
                    "UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (X-ID)])")
                uids = []
                for line in untagged:
                    m = re.search(r"UID (\d+)", line)
                    i = re.search(r"X-Id: (\S+)", line)
                    if m and i:
                        courier_seen.append((i.group(1), int(m.group(1))))
                        uids.append(int(m.group(1)))
                if uids:
                    pick = ",".join(str(u) for u in rnd.sample(uids, min(5, len(uids))))
                    imap.command(f"UID STORE {pick} +FLAGS (\\Flagged)")
    finally:
        for j in jobs:
            j.join(30)
    assert all(j.exitcode == 0 for j in jobs)
    ours_delivered = [i for k in range(2) for i in json.loads(Path(f"{tmp_path}/d{k}").read_text())]
    x = json.loads(Path(f"{tmp_path}/x").read_text())
    final = store.Maildir(md).scan()
    id_of = {}
    for m in final.messages:
        first = (md / "cur" / m.filename).read_bytes().split(b"\n", 1)[0].decode().strip()
        id_of[m.basename] = first[len("X-Id: "):]
    remaining = list(id_of.values())
    assert len(remaining) == len(set(remaining)), "duplicated message"
    assert sorted(remaining + x["gone"]) == sorted(ours_delivered + appended), "lost message"
    assert appended and ours_delivered and x["gone"], (len(appended), len(ours_delivered))
    print(f"courier appended {len(appended)}, we delivered {len(ours_delivered)}, "
          f"expunged {len(x['gone'])}, courier saw {len(courier_seen)} UIDs")
    # one UID per message, whoever looked
    uid_by_id: dict[str, int] = {}
    for ident, uid in courier_seen:
        assert uid_by_id.setdefault(ident, uid) == uid, f"{ident}: UID changed under Courier"
    seen = [tuple(p) for p in json.loads(Path(f"{tmp_path}/f").read_text())] + \
        [tuple(p) for p in x["seen"]]
    uid_by_base: dict[str, int] = {}
    for base, uid in seen + [(m.basename, m.uid) for m in final.messages]:
        assert uid_by_base.setdefault(base, uid) == uid, f"{base}: UID changed under us"
    for base, ident in id_of.items():
        if ident in uid_by_id:
            assert uid_by_id[ident] == uid_by_base[base], f"{ident}: Courier and we disagree"
    assert len(set(uid_by_base.values())) == len(uid_by_base), "one UID for two messages"
    db = uiddb.read(md)
    assert db is not None and db.uids == {m.basename: m.uid for m in final.messages}
