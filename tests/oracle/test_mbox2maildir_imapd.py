"""Messages imported by mbox2maildir, as Courier's imapd sees them: flags and dates."""

from __future__ import annotations

import email.utils
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from courierpy.maildir import folders
from tests.oracle.test_keywords_acl_imapd import imapd
from tests.support import REPO
from tests.unit.test_mbox import WANT_FLAGS, generate, write_mboxrd

pytestmark = pytest.mark.oracle

IMAP_FLAGS = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen", "T": "\\Deleted"}


def test_imported_flags_recent_and_internaldate_as_imapd_reports(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    maildir = folders.create_maildir(home / "Maildir")
    messages = generate(seed=21, count=60)
    mbox = tmp_path / "m"
    mbox.write_bytes(write_mboxrd(messages))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.run(
        [sys.executable, "-m", "courierpy.cli.mbox2maildir", str(mbox), str(maildir)],
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    out = imapd(home, ["SELECT INBOX", "FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE)"])
    seen = Counter()
    for line in out:
        m = re.match(r'\* \d+ FETCH \(FLAGS \(([^)]*)\) INTERNALDATE "([^"]+)"', line)
        if m:
            date = email.utils.parsedate_to_datetime(m.group(2)).timestamp()
            seen[(frozenset(m.group(1).split()), int(date))] += 1
    want = Counter()
    for _content, date, status, xstatus in messages:
        flags = ({"S"} if "R" in status else set()) | {WANT_FLAGS[c] for c in xstatus}
        # Courier's imapd reports \Recent for every message its courierimapuiddb
        # has not listed yet, in new/ or cur/ alike (observed here): so all of them.
        imap = {IMAP_FLAGS[f] for f in flags} | {"\\Recent"}
        want[(frozenset(imap), date)] += 1
    assert seen == want
