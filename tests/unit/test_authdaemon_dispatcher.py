"""The module chain of authdaemond (Dispatcher): order, REJECT/OK/TEMPFAIL, options.

Only authuserdb exists so far, so the chain rules are checked here with small
stand-in modules that follow the AuthModule protocol.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from authdaemon.modules import DebugLog, ModuleTempFail
from authdaemon.server import Dispatcher
from courierpy import authproto as p


@dataclass
class Stub:
    name: str
    accounts: dict[str, p.AuthInfo] = field(default_factory=dict)
    down: bool = False
    can_list: bool = True
    calls: list[str] = field(default_factory=list)

    def _answer(self, userid: str) -> p.AuthInfo | None:
        self.calls.append(userid)
        if self.down:
            raise ModuleTempFail(f"{self.name} is down")
        return self.accounts.get(userid)

    def pre(self, service: str, userid: str) -> p.AuthInfo | None:
        return self._answer(userid)

    def auth(self, service: str, authtype: str, authdata: str) -> p.AuthInfo | None:
        return self._answer(authdata.split("\n")[0])

    def passwd(self, service: str, userid: str, oldpw: str, newpw: str) -> bool:
        return self._answer(userid) is not None

    def enumerate(self) -> Iterator[p.EnumEntry] | None:
        if not self.can_list:
            return None

        def entries() -> Iterator[p.EnumEntry]:
            for name, info in self.accounts.items():
                yield p.EnumEntry(name, info.uid or 0, info.gid, info.home, "", info.options or "")
            if self.down:
                raise ModuleTempFail("lost the database")

        return entries()

    def close(self) -> None:
        pass


def info(name: str, options: str | None = None) -> p.AuthInfo:
    return p.AuthInfo(uid=1, gid=2, home=f"/h/{name}", address=name, options=options)


def dispatcher(*modules: Stub, defaults: str = "") -> Dispatcher:
    return Dispatcher(list(modules), defaults, DebugLog(logging.getLogger("test"), 0))


def test_first_module_that_knows_the_account_answers() -> None:
    a, b = Stub("a", {"x": info("x")}), Stub("b", {"x": info("x2"), "y": info("y")})
    d = dispatcher(a, b)
    assert d.handle(p.PreRequest(".", "imap", "x")) == p.encode_authinfo(info("x"))
    assert b.calls == []  # never asked
    assert d.handle(p.PreRequest(".", "imap", "y")) == p.encode_authinfo(info("y"))
    assert d.handle(p.PreRequest(".", "imap", "z")) == b"FAIL\n"


def test_pre_names_one_module() -> None:
    a, b = Stub("a", {"x": info("x")}), Stub("b", {"x": info("x2")})
    d = dispatcher(a, b)
    assert d.handle(p.PreRequest("b", "imap", "x")) == p.encode_authinfo(info("x2"))
    assert d.handle(p.PreRequest("c", "imap", "x")) == b"FAIL\n"


def test_tempfail_stops_the_chain_without_a_reply() -> None:
    a, b = Stub("a", down=True), Stub("b", {"x": info("x")})
    d = dispatcher(a, b)
    assert d.handle(p.AuthRequest("imap", "login", "x\npw\n")) is None
    assert b.calls == []
    assert d.handle(p.PasswdRequest("imap", "x", "o", "n")) is None


def test_passwd_ok_from_any_module() -> None:
    d = dispatcher(Stub("a"), Stub("b", {"x": info("x")}))
    assert d.handle(p.PasswdRequest("imap", "x", "o", "n")) == b"OK\n"
    assert d.handle(p.PasswdRequest("imap", "nobody", "o", "n")) == b"FAIL\n"


def test_defaultoptions_merged_into_replies_and_lists() -> None:
    d = dispatcher(Stub("a", {"x": info("x", "disablepop3=1")}), defaults="disablepop3=0,quota=1")
    reply = d.handle(p.PreRequest(".", "imap", "x"))
    assert b"OPTIONS=disablepop3=1,quota=1\n" in reply
    listing = d.handle(p.EnumerateRequest())
    assert listing == b"# a\n\nx\t1\t2\t/h/x\t\tdisablepop3=1,quota=1\n.\n"


def test_enumerate_headers_skip_modules_that_cannot_list() -> None:
    d = dispatcher(Stub("a", {"x": info("x")}, can_list=False), Stub("b", {"y": info("y")}))
    assert d.handle(p.EnumerateRequest()) == b"# b\n\ny\t1\t2\t/h/y\t\t\n.\n"


def test_enumerate_cut_short_has_no_final_dot() -> None:
    d = dispatcher(Stub("a", {"x": info("x")}, down=True), Stub("b", {"y": info("y")}))
    assert d.handle(p.EnumerateRequest()) == b"# a\n\nx\t1\t2\t/h/x\t\t\n"


def test_bad_request_is_fail() -> None:
    assert dispatcher(Stub("a")).handle(p.BadRequest("x")) == b"FAIL\n"
