"""The per-folder metadata cache (courierpy.maildir.cache) on real Maildirs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from courierpy.maildir.cache import CACHE_NAME, MetadataCache, address_text
from courierpy.maildir.store import MessageGone
from courierpy.mime.imapwire import message_wire

MSG1 = (
    b"From: =?utf-8?Q?J=C3=BCrgen?= <j@x.example>\nTo: Team: a@x.example, B <b@y.example>;\n"
    b"Subject: =?iso-8859-1?Q?caf=E9?=\nDate: Mon, 1 Jan 2024 23:30:00 -0500\n"
    b"Message-ID: <m1@x>\n\nhello\n"
)
MSG2 = (
    b"From: a@b.example\nSubject: outer\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n"
    b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=A\n\n--A\n"
    b"Content-Type: message/rfc822\n\nFrom: in@y.example\nSubject: inner\n"
    b"Date: Fri, 1 Mar 2024 10:00:00 +0000\n\nbody\n--A--\n"
)


def make_folder(tmp_path: Path, messages: dict[str, bytes]) -> tuple[Path, dict[str, Path]]:
    folder = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    paths = {}
    for i, (base, data) in enumerate(messages.items()):
        p = folder / "cur" / f"{base}:2,S"
        p.write_bytes(data)
        os.utime(p, (1700000000 + i, 1700000000 + i))
        paths[base] = p
    return folder, paths


@pytest.fixture
def folder(tmp_path):
    return make_folder(tmp_path, {"1.M1P1.h": MSG1, "2.M2P1.h": MSG2})


def entries(cache: MetadataCache, paths: dict[str, Path]):
    out = {}
    for base, p in paths.items():
        m = cache.get(p, base)
        out[base] = (m.envelope, m.bodystructure, m.body, m.rfc822_size, m.headers, m.dates,
                     m.tree().to_json(envelopes=False))
    return out


def test_miss_parses_and_matches_message_wire(folder) -> None:
    md, paths = folder
    cache = MetadataCache(md)
    meta = cache.get(paths["1.M1P1.h"], "1.M1P1.h")
    wire = message_wire(MSG1)
    assert (meta.envelope, meta.bodystructure, meta.body, meta.rfc822_size) == (
        wire.envelope, wire.bodystructure, wire.body, wire.rfc822_size)
    assert meta.headers["subject"] == ("café",)
    assert meta.headers["from"] == ("Jürgen <j@x.example>",)
    assert meta.headers["to"] == ("Team: a@x.example, B <b@y.example>;",)
    assert meta.dates == (1704169800.0,)
    assert cache.get(paths["1.M1P1.h"], "1.M1P1.h") is meta
    assert cache.parsed == 1


def test_attached_messages_headers_and_dates_count(folder) -> None:
    md, paths = folder
    meta = MetadataCache(md).get(paths["2.M2P1.h"], "2.M2P1.h")
    assert meta.headers["subject"] == ("outer", "inner")
    assert len(meta.dates) == 2


def test_saved_cache_serves_without_parsing(folder) -> None:
    md, paths = folder
    first = MetadataCache(md)
    want = entries(first, paths)
    first.save()
    assert (md / CACHE_NAME).read_bytes().startswith(b"courierpy-cache 4 ")
    second = MetadataCache(md)
    assert entries(second, paths) == want
    assert second.parsed == 0 and second.loaded == 2


def test_flag_rename_keeps_the_entry_valid(folder) -> None:
    md, paths = folder
    c = MetadataCache(md)
    entries(c, paths)
    c.save()
    old = paths["1.M1P1.h"]
    new = old.with_name("1.M1P1.h:2,FRS")
    os.rename(old, new)
    again = MetadataCache(md)
    again.get(new, "1.M1P1.h")
    again.get(old, "1.M1P1.h")  # a stale path is found again by basename
    assert again.parsed == 0


def test_replaced_message_with_other_size_is_reparsed(folder) -> None:
    md, paths = folder
    c = MetadataCache(md)
    entries(c, paths)
    c.save()
    p = paths["1.M1P1.h"]
    p.write_bytes(MSG1.replace(b"hello", b"hello again"))
    os.utime(p, (1700000000, 1700000000))  # same mtime: the size tells
    again = MetadataCache(md)
    meta = again.get(p, "1.M1P1.h")
    assert again.parsed == 1
    assert meta.rfc822_size == message_wire(p.read_bytes()).rfc822_size


def test_same_size_new_mtime_is_reparsed(folder) -> None:
    md, paths = folder
    c = MetadataCache(md)
    entries(c, paths)
    c.save()
    p = paths["1.M1P1.h"]
    p.write_bytes(MSG1.replace(b"hello", b"HELLO"))
    os.utime(p, (1800000000, 1800000000))
    again = MetadataCache(md)
    assert again.get(p, "1.M1P1.h").headers["subject"] == ("café",)
    assert again.parsed == 1


def _corruptions(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x20
    # a line whose CRC is right but whose JSON has the wrong shape
    import zlib

    body = b"1.M1P1.h\t7\t1\t2\t3\tE\tB\tD\t[1,2]\t[]\t{}\n"
    bad_shape = b"courierpy-cache 4 %08x\n" % zlib.crc32(body) + body
    return [
        b"",
        b"garbage\n",
        data[: len(data) // 2],
        data[:-1],
        bytes(flipped),
        lines[0].replace(b" 4 ", b" 9 ") + b"\n" + b"\n".join(lines[1:]),
        data + b"x\tno\n",
        bad_shape,
        b"\x00" * 100,
    ]


@pytest.mark.parametrize("which", range(9))
def test_corrupt_cache_is_discarded_and_rebuilt(folder, which: int) -> None:
    md, paths = folder
    good = MetadataCache(md)
    want = entries(good, paths)
    good.save()
    data = (md / CACHE_NAME).read_bytes()
    (md / CACHE_NAME).write_bytes(_corruptions(data)[which])
    again = MetadataCache(md)
    assert entries(again, paths) == want
    assert again.parsed >= 1
    again.save()
    assert _entry_lines(md) == sorted(data.splitlines()[1:])


def _entry_lines(md: Path) -> list[bytes]:
    return sorted((md / CACHE_NAME).read_bytes().splitlines()[1:])


def _edit_entry(md: Path, base: str, edit) -> None:
    """Change the fields of *base*'s line with *edit*; the file's CRC made right."""
    import zlib

    lines = (md / CACHE_NAME).read_bytes().split(b"\n")[1:]
    for i, line in enumerate(lines):
        if line.startswith(base.encode() + b"\t"):
            fields = line.split(b"\t")
            edit(fields)
            lines[i] = b"\t".join(fields)
    body = b"\n".join(lines)
    (md / CACHE_NAME).write_bytes(b"courierpy-cache 4 %08x\n" % zlib.crc32(body) + body)


def test_entry_with_undecodable_tree_is_reparsed(folder) -> None:
    md, paths = folder
    good = MetadataCache(md)
    want = entries(good, paths)
    good.save()
    _edit_entry(md, "1.M1P1.h", lambda f: f.__setitem__(9, b"[1,2,3]"))
    again = MetadataCache(md)
    tree = again.tree(paths["1.M1P1.h"], "1.M1P1.h")
    assert tree.to_json(envelopes=False) == want["1.M1P1.h"][6]
    assert again.parsed == 1


def test_entry_with_bad_search_data_is_reparsed(folder) -> None:
    md, paths = folder
    good = MetadataCache(md)
    want = entries(good, paths)
    good.save()
    # a number where text belongs
    _edit_entry(md, "1.M1P1.h", lambda f: f.__setitem__(8, b'[{"from":[1]},[]]'))
    again = MetadataCache(md)
    meta = again.search_data(paths["1.M1P1.h"], "1.M1P1.h")
    assert meta.headers == want["1.M1P1.h"][4]
    assert again.parsed == 1


def test_deleted_cache_is_rebuilt_identical(folder) -> None:
    md, paths = folder
    c = MetadataCache(md)
    entries(c, paths)
    c.save()
    data = (md / CACHE_NAME).read_bytes()
    (md / CACHE_NAME).unlink()
    again = MetadataCache(md)
    entries(again, paths)
    again.save()
    assert _entry_lines(md) == sorted(data.splitlines()[1:])


def test_vanished_messages_are_dropped_on_save(folder) -> None:
    md, paths = folder
    c = MetadataCache(md)
    entries(c, paths)
    c.save()
    paths["2.M2P1.h"].unlink()
    (md / "cur" / "3.M3P1.h:2,").write_bytes(b"Subject: three\n\nx\n")
    again = MetadataCache(md)
    again.get(md / "cur" / "3.M3P1.h:2,", "3.M3P1.h")
    again.save()
    text = (md / CACHE_NAME).read_bytes()
    assert b"\n1.M1P1.h\t" in text and b"\n3.M3P1.h\t" in text
    assert b"2.M2P1.h" not in text


def test_expunged_message(folder) -> None:
    md, paths = folder
    c = MetadataCache(md)
    meta = c.get(paths["1.M1P1.h"], "1.M1P1.h")
    paths["1.M1P1.h"].unlink()
    assert c.get(paths["1.M1P1.h"], "1.M1P1.h") is meta  # bytes cannot have changed
    paths["2.M2P1.h"].unlink()
    with pytest.raises(MessageGone):
        c.get(paths["2.M2P1.h"], "2.M2P1.h")


def test_save_failure_is_logged_not_raised(folder, caplog) -> None:
    md, paths = folder
    (md / CACHE_NAME).mkdir()  # the rename cannot replace a directory
    c = MetadataCache(md)
    entries(c, paths)
    c.save()
    assert "not saved" in caplog.text
    assert not [p for p in md.iterdir() if ".tmp." in p.name]


def test_two_sessions_saving_last_rename_wins(folder) -> None:
    md, paths = folder
    a, b = MetadataCache(md), MetadataCache(md)
    a.get(paths["1.M1P1.h"], "1.M1P1.h")
    b.get(paths["2.M2P1.h"], "2.M2P1.h")
    a.save()
    b.save()
    c = MetadataCache(md)
    entries(c, paths)
    assert c.loaded == 1 and c.parsed == 1  # b's file, valid; a's entry rebuilt


def test_nothing_written_when_unchanged(folder) -> None:
    md, paths = folder
    c = MetadataCache(md)
    c.save()
    assert not (md / CACHE_NAME).exists()


def test_address_text() -> None:
    assert address_text('(hidden) bcc@example.com (Bcc Person)') == "Bcc Person <bcc@example.com>"
    assert address_text('"Doe, John" <j@x>, solo@y') == "Doe, John <j@x>, solo@y"
    assert address_text("undisclosed-recipients:;") == "undisclosed-recipients:;"


@pytest.mark.parametrize(
    "raw, text",
    [
        ("=?utf-8?Q?foo?= =?utf-8?Q?bar?= plain=?utf-8?Q?tail?=", "foobar plaintail"),
        ("=?iso-8859-1?Q?caf=E9_au_lait?=", "café au lait"),
        ("=?utf-8?B?aMO2dGVs?= india", "hötel india"),
        ("=?koi8-r?B?8NLJ18XU?=", "Привет"),
        ("=?utf-8*en?Q?x?= y", "x y"),
        ("=?bogus-charset?Q?x?=", "=?bogus-charset?Q?x?="),
        ("raw \xc3\xa9t\xc3\xa9", "raw été"),
        ("plain ascii", "plain ascii"),
    ],
)
def test_decode_text(raw: str, text: str) -> None:
    from courierpy.maildir.cache import decode_text

    assert decode_text(raw) == text


def test_decoded_entries_are_bounded(folder) -> None:
    md, paths = folder
    c = MetadataCache(md)
    want = entries(c, paths)
    c.save()
    small = MetadataCache(md)
    small.MAX_DECODED = 1
    assert entries(small, paths) == want
    assert len(small._decoded) == 1
    assert entries(small, paths) == want  # re-read from the file, not reparsed
    assert small.parsed == 0 and small.loaded == 4
    small.close()


def test_cache_file_edited_in_place_is_not_trusted(folder) -> None:
    md, paths = folder
    c = MetadataCache(md)
    want = entries(c, paths)
    c.save()
    reader = MetadataCache(md)
    reader.get(paths["1.M1P1.h"], "1.M1P1.h")  # reads the whole file
    data = bytearray((md / CACHE_NAME).read_bytes())
    data[-20] ^= 0x01  # someone edits the file in place (not our writers)
    with open(md / CACHE_NAME, "r+b") as f:
        f.write(data)
    assert entries(reader, paths) == want  # the copy it read
    again = MetadataCache(md)
    assert entries(again, paths) == want
    assert again.parsed >= 1


def test_address_text_keeps_source_routes() -> None:
    assert address_text("<@relay.example,@other.example:routed@example.com>") == (
        "@relay.example,@other.example:routed@example.com")


def test_wire_fields_cannot_inject_protocol_lines() -> None:
    import base64 as b64

    from courierpy.maildir.cache import CacheCorrupt, _unfield

    lit = b'("text" "plain" ("name" {4}\r\na\r\nb) NIL)'
    assert _unfield(b"\x01" + b64.b64encode(lit)) == lit
    for bad in (b'(NIL "x")\r\n* 1 EXPUNGE\r\n', b"{9}\r\nab", b"(\rx)", b"{2}\r\nab\r\n"):
        with pytest.raises(CacheCorrupt):
            _unfield(b"\x01" + b64.b64encode(bad))
    with pytest.raises(CacheCorrupt):
        _unfield(b'(NIL "x")\r* 1 EXPUNGE')


def test_corpus_wire_forms_pass_the_check() -> None:
    from courierpy.maildir.cache import _field, _unfield
    from tests.unit.test_mime_corpus import CORPUS

    for data in CORPUS.values():
        w = message_wire(data)
        for item in (w.envelope, w.bodystructure, w.body):
            assert _unfield(_field(item)) == item


# -- the validation rule: inode from the folder listing, else stat ---------------------

def _sized_folder(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    """Messages named as delivered, with ``,S=`` (the rule needs it)."""
    return make_folder(tmp_path, {f"1.M1P1.h,S={len(MSG1)}": MSG1,
                                  f"2.M2P1.h,S={len(MSG2)}": MSG2})


def _session_cache(md: Path) -> tuple[MetadataCache, dict[str, Path]]:
    """A cache as a new IMAP session has it: the scan's inode numbers given."""
    from courierpy.maildir.store import Maildir

    lst = Maildir(md).listing()
    return (MetadataCache(md, inodes=lst.inodes),
            {b: md / "cur" / n for b, n in lst.names.items()})


def _saved(md: Path):  # type: ignore[no-untyped-def]
    """A first session's entries and message paths, its cache file written."""
    first, paths = _session_cache(md)
    want = entries(first, paths)
    first.save()
    return want, paths


def test_entry_trusted_by_the_listed_inode_without_stat(tmp_path) -> None:
    md, _ = _sized_folder(tmp_path)
    want, _ = _saved(md)
    again, paths = _session_cache(md)
    assert entries(again, paths) == want
    assert (again.parsed, again.statted, again.loaded) == (0, 0, 2)


def test_file_replaced_under_the_same_name_is_reparsed(tmp_path) -> None:
    md, _ = _sized_folder(tmp_path)
    _, paths = _saved(md)
    base = f"1.M1P1.h,S={len(MSG1)}"
    other = MSG1.replace(b"Subject: =?iso-8859-1?Q?caf=E9?=", b"Subject: replaced, longer")
    tmp = md / "tmp" / "x"
    tmp.write_bytes(other)
    os.utime(tmp, (1700000000, 1700000000))  # even the same mtime
    os.rename(tmp, paths[base])  # a new file (new inode) under the same name
    again, paths = _session_cache(md)
    meta = again.get(paths[base], base)
    assert meta.headers["subject"] == ("replaced, longer",)
    assert (meta.envelope, meta.rfc822_size) == (message_wire(other).envelope,
                                                message_wire(other).rfc822_size)
    assert meta.size == len(other) != len(MSG1)
    assert again.parsed == 1


def test_file_rewritten_in_place_is_reparsed_before_its_bytes_are_read(tmp_path) -> None:
    md, _ = _sized_folder(tmp_path)
    _, paths = _saved(md)
    base = f"1.M1P1.h,S={len(MSG1)}"
    other = MSG1.replace(b"hello", b"hello, and a longer body")
    paths[base].write_bytes(other)  # same inode: not what Maildir writers do
    again, paths = _session_cache(md)
    tree = again.tree(paths[base], base, verify=True)  # as BODY[section] asks
    assert tree.to_json(envelopes=False) == message_wire(other).tree.to_json(envelopes=False)
    assert again.parsed == 1
    third, paths = _session_cache(md)
    assert not third.check_size(base, len(other))  # as TEXT SEARCH checks the bytes read
    assert third.get(paths[base], base).size == len(other)


def test_copied_folder_is_checked_by_stat_once_then_trusted(tmp_path) -> None:
    import shutil

    md, _ = _sized_folder(tmp_path)
    want, _ = _saved(md)
    copy = tmp_path / "copy"
    shutil.copytree(md, copy)  # new inodes, same sizes and mtimes
    second, paths = _session_cache(copy)
    assert entries(second, paths) == want
    assert (second.parsed, second.statted) == (0, 2)
    second.save()  # the new inode numbers recorded
    third, paths = _session_cache(copy)
    assert entries(third, paths) == want
    assert (third.parsed, third.statted) == (0, 0)


@pytest.mark.parametrize("name", ["1.M1P1.h", "1.M1P1.h,S=999"])
def test_name_without_the_true_size_is_always_checked_by_stat(tmp_path, name) -> None:
    md, _ = make_folder(tmp_path, {name: MSG1})
    want, _ = _saved(md)
    for _ in range(2):
        again, paths = _session_cache(md)
        assert entries(again, paths) == want
        assert (again.parsed, again.statted) == (0, 1)


@pytest.mark.parametrize("head", [
    b"Subject: plain\nFrom: a@b\nTo: c@d\nCc: e@f\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n",
    b"From someone@x Mon Jan  1 10:00:00 2024\nSubject: after a From line\n",
    b"subject:   folded\n  over\n\tlines\r\nsubject: second one ignored\r\n",
    b"Subject:\n continued only\nReferences: <a@b>\n <c@d>\n",
    b"Subject: caf\xc3\xa9 8-bit\nFrom: =?utf-8?Q?J=C3=BCrgen?= <j@x>\n",
    b"X-A: 1\njunk line without colon\nSubject: hidden by the junk\n",
    b"Bad Name: x\nSubject: hidden too\n",
    b" leading continuation\nSubject: kept\nMessage-ID: <m@x>\nIn-Reply-To: <p@x>\n",
    b"Subject: no final newline",
])
def test_sort_fields_read_as_the_email_parser_does(tmp_path, head) -> None:
    from email.parser import BytesHeaderParser
    from email.policy import compat32

    from courierpy.maildir.cache import SORT_FIELDS

    md, paths = make_folder(tmp_path, {"1.M1P1.h": head + b"\nbody\n"})
    fields = MetadataCache(md).sort_data(paths["1.M1P1.h"], "1.M1P1.h")
    want = BytesHeaderParser(policy=compat32).parsebytes(head + b"\n")
    for name in SORT_FIELDS:
        got = fields.get(name)
        got = None if got is None else compat32.header_fetch_parse(name, got)
        assert str(got) == str(want.get(name)), name
        assert type(got) is type(want.get(name)), name


def test_entries_with_literals_in_their_wire_forms_survive_the_file(tmp_path) -> None:
    """A wire form holding a control character is stored in base64: the file is
    then read in its careful mode, the plain entries next to it too."""
    odd = b"From: a@b\nSubject: a\x01b\nMIME-Version: 1.0\n\nx\n"
    md, paths = make_folder(tmp_path, {"1.M1P1.h": MSG1, "2.M2P1.h": odd})
    first = MetadataCache(md)
    want = entries(first, paths)
    assert b"a\x01b" in want["2.M2P1.h"][0]
    first.save()
    assert b"\x01" in (md / CACHE_NAME).read_bytes()
    again = MetadataCache(md)
    assert entries(again, paths) == want
    assert again.parsed == 0 and not again._plain
    (md / CACHE_NAME).unlink()
    plain, paths1 = make_folder(tmp_path / "p", {"1.M1P1.h": MSG1})
    c = MetadataCache(plain)
    want1 = entries(c, paths1)
    c.save()
    c = MetadataCache(plain)
    assert entries(c, paths1) == want1 and c._plain and c.parsed == 0
