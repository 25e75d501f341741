"""couriertcpd's pure parts: access keys and values, makedat text rules, slots, options."""

from __future__ import annotations

from pathlib import Path

import pytest

from courierpy.gdbm import open_gdbm
from courierpy.tcpd.access import (
    AccessDb,
    Decision,
    canonical_ip,
    local_keys,
    parse_value,
    remote_keys,
)
from courierpy.tcpd.limits import Limits, Slots
from courierpy.tcpd.makedat import MakedatError, compile_access, expand_cidr, parse_lines
from courierpy.tcpd.options import Listen, OptionError, parse_args, parse_portlist


def test_canonical_ip() -> None:
    assert canonical_ip("127.0.0.1") == "::ffff:127.0.0.1"
    assert canonical_ip("::ffff:10.1.2.3") == "::ffff:10.1.2.3"
    assert canonical_ip("2001:db8:0::1") == "2001:db8::1"


def test_remote_and_local_keys() -> None:
    assert remote_keys("::ffff:192.168.1.20") == [
        "192.168.1.20", "192.168.1", "192.168", "192", "*"]
    v6 = remote_keys("2001:db8::1")
    assert v6[0] == ":2001:0db8:0000:0000:0000:0000:0000:0001" and v6[-2:] == [":2001", "*"]
    assert len(v6) == 9
    assert local_keys("::ffff:10.0.0.1", 143) == [
        "10.0.0.1.143", "10.0.0.1", "10.0.0", "10.0", "10", "*.143", "*"]


@pytest.mark.parametrize("value,allowed,env", [
    (b"deny", False, ()),
    (b"denyx,B=1", False, ()),
    (b"allow", True, ()),
    (b"1", True, (("1", ""),)),
    (b"allow,FOO=bar,EMPTY=,NOEQ", True, (("FOO", "bar"), ("EMPTY", ""), ("NOEQ", ""))),
    (b"allowx,B=1", True, (("x", ""), ("B", "1"))),
    (b"Allow,A=1", True, (("Allow", ""), ("A", "1"))),
    (b"DENY", True, (("DENY", ""),)),
    (b"allow,,C=1", True, (("", ""), ("C", "1"))),
    (b"allow,  LEAD=1 ,MID=a b", True, (("LEAD", "1"), ("MID", "a b"))),
    (b"allow,A=b=c", True, (("A", "b=c"),)),
])
def test_parse_value(value: bytes, allowed: bool, env: tuple) -> None:
    assert parse_value(value) == Decision(allowed, env)


def test_access_db_most_specific_wins(tmp_path: Path) -> None:
    dat = tmp_path / "a.dat"
    compile_access([b"10\tdeny\n", b"10.1.2\tallow,NET=1\n", b"10.1.2.3\tallow,IP=1\n",
                    b"*\tallow,ANY=1\n", b"10.1.2.3.143\tallow,LOCAL=1\n"], dat, tmp_path / "t")
    db = AccessDb(dat)
    assert db.check("::ffff:10.1.2.3") == Decision(True, (("IP", "1"),))
    assert db.check("::ffff:10.1.2.4") == Decision(True, (("NET", "1"),))
    assert not db.check("::ffff:10.9.9.9").allowed
    assert db.check("::ffff:11.0.0.1").get("ANY") == "1"
    both = db.check("::ffff:10.1.2.4", "::ffff:10.1.2.3", 143)
    assert both.env == (("LOCAL", "1"), ("NET", "1"))
    missing = AccessDb(tmp_path / "none.dat")
    assert missing.error and missing.error.endswith("No such file or directory")
    assert missing.check("::ffff:10.9.9.9").allowed


def test_makedat_rules(tmp_path: Path) -> None:
    lines = [b"# c\n", b"\n", b"k\n", b"v\t\n", b"\tx\n", b"a\tb\tc\n", b"r\tdeny\r\n",
             b".\n", b"after\tdeny\n"]
    assert list(parse_lines(lines)) == [(b"k", b"1"), (b"v", b"1"), (b"a", b"b\tc"),
                                        (b"r", b"deny\r")]
    dat = tmp_path / "x.dat"
    dat.write_bytes(b"old")
    with pytest.raises(MakedatError, match="Cannot store record for a - duplicate"):
        compile_access([b"a\t1\n", b"a\t2\n"], dat, tmp_path / "x.tmp")
    assert dat.read_bytes() == b"old" and not (tmp_path / "x.tmp").exists()
    assert compile_access([b"a\t1\n"], dat, tmp_path / "x.tmp") == 1
    with open_gdbm(dat) as db:
        assert dict(db.items()) == {b"a": b"1"}


def test_expand_cidr_matches_net_cidr_output() -> None:
    # captured from Courier's makedat -cidr with Net::CIDR 0.21
    got = list(expand_cidr([b"192.168.1.0/30\tallow,X=1\n", b"10.0.0.0/20\tdeny\n",
                            b"2001:db8:1::/47\tdeny\n", b"1.2.3.0/24 allow\n",
                            b"10.1.2.3-10.1.2.5\tdeny\n", b"plain\tdeny\n"]))
    assert got[:4] == [b"192.168.1.%d\tallow,X=1\n" % n for n in range(4)]
    assert got[4:20] == [b"10.0.%d\tdeny\n" % n for n in range(16)]
    assert got[20:22] == [b":2001:0db8:0000\tdeny\n", b":2001:0db8:0001\tdeny\n"]
    assert got[22:] == [b"1.2.3\tallow\n", b"10.1.2.3\tdeny\n", b"10.1.2.4\tdeny\n",
                        b"10.1.2.5\tdeny\n", b"plain\tdeny\n"]


def test_slots_log_once_and_release() -> None:
    a, b = "::ffff:10.0.0.1", "::ffff:10.0.0.2"
    s = Slots(Limits(maxprocs=3, warn=2, maxperip=1))
    assert s.take() == [] and s.admit(a) is None
    assert s.take() == ["WARN: 2 active connections."]
    assert s.admit(a) == f"ALERT: Maximum connection limit reached for {a}"
    s.give_back()
    assert s.take() == [] and s.admit(b, maxcperip=5) is None
    assert s.take() == ["ALERT: 3 maximum active connections."]
    assert s.full()
    s.give_back()
    s.release(a)
    s.release(b)
    assert s.active == 0 and not s.per_ip and not s.per_c
    assert s.take() == [] and s.take() == [] and s.take() == []  # logged once only


def test_options() -> None:
    o = parse_args("tcpd", ["-maxprocs=10", "-nodnslookup", "-address=127.0.0.1",
                            "143,993", "/bin/prog", "-x", "arg"])
    assert (o.maxprocs, o.warn_level, o.nodnslookup) == (10, 8, True)
    assert parse_args("t", ["1", "p"]).warn_level == 35  # default -maxprocs 40
    assert (o.portlist, o.program, o.args) == ("143,993", "/bin/prog", ["-x", "arg"])
    assert parse_portlist(o.portlist, o.address) == [Listen("127.0.0.1", 143),
                                                     Listen("127.0.0.1", 993)]
    assert parse_portlist("0.110,::1.995,imap", "0") == [
        Listen(None, 110), Listen("::1", 995), Listen(None, 143)]
    assert parse_args("t", ["-maxprocs=5x", "1", "p"]).maxprocs == 5  # atoi, as Courier
    with pytest.raises(OptionError, match="^t: Invalid option: -x$"):
        parse_args("t", ["-x", "1", "p"])
    with pytest.raises(OptionError, match="^Invalid -maxprocsarg option.$"):
        parse_args("t", ["-maxprocs=0", "1", "p"])
    with pytest.raises(OptionError, match="^Invalid port: 0$"):
        parse_portlist("0", None)


def test_maxperc_refuses_silently() -> None:
    s = Slots(Limits(maxprocs=10, warn=9, maxperc=1))
    assert s.admit("::ffff:10.0.0.1") is None
    assert s.admit("::ffff:10.0.0.2") == ""  # same /24: refused, nothing to log
    assert s.admit("::ffff:10.0.1.1") is None
