"""userdb, makeuserdb and pw2userdb against the real Courier tools.

Both sides run on copies of the same files; we compare the resulting files
(records as sets of fields: Courier rewrites an edited record in Perl hash
order, we keep the existing order), the outputs and the exit statuses.  The
real makeuserdb and authdaemond use /etc/courier, so they run in a private
mount namespace (tests/oracle/courier_auth.py).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from passlib.hash import md5_crypt

from authdaemon.userdb.database import UserDatabase, set_password
from authdaemon.userdb.gdbm import open_gdbm
from tests.oracle.courier_auth import courier_namespace, real_authdaemond, write_authdaemonrc
from tests.support import require

pytestmark = pytest.mark.oracle

BIN = Path(sys.executable).parent
REAL_USERDB = "/usr/sbin/userdb"
REAL_MAKEUSERDB = "/usr/sbin/makeuserdb"
REAL_PW2USERDB = "/usr/sbin/pw2userdb"


def ours(prog: str) -> str:
    path = BIN / prog
    assert path.exists(), f"{path} missing: run .venv/bin/pip install --no-deps -e ."
    return str(path)


def normalize_file(text: str) -> list[tuple[str, object]]:
    """Lines of a userdb file; a record's fields become a multiset."""
    out: list[tuple[str, object]] = []
    for line in text.split("\n"):
        name, tab, fields = line.partition("\t")
        if tab and not line.startswith("#"):
            out.append((name, Counter(fields.split("|"))))
        else:
            out.append((line, None))
    return out


def normalize_output(text: str, prog: str) -> str:
    text = text.replace(prog, "PROG")
    return re.sub(r" at /usr/sbin/userdb line \d+\.", "", text)


# -- userdb -----------------------------------------------------------------------

INITIAL = (
    "# a comment line\n"
    "alice\tuid=5000|gid=5000|home=/h/alice|mail=/h/alice/Maildir\n"
    "5000=\talice\n"
    "erin\thome=/h/erin|systempw=x\n"
)

#: (arguments after "-f FILE", stdin)
SCRIPT: list[tuple[list[str], str]] = [
    (["bob", "set", "home=/h/bob", "uid=1", "gid=2", "quota=5S"], ""),
    (["alice", "set", "systempw"], "$1$abc$def\n"),
    (["alice", "set", "uid=5001", "options=disableimap=1", "gecos=Alice A,Room 1"], ""),
    (["carol", "set", "x=1", "x=2", "flag", "y"], "\nvalue\n"),
    (["alice", "unset", "mail", "nothere"], ""),
    (["alice", "unset"], ""),
    (["nobody", "unset", "x"], ""),
    (["bob", "del"], ""),
    (["bob", "del"], ""),
    (["alice", "set", "bad|value"], ""),
    (["alice", "set", "home=/new\nline"], ""),
    (["alice", "set", "f"], "a|b\n"),
    (["alice", "set", "f"], ""),
    (["alice"], ""),
    (["alice", "frobnicate"], ""),
    (["alice", "del", "extra"], ""),
    (["dave", "set"], ""),
    (["erin", "set", "home=/h/erin2"], ""),
    (["5000=", "del"], ""),
]


def run_tool(argv: list[str], stdin: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, cwd=cwd,
                          timeout=30)


@pytest.fixture
def both(tmp_path: Path) -> tuple[Path, Path]:
    require(REAL_USERDB)
    real, mine = tmp_path / "real", tmp_path / "ours"
    for d in (real, mine):
        (d / "etc").mkdir(parents=True)
        (d / "etc" / "udb").write_text(INITIAL)
        (d / "etc" / "udb").chmod(0o600)
    return real / "etc" / "udb", mine / "etc" / "udb"


def test_userdb_script_matches_courier(both: tuple[Path, Path]) -> None:
    real_file, our_file = both
    for args, stdin in SCRIPT:
        real = run_tool([REAL_USERDB, "-f", str(real_file), *args], stdin, real_file.parent)
        mine = run_tool([ours("userdb"), "--config-dir", str(our_file.parent), "-f",
                         str(our_file), *args], stdin, our_file.parent)
        step = f"step {args!r}"
        assert mine.returncode == real.returncode, step
        assert normalize_output(mine.stdout, ours("userdb")) == \
            normalize_output(real.stdout, REAL_USERDB), step
        assert normalize_output(mine.stderr, ours("userdb")) == \
            normalize_output(real.stderr, REAL_USERDB), step
        assert normalize_file(our_file.read_text()) == normalize_file(real_file.read_text()), step
        assert our_file.stat().st_mode == real_file.stat().st_mode, step
    # Same leftovers: the lock file stays, no temporary file.
    assert sorted(p.name for p in our_file.parent.iterdir()) == \
        sorted(p.name for p in real_file.parent.iterdir())
    assert (our_file.parent / ".lock.udb").stat().st_mode & 0o777 == 0o600


def test_userdb_show_matches_courier(both: tuple[Path, Path]) -> None:
    real_file, our_file = both
    for args in (["-show", "-f", "{f}"], ["-show", "-f", "{f}", "alice"],
                 ["-show", "-f", "{f}", "5000="], ["-show", "-f", "{f}", "nobody"],
                 ["-show", "-f", "{f}.missing"], ["-show", "-f", "{f}", "x", "a|b"],
                 ["-show", "-f"]):
        real = run_tool([REAL_USERDB, *(a.format(f=real_file) for a in args)], "",
                        real_file.parent)
        mine = run_tool([ours("userdb"), *(a.format(f=our_file) for a in args)], "",
                        our_file.parent)
        assert mine.returncode == real.returncode, args
        assert Counter(mine.stdout.replace(ours("userdb"), "P").split("\n")) == \
            Counter(real.stdout.replace(REAL_USERDB, "P").split("\n")), args
        assert mine.stderr == real.stderr, args


def test_userdb_path_form_in_directory_source(tmp_path: Path) -> None:
    """``userdb sub/file/name set`` edits <userdb>/sub/file; the real one needs /etc/courier."""
    require(REAL_USERDB)
    trees = {}
    for side in ("real", "ours"):
        etc = tmp_path / side / "etc"
        (etc / "userdb" / "sub").mkdir(parents=True)
        (etc / "userdb").chmod(0o700)
        (etc / "userdb" / "sub" / "f1").write_text("b\thome=/b\n")
        (etc / "userdb" / "sub" / "f1").chmod(0o640)
        trees[side] = etc
    steps = [["sub/f1/b", "set", "uid=7"], ["sub/f1/c", "set", "home=/c"],
             ["sub/new/d", "set", "home=/d"], ["b", "set", "x=1"], ["sub/f1/c", "del"]]
    with courier_namespace(trees["real"]) as ns:
        real_out = [ns.run([REAL_USERDB, *s], text=True) for s in steps]
    our_out = [run_tool([ours("userdb"), "--config-dir", str(trees["ours"]), *s], "", tmp_path)
               for s in steps]
    for s, r, m in zip(steps, real_out, our_out, strict=True):
        assert (m.returncode, m.stdout) == (r.returncode, r.stdout), s
        assert m.stderr.replace(str(trees["ours"]), "/etc/courier") == r.stderr, s
    for rel in ("userdb/sub/f1", "userdb/sub/new"):
        real_p, our_p = trees["real"] / rel, trees["ours"] / rel
        assert normalize_file(our_p.read_text()) == normalize_file(real_p.read_text()), rel
        assert our_p.stat().st_mode & 0o777 == real_p.stat().st_mode & 0o777, rel


# -- makeuserdb -------------------------------------------------------------------

def dump_with_gdbmtool(path: Path) -> dict[bytes, bytes]:
    """Read a GDBM file with GNU's gdbm_dump (independent of our reader)."""
    prog = require("gdbm_dump")
    text = subprocess.run([prog, str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    chunks: list[bytes] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("#:len="):
            if current:
                chunks.append(base64.b64decode("".join(current)))
            current = []
        elif line.startswith("#"):
            continue
        else:
            current.append(line)
    if current:
        chunks.append(base64.b64decode("".join(current)))
    assert len(chunks) % 2 == 0
    return dict(zip(chunks[0::2], chunks[1::2], strict=True))


def dump_with_ours(path: Path) -> dict[bytes, bytes]:
    with open_gdbm(path) as db:
        return dict(db.items())


def make_source(etc: Path, *, directory: bool) -> None:
    etc.mkdir(parents=True)
    records = {
        "top": "alice\tuid=5000|gid=5000|home=/h/a|mail=/h/a/Maildir|systempw=$1$x$y"
               "|imappw=z|hmac-md5pw=ab|gecos=Alice\n"
               "5000=\talice\n# comment\n\n"
               "bob\thome=/h/b||pw=notsecret|foopw|quota=1S|\n"
               "nopw\thome=/n\n",
        "sub/more": "carol\thome=/h/c|systempw=c\n"
                    "d\xe9j\xe0\tuid=1|home=/h/d\n",
        "sub/.hidden": "hidden\thome=/x\n",
    }
    if directory:
        for rel, text in records.items():
            p = etc / "userdb" / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
            p.chmod(0o644)  # only the top directory's mode is checked
        (etc / "userdb").chmod(0o700)
    else:
        (etc / "userdb").write_text(records["top"] + records["sub/more"])
        (etc / "userdb").chmod(0o600)


@pytest.mark.parametrize("directory", [False, True], ids=["file", "directory"])
def test_makeuserdb_builds_what_courier_builds(tmp_path: Path, directory: bool) -> None:
    require(REAL_MAKEUSERDB)
    real_etc, our_etc = tmp_path / "real" / "etc", tmp_path / "ours" / "etc"
    make_source(real_etc, directory=directory)
    make_source(our_etc, directory=directory)
    with courier_namespace(real_etc) as ns:
        r = ns.run([REAL_MAKEUSERDB], text=True)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    m = subprocess.run([ours("makeuserdb"), "--config-dir", str(our_etc)], capture_output=True,
                       text=True)
    assert (m.returncode, m.stdout, m.stderr) == (0, "", "")
    for name in ("userdb.dat", "userdbshadow.dat"):
        real_db = dump_with_gdbmtool(real_etc / name)
        assert dump_with_gdbmtool(our_etc / name) == real_db, name
        assert dump_with_ours(our_etc / name) == real_db, name
        assert dump_with_ours(real_etc / name) == real_db, name
        assert (our_etc / name).stat().st_mode == (real_etc / name).stat().st_mode, name
        if not directory:  # same records in the same order: the very same bytes
            assert (our_etc / name).read_bytes() == (real_etc / name).read_bytes(), name
    assert sorted(os.listdir(our_etc)) == sorted(os.listdir(real_etc))
    assert (our_etc / "userdb.lock").stat().st_mode & 0o777 == 0o644
    dat = dump_with_ours(our_etc / "userdb.dat")
    assert dat[b"5000="] == b"alice|_=" + (b"top/" if directory else b"")
    if directory:
        assert dat[b"carol"] == b"home=/h/c|_=sub/more/"


def test_makeuserdb_refusals_match_courier(tmp_path: Path) -> None:
    require(REAL_MAKEUSERDB)
    src = tmp_path / "udb"
    src.write_text("a\thome=/a\n")
    src.chmod(0o600)
    loose = tmp_path / "loose"
    loose.write_text("a\thome=/a\n")
    loose.chmod(0o640)
    cases = [["-f", str(loose)], ["-f", str(tmp_path / "missing")]]
    link = tmp_path / "link"
    link.symlink_to(src)
    cases.append(["-f", str(link)])
    (tmp_path / "udb2").write_text("a\thome=/a\n")
    (tmp_path / "udb2").chmod(0o600)
    (tmp_path / "udb2.dat").symlink_to(tmp_path / "elsewhere")
    cases.append(["-f", str(tmp_path / "udb2")])
    cases.append(["-f"])
    for args in cases:
        real = subprocess.run([REAL_MAKEUSERDB, *args], capture_output=True, text=True)
        mine = subprocess.run([ours("makeuserdb"), *args], capture_output=True, text=True)
        assert (mine.returncode, mine.stdout, mine.stderr) == \
            (real.returncode, real.stdout, real.stderr), args
        assert real.returncode != 0


def test_makeuserdb_trailing_slash_and_ignored_words(tmp_path: Path) -> None:
    require(REAL_MAKEUSERDB)
    for side in ("real", "ours"):
        (tmp_path / side).mkdir()
        (tmp_path / side / "u").mkdir(mode=0o700)
        (tmp_path / side / "u" / "f").write_text("a\thome=/a|systempw=p\n")
    real = subprocess.run([REAL_MAKEUSERDB, "-f", f"{tmp_path}/real/u/", "extra"],
                          capture_output=True, text=True)
    mine = subprocess.run([ours("makeuserdb"), "-f", f"{tmp_path}/ours/u/", "extra"],
                          capture_output=True, text=True)
    assert (mine.returncode, mine.stderr) == (real.returncode, real.stderr) == (0, "")
    # The location differs on purpose: Courier computes it from the compiled-in
    # /etc/courier/userdb even with -f (garbage for other paths); ours is relative
    # to the source given.  Everything else is equal.
    real_dat = {k: v.rsplit(b"|_=", 1)[0] for k, v in
                dump_with_ours(tmp_path / "real" / "u.dat").items()}
    our_dat = dump_with_ours(tmp_path / "ours" / "u.dat")
    assert our_dat == {b"a": b"home=/a|_=f/"}
    assert {k: v.rsplit(b"|_=", 1)[0] for k, v in our_dat.items()} == real_dat
    assert dump_with_ours(tmp_path / "ours" / "ushadow.dat") == \
        dump_with_ours(tmp_path / "real" / "ushadow.dat") == {b"a": b"systempw=p"}


# -- the real authdaemond on our databases -------------------------------------------

def test_real_authdaemond_reads_our_userdb(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    write_authdaemonrc(etc)
    (etc / "userdb").mkdir(mode=0o700)
    (etc / "userdb" / "main").write_text(
        f"alice\tuid=5000|gid=5000|home=/h/alice|mail=/h/alice/Maildir|quota=100S"
        f"|systempw={md5_crypt.hash('alicepw')}\n"
        f"carol\tuid=5001|gid=5001|home=/h/carol|systempw={md5_crypt.hash('carolpw')}"
        f"|imappw={md5_crypt.hash('carolimap')}\n"
    )
    mine = subprocess.run([ours("makeuserdb"), "--config-dir", str(etc)], capture_output=True,
                          text=True)
    assert mine.returncode == 0, mine.stderr
    with real_authdaemond(etc) as ns:
        ok = ns.authtest("alice", "alicepw")
        assert ok.returncode == 0, ok.stderr
        assert "Authenticated: alice  (uid 5000, gid 5000)" in ok.stdout
        assert "Maildir: /h/alice/Maildir" in ok.stdout
        assert "Quota: 100S" in ok.stdout
        bad = ns.authtest("alice", "wrong")
        assert bad.returncode == 1
        assert "Authentication FAILED" in bad.stderr
        assert ns.authtest("nobody", "x").returncode == 1
        # Service passwords from our shadow db: imappw overrides systempw for imap.
        assert ns.authtest("carol", "carolimap", service="imap").returncode == 0
        assert ns.authtest("carol", "carolpw", service="imap").returncode == 1
        assert ns.authtest("carol", "carolpw").returncode == 0

        # Our password change (userdb set + makeuserdb) is seen by the running daemon.
        set_password(etc, "alice", "main/", "systempw", md5_crypt.hash("newpw"))
        assert "systempw=" in (etc / "userdb" / "main").read_text()
        assert ns.authtest("alice", "newpw").returncode == 0
        assert ns.authtest("alice", "alicepw").returncode == 1

        # The real password change (authtest old new runs Courier's userdb and
        # makeuserdb inside the namespace) is read by our reader.
        changed = ns.authtest("carol", "carolpw", "carolpw2")
        assert changed.returncode == 0, changed.stderr
    record = UserDatabase(etc).lookup("carol")
    assert record is not None
    assert md5_crypt.verify("carolpw2", record.secrets["systempw"])
    assert record.fields["_"] == "main/"


# -- pw2userdb --------------------------------------------------------------------

def lines_of(text: str) -> Counter[str]:
    return Counter(text.splitlines(keepends=True))


def test_pw2userdb_on_this_machine() -> None:
    real = subprocess.run([require(REAL_PW2USERDB)], capture_output=True, text=True)
    mine = subprocess.run([ours("pw2userdb")], capture_output=True, text=True)
    assert (mine.returncode, mine.stderr) == (real.returncode, real.stderr) == (0, "")
    assert lines_of(mine.stdout) == lines_of(real.stdout)
    assert len(mine.stdout) > 0


PASSWD = (
    "root:x:0:0:root:/root:/bin/bash\n"
    "# comment\n"
    "plain:$1$ab$cd:10:10:Plain User,,,:/home/plain:/bin/sh\n"
    "pipe:x:11:11:A|B:/home/pipe:\n"
    "noshadow:x:12:12::/home/n:/bin/false\n"
    "short:x:13\n"
    "\n"
    "extra:x:14:14:g:/h:/bin/sh:more:fields\n"
    "dup:x:15:15:first:/a:/bin/sh\n"
    "dup:x:16:16:second:/b:/bin/sh\n"
    "emptyshadow:x:17:17:e:/e:/bin/sh\n"
)
SHADOW = (
    "root:$6$salt$hash:19000:0:99999:7:::\n"
    "plain:!:19000::::::\n"
    "# comment\n"
    "pipe:*:1\n"
    "emptyshadow::19000:0:99999:7:::\n"
    "orphan:$1$x$y:1:::::\n"
)


@pytest.mark.parametrize("options", [[], ["--nouid"], ["--noshadow"], ["--domain", "ex.org"],
                                     ["-nouid", "-domain=ex.com"]])
def test_pw2userdb_edge_cases(tmp_path: Path, options: list[str]) -> None:
    (tmp_path / "passwd").write_text(PASSWD)
    (tmp_path / "shadow").write_text(SHADOW)
    args = ["--passwd", str(tmp_path / "passwd"), "--shadow", str(tmp_path / "shadow"), *options]
    real = subprocess.run([require(REAL_PW2USERDB), *args], capture_output=True, text=True)
    mine = subprocess.run([ours("pw2userdb"), *args], capture_output=True, text=True)
    assert (mine.returncode, mine.stderr) == (real.returncode, real.stderr) == (0, "")
    assert lines_of(mine.stdout) == lines_of(real.stdout)


def test_pw2userdb_missing_passwd(tmp_path: Path) -> None:
    args = ["--passwd", str(tmp_path / "nope")]
    real = subprocess.run([require(REAL_PW2USERDB), *args], capture_output=True, text=True)
    mine = subprocess.run([ours("pw2userdb"), *args], capture_output=True, text=True)
    assert (mine.returncode, mine.stdout, mine.stderr) == \
        (real.returncode, real.stdout, real.stderr)
    assert real.returncode != 0


def test_namespace_leaves_host_untouched(tmp_path: Path) -> None:
    before = sorted(os.listdir("/etc/courier"))
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "marker").write_text("x")
    with courier_namespace(etc) as ns:
        assert ns.run(["cat", "/etc/courier/marker"], text=True).stdout == "x"
        holder = ns.holder.pid
    assert sorted(os.listdir("/etc/courier")) == before
    assert not os.path.exists(f"/proc/{holder}") or \
        open(f"/proc/{holder}/stat").read().split()[2] == "Z"
    shutil.rmtree(etc)


def run_on_terminal(argv: list[str], typed: bytes, cwd: Path) -> tuple[int, str]:
    """Run *argv* with a pseudo-terminal as stdin (so it prompts); stdout captured."""
    import pty

    controller, terminal = pty.openpty()
    try:
        os.write(controller, typed)
        proc = subprocess.run(argv, stdin=terminal, capture_output=True, text=True, cwd=cwd,
                              timeout=30)
    finally:
        os.close(terminal)
        os.close(controller)
    return proc.returncode, proc.stdout + proc.stderr


def test_userdb_prompts_like_courier_on_a_terminal(both: tuple[Path, Path]) -> None:
    real_file, our_file = both
    for args, typed in ((["alice", "set", "systempw", "uid=9", "quota"], b"hash\n7S\n"),
                        (["zed", "set", "home"], b"/h/zed\n"),
                        (["alice", "set", "bad"], b"a|b\n")):
        real = run_on_terminal([REAL_USERDB, "-f", str(real_file), *args], typed,
                               real_file.parent)
        mine = run_on_terminal([ours("userdb"), "-f", str(our_file), *args], typed,
                               our_file.parent)
        assert mine == real, args
        assert normalize_file(our_file.read_text()) == normalize_file(real_file.read_text())


# -- random edit sequences, both tools --------------------------------------------

_NAMES = st.sampled_from(["alice", "bob", "#c", "x=y", "5000=", "caf\u00e9"])
_FIELD = st.text(alphabet="abcpw_-#", min_size=1, max_size=6)
_VALUE = st.text(alphabet="az09 =/\t$.,\u00e9|", max_size=8)
_OP = st.one_of(
    st.tuples(st.just("set"), _NAMES,
              st.lists(st.tuples(_FIELD, _VALUE).map(lambda fv: f"{fv[0]}={fv[1]}"),
                       max_size=4)),
    st.tuples(st.just("unset"), _NAMES, st.lists(_FIELD, max_size=3)),
    st.tuples(st.just("del"), _NAMES, st.just([])),
)


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(_OP, min_size=1, max_size=6))
def test_random_edits_match_courier(tmp_path_factory: pytest.TempPathFactory,
                                    ops: list[tuple[str, str, list[str]]]) -> None:
    require(REAL_USERDB)
    base = tmp_path_factory.mktemp("fuzz")
    files = []
    for side in ("real", "ours"):
        f = base / side
        f.write_text(INITIAL)
        f.chmod(0o600)
        files.append(f)
    real_file, our_file = files
    for verb, name, args in ops:
        real = run_tool([REAL_USERDB, "-f", str(real_file), name, verb, *args], "", base)
        mine = run_tool([ours("userdb"), "-f", str(our_file), name, verb, *args], "", base)
        assert (mine.returncode, mine.stderr) == (real.returncode, real.stderr), (verb, name, args)
        assert normalize_file(our_file.read_text()) == normalize_file(real_file.read_text())


def test_duplicate_names_fail_in_both_but_only_ours_keeps_both_databases(tmp_path: Path) -> None:
    """Deliberate difference: on a duplicate name Courier's makedatprog aborts the
    userdb.dat build but still installs the new userdbshadow.dat (observed: old
    accounts, new passwords); we install neither and name both lines."""
    require(REAL_MAKEUSERDB)
    snapshots = {}
    results = {}
    for side, prog in (("real", REAL_MAKEUSERDB), ("ours", ours("makeuserdb"))):
        src = tmp_path / side / "udb"
        src.parent.mkdir()
        src.write_text("a\thome=/a|systempw=1\n")
        src.chmod(0o600)
        assert subprocess.run([prog, "-f", str(src)]).returncode == 0
        snapshots[side] = {n: (src.parent / n).read_bytes() for n in ("udb.dat", "udbshadow.dat")}
        src.write_text("a\thome=/a|systempw=2\nb\thome=/b|systempw=3\na\thome=/c\n")
        results[side] = subprocess.run([prog, "-f", str(src)], capture_output=True, text=True)
        after = {n: (src.parent / n).read_bytes() for n in ("udb.dat", "udbshadow.dat")}
        if side == "ours":
            assert after == snapshots[side]
    assert results["real"].returncode == results["ours"].returncode == 1
    assert "duplicate" in results["real"].stderr
    assert results["ours"].stderr == f"{tmp_path}/ours/udb:3: duplicate record for a " \
        f"(first at {tmp_path}/ours/udb:1).\n"
