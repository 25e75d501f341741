"""courierimapkeywords: the merge, versioning and clean-up rules of README.imapkeywords."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from courierpy.maildir import keywords as kw


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    m = tmp_path / "M"
    for sub in ("tmp", "new", "cur"):
        (m / sub).mkdir(parents=True)
    return m


def kwdir(folder: Path) -> Path:
    return folder / kw.KEYWORDS_DIR


def test_set_writes_a_pending_update_through_tmp(folder):
    assert kw.set_keywords(folder, "m1", ["zz", "AA", "mm", "aa"]) == ["AA", "mm", "zz"]
    assert (kwdir(folder) / "m1").read_bytes() == b"AA\nmm\nzz\n"
    assert os.listdir(folder / "tmp") == []
    assert oct(kwdir(folder).stat().st_mode & 0o777) == "0o700"


def test_read_merges_and_renames_pending_updates(folder):
    kw.set_keywords(folder, "m1", ["Foo", "bar"])
    kw.set_keywords(folder, "m2", ["FOO", "x"])
    now = 1_000_000.0
    state = kw.load(folder, now=now)
    t = int(now // 300)
    assert set(os.listdir(kwdir(folder))) == {":list", f".{t + 1}.m1", f".{t + 1}.m2"}
    # one spelling per keyword: the first met
    spellings = {w for words in state.messages.values() for w in words}
    assert len({w.lower() for w in spellings}) == len(spellings)
    listed = kw.parse_list((kwdir(folder) / ":list").read_bytes())[1]
    assert {k: sorted(v) for k, v in listed.items()} == {
        k: sorted(v) for k, v in state.messages.items()
    }


def test_case_sensitive_mode_keeps_variants(folder):
    kw.set_keywords(folder, "m1", ["Junk", "junk", "JUNK"], case_sensitive=True)
    assert kw.read_keywords(folder, case_sensitive=True) == {"m1": {"JUNK", "Junk", "junk"}}
    # the first spelling in :list (Courier's hash order) wins, as with maildirkw
    assert kw.read_keywords(folder) == {"m1": {"Junk"}}


def test_update_file_stops_at_empty_line():
    assert kw.parse_update(b"a\nb\n\nc\n") == ["a", "b"]
    assert kw.parse_update(b"a\nb") == ["a", "b"]
    assert kw.parse_update(b"") == []


def test_list_round_trip():
    msgs = {"m1": ["a", "b"], "m2": ["b", "c"], "m3": []}
    data = kw.format_list(msgs)
    assert data == b"a\nb\nc\n\nm1:0 1\nm2:1 2\n"
    words, parsed = kw.parse_list(data)
    assert words == ["a", "b", "c"]
    assert parsed == {"m1": ["a", "b"], "m2": ["b", "c"]}
    # out-of-range or junk indexes are ignored, not fatal
    assert kw.parse_list(b"a\n\nm1:0 7 x\nbroken\n")[1] == {"m1": ["a"]}


def test_newest_version_wins_and_old_ones_go(folder):
    d = kwdir(folder)
    d.mkdir()
    now = 3_000_000.0
    t = int(now // 300)
    (d / f".{t - 9}.m1").write_bytes(b"oldest\n")
    (d / f".{t - 5}.m1").write_bytes(b"older\n")
    (d / f".{t - 2}.m1").write_bytes(b"old\n")
    (d / f".{t + 1}.m2").write_bytes(b"fresh\n")
    (d / f".{t - 3}.m2").write_bytes(b"stale\n")
    state = kw.load(folder, now=now)
    assert state.messages == {"m1": ["old"], "m2": ["fresh"]}
    # lesser versions below T go; the newest old one stays (not lone), the fresh one stays
    left = [":list", f".{t - 2}.m1", f".{t + 1}.m2", f".{t - 3}.m2"]
    assert sorted(os.listdir(d)) == sorted(left)
    # next pass: m1's lone old version is in :list now, so it is removed
    kw.load(folder, now=now)
    assert f".{t - 2}.m1" not in os.listdir(d)
    assert kw.load(folder, now=now).messages["m1"] == ["old"]


def test_plain_update_beats_versions(folder):
    d = kwdir(folder)
    d.mkdir()
    now = 3_000_000.0
    t = int(now // 300)
    (d / f".{t + 1}.m1").write_bytes(b"versioned\n")
    (d / "m1").write_bytes(b"plain\n")
    assert kw.load(folder, now=now).messages == {"m1": ["plain"]}
    assert (d / f".{t + 1}.m1").read_bytes() == b"plain\n"


def test_missing_messages_are_dropped_and_their_updates_expire(folder):
    kw.set_keywords(folder, "gone", ["x"])
    kw.set_keywords(folder, "here", ["y"])
    kw.load(folder)  # merged into :list
    kw.set_keywords(folder, "gone", ["z"])
    present = {"here"}
    # young update files of unknown messages survive (the scan may have missed them)
    state = kw.load(folder, present=present)
    assert state.messages == {"here": ["y"]}
    assert any(n.endswith("gone") for n in os.listdir(kwdir(folder)))
    assert b"gone" not in (kwdir(folder) / ":list").read_bytes()
    # fifteen minutes later they are removed
    kw.load(folder, present=present, now=time.time() + kw.STALE_SECONDS + 1)
    assert not any(n.endswith("gone") for n in os.listdir(kwdir(folder)))


def test_add_and_remove(folder):
    kw.set_keywords(folder, "m1", ["Foo", "bar"])
    assert kw.update_keywords(folder, "m1", add=["baz", "FOO"]) == ["Foo", "bar", "baz"]
    assert kw.update_keywords(folder, "m1", remove=["BAR"]) == ["Foo", "baz"]
    assert kw.read_keywords(folder) == {"m1": {"Foo", "baz"}}
    assert [n for n in os.listdir(kwdir(folder)) if n.startswith(".tmp.")] == []


def test_add_to_missing_folder_fails_clearly(tmp_path):
    with pytest.raises(kw.KeywordError, match="No such file or directory"):
        kw.set_keywords(tmp_path / "nope", "m", ["x"])


def test_folder_lock_is_exclusive_and_released(folder):
    with kw.FolderLock(folder):
        assert (folder / "tmp" / "courier.lock").read_text().startswith(f"{os.getpid()}:")
        with pytest.raises(kw.KeywordError, match="locked"):
            with kw.FolderLock(folder, timeout=0.1):
                pass
    assert os.listdir(folder / "tmp") == []


def test_stale_lock_of_a_dead_process_is_broken(folder):
    p = multiprocessing.get_context("fork").Process(target=lambda: None)
    p.start()
    p.join()
    import socket

    (folder / "tmp" / "courier.lock").write_text(f"{p.pid}:{socket.gethostname()}")
    with kw.FolderLock(folder, timeout=1):
        pass


def _writer(folder: str, n: int, count: int) -> None:
    for i in range(count):
        if i % 2:
            kw.set_keywords(folder, f"w{n}m{i}", [f"k{n}", f"i{i}"])
        else:
            kw.update_keywords(folder, f"w{n}m{i}", add=[f"k{n}", f"i{i}"])


def _reader(folder: str, stop) -> None:
    while not stop.is_set():
        kw.load(folder)


def test_concurrent_writers_and_readers_lose_nothing(folder):
    """Writers on distinct messages, readers compacting all along: every update survives."""
    ctx = multiprocessing.get_context("fork")
    stop = ctx.Event()
    readers = [ctx.Process(target=_reader, args=(str(folder), stop)) for _ in range(2)]
    writers = [ctx.Process(target=_writer, args=(str(folder), n, 40)) for n in range(4)]
    for p in readers + writers:
        p.start()
    for p in writers:
        p.join(60)
        assert p.exitcode == 0
    stop.set()
    for p in readers:
        p.join(60)
        assert p.exitcode == 0
    got = kw.read_keywords(folder)
    want = {f"w{n}m{i}": {f"k{n}", f"i{i}"} for n in range(4) for i in range(40)}
    assert got == want
    assert os.listdir(folder / "tmp") == []


_WORDS = ["a", "B", "c", "Junk", "$Label1"]
_OPS = st.lists(
    st.tuples(
        st.sampled_from(["set", "add", "remove", "read", "wait"]),
        st.sampled_from(["m1", "m2", "m3"]),
        st.lists(st.sampled_from(_WORDS), max_size=3),
        st.integers(min_value=0, max_value=1200),
    ),
    max_size=30,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=_OPS)
def test_any_sequence_reads_back_like_a_plain_dict(tmp_path_factory, ops):
    """Whatever the order of writes, reads and clock jumps, a read gives the last writes."""
    folder = tmp_path_factory.mktemp("kw")
    for sub in ("tmp", "new", "cur"):
        (folder / sub).mkdir()
    model: dict[str, set[str]] = {}
    now = 1_800_000_000.0
    for op, base, words, delay in ops:
        if op == "set":
            kw.set_keywords(folder, base, words)
            model[base] = set(words)
        elif op == "add":
            kw.update_keywords(folder, base, add=words, now=now)
            model[base] = model.get(base, set()) | set(words)
        elif op == "remove":
            kw.update_keywords(folder, base, remove=words, now=now)
            model[base] = model.get(base, set()) - set(words)
        elif op == "wait":
            now += delay
        else:
            got = {b: set(w) for b, w in kw.load(folder, now=now).messages.items() if w}
            assert got == {b: w for b, w in model.items() if w}
    got = {b: set(w) for b, w in kw.load(folder, now=now + 5000).messages.items() if w}
    assert got == {b: w for b, w in model.items() if w}
