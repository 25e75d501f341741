"""Header SEARCH from a loaded cache file (undecoded entries, byte pre-filter) finds
exactly what it finds from freshly parsed messages (every entry decoded)."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from benchmarks.fetch_cache import make_message
from courierpy.imap.fetch import MessageView
from courierpy.imap.search import search
from courierpy.imap.searchkeys import Header, Or
from courierpy.maildir.cache import MetadataCache

ODD = [
    b"From: =?utf-8?B?4oSqZWx2aW4=?= <k@example.com>\nSubject: x\n\nbody\n",  # KELVIN SIGN
    b'From: "Back\\\\slash \\"q\\"" <b@example.com>\nSubject: tab\there\n\nbody\n',
    b"From: plain@example.com\nSubject: =?iso-8859-1?Q?caf=E9?= menu\n\nbody\n",
    b"From: a@example.com\nSubject: multi\n  line   spaced\n\nbody\n",
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> tuple[Path, list[MessageView]]:
    md = tmp_path_factory.mktemp("pf") / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    rng = random.Random(5)
    msgs = [make_message(rng, i) for i in range(60)] + ODD
    views = []
    for i, data in enumerate(msgs):
        base = f"{1700000000 + i}.M{i}P1.pf,S={len(data)}"
        p = md / "cur" / f"{base}:2,S"
        p.write_bytes(data)
        views.append(MessageView(i + 1, i + 1, str(p), base, ("\\Seen",),
                                 os.stat(p).st_mtime, len(data)))
    cache = MetadataCache(md)
    for v in views:
        cache.get(v.path, v.basename)
    cache.save()
    return md, views


NEEDLES = ["jurgen", "jürgen", "smith", "k", "kelvin", "re", "slash", '"q"', "tab here",
           "café", "caf", "line spaced", "example.com", "", "from", "nobody-at-all"]


@pytest.mark.parametrize("needle", NEEDLES)
@pytest.mark.parametrize("field", ["FROM", "SUBJECT", "TO"])
def test_loaded_cache_matches_parsed(folder, field: str, needle: str) -> None:
    md, views = folder
    key = Header(field, needle)
    (md / "courierpy.cache").rename(md / "saved")
    try:
        parsed = MetadataCache(md)  # no file: every message parsed, entries decoded
        want = [v.uid for v in search(views, key, parsed, max_uid=99, max_seq=99)]
    finally:
        (md / "saved").rename(md / "courierpy.cache")
    loaded = MetadataCache(md)
    got = [v.uid for v in search(views, key, loaded, max_uid=99, max_seq=99)]
    assert got == want
    assert loaded.parsed == 0
    # and once more in the same session (entries now partly decoded)
    again = [v.uid for v in search(views, Or(key, Header("CC", "zz-none")), loaded,
                                   max_uid=99, max_seq=99)]
    assert again == want


def test_prefilter_finds_something(folder) -> None:
    """Not vacuous: the needles above do match some messages."""
    md, views = folder
    loaded = MetadataCache(md)
    for needle, least in (("kelvin", 1), ("smith", 1), ("café", 1), ("slash", 1)):
        found = search(views, Header("FROM" if needle != "café" else "SUBJECT", needle),
                       loaded, max_uid=99, max_seq=99)
        assert len(found) >= least, needle


def test_ascii_lowering_table_is_complete() -> None:
    """The pre-filter's list of non-ASCII characters lowering to ASCII is right
    for this Python's Unicode tables."""
    from courierpy.imap.search import ASCII_LOWERING

    found = {chr(c) for c in range(128, 0x110000)
             if not 0xD800 <= c < 0xE000 and any(ch.isascii() for ch in chr(c).lower())}
    assert found == set(ASCII_LOWERING)
