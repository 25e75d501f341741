"""``authuserdb``: accounts from the compiled userdb (``userdb.dat`` + ``userdbshadow.dat``).

Field rules, as the real module applies them (checked against it):

- the record must have ``home``; ``uid``/``gid`` are numbers; ``mail`` becomes
  ``MAILDIR``, ``quota`` ``QUOTA``, ``gecos`` up to its first ``,`` ``NAME``;
  ``ADDRESS`` is the name that was looked up (case-sensitive);
- the password is ``<service>pw`` when the record has one, else ``systempw``;
- CRAM-<algo> uses ``<service>-hmac-<algo>pw``, else ``hmac-<algo>pw``, and a
  CRAM success carries no NAME, QUOTA or PASSWD;
- a password change rewrites ``<service>pw`` (or ``systempw``) with MD5-crypt,
  and each ``hmac-*pw`` field the old password matches, then recompiles;
- reverse uid records (``5000=``) are never accounts.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterator

from authdaemon import passwords
from authdaemon.modules import ModuleContext, ModuleTempFail
from authdaemon.userdb.database import UserDatabase, UserRecord, set_password
from courierpy import authproto
from courierpy.authproto import AuthInfo, EnumEntry
from courierpy.errors import CourierError

__all__ = ["UserdbModule"]


def _atoi(text: str) -> int:
    """C's atoi, as Courier reads uid and gid: "abc" is 0, "12x" is 12."""
    m = _LEADING_INT.match(text)
    return int(m.group()) if m else 0


_LEADING_INT = re.compile(r"\s*[-+]?[0-9]+")


def _unset(value: str | None) -> str:
    return "<unset>" if value is None else value


def _null(value: object) -> str:
    return "<null>" if value is None else str(value)


class UserdbModule:
    """The authuserdb backend."""

    name = "authuserdb"

    def __init__(self, ctx: ModuleContext) -> None:
        self.ctx = ctx
        self.debug = ctx.debug
        self.db = UserDatabase(ctx.confdir)

    def close(self) -> None:
        self.db.close()

    # -- lookups ---------------------------------------------------------------

    def _lookup(self, userid: str) -> UserRecord | None:
        self.debug(f"userdb: looking up '{userid}'")
        try:
            record = self.db.lookup(userid)
        except CourierError as exc:
            self.ctx.debug.logger.error(f"userdb: {exc}")
            raise ModuleTempFail(str(exc)) from None
        if record is None:
            self.debug("userdb: entry not found")
            return None
        f = record.fields
        if self.debug.enabled:
            self.debug(
                f"userdb: home={_unset(f.get('home'))}, uid={_unset(f.get('uid'))}, "
                f"gid={_unset(f.get('gid'))}, shell={_unset(f.get('shell'))}, "
                f"mail={_unset(f.get('mail'))}, quota={_unset(f.get('quota'))}, "
                f"gecos={_unset(f.get('gecos'))}, options={_unset(f.get('options'))}"
            )
        if "home" not in f:
            self.debug("userdb: no home directory, record ignored")
            return None
        return record

    def _info(
        self,
        userid: str,
        record: UserRecord,
        *,
        full: bool = True,
        passwd: str | None = None,
        passwd2: str | None = None,
    ) -> AuthInfo | None:
        f = record.fields
        if "uid" not in f or "gid" not in f:
            self.debug(f"userdb: no uid or gid for '{userid}', record ignored")
            return None  # Courier's authuserdb refuses such a record (checked)
        uid, gid = _atoi(f["uid"]), _atoi(f["gid"])
        gecos = f.get("gecos")
        return AuthInfo(
            uid=uid,
            gid=gid,
            home=f["home"],
            address=userid,
            fullname=gecos.split(",", 1)[0] if (gecos is not None and full) else None,
            maildir=f.get("mail"),
            quota=f.get("quota") if full else None,
            passwd=passwd,
            passwd2=passwd2,
            options=f.get("options"),
        )

    def _password_field(self, service: str, record: UserRecord) -> str | None:
        for field in (f"{service}pw", "systempw"):
            if field in record.secrets:
                self.debug(f"found {field} in userdbshadow")
                return field
        self.debug("no password found in userdbshadow")
        return None

    def _log_info(self, info: AuthInfo) -> None:
        if not self.debug.enabled:
            return
        self.debug(
            f"authuserdb: sysusername={_null(info.sysusername)}, sysuserid={_null(info.uid)}, "
            f"sysgroupid={info.gid}, homedir={info.home}, address={_null(info.address)}, "
            f"fullname={_null(info.fullname)}, maildir={_null(info.maildir)}, "
            f"quota={_null(info.quota)}, options={_null(info.options)}"
        )

    # -- the four requests -------------------------------------------------------

    def pre(self, service: str, userid: str) -> AuthInfo | None:
        record = self._lookup(userid)
        if record is None:
            return None
        field = self._password_field(service, record)
        passwd = record.secrets[field] if field is not None else None
        info = self._info(userid, record, passwd=passwd)
        if info is not None:
            self._log_info(info)
        return info

    def auth(self, service: str, authtype: str, authdata: str) -> AuthInfo | None:
        if authtype == "login":
            parsed = authproto.parse_login(authdata)
            if parsed is None:
                return None
            return self._auth_login(service, *parsed)
        if authtype.startswith("cram-"):
            algo = authtype[len("cram-") :]
            if algo not in passwords.CRAM_ALGORITHMS:
                return None
            cram = authproto.parse_cram(authdata)
            if cram is None:
                self.debug("authuserdb: invalid CRAM response")
                return None
            return self._auth_cram(service, algo, *cram)
        self.debug(f"authuserdb: unsupported authentication type {authtype}")
        return None

    def _auth_login(self, service: str, userid: str, password: str) -> AuthInfo | None:
        record = self._lookup(userid)
        if record is None:
            return None
        field = self._password_field(service, record)
        if field is None:
            return None
        stored = record.secrets[field]
        if self.debug.enabled:
            self._log_info_of(userid, record, stored)
        if not passwords.verify(password, stored):
            self.debug.secret(
                f"supplied password '{password}' does not match encrypted password '{stored}'",
                "supplied password does not match encrypted password",
            )
            return None
        self.debug("password matches successfully")
        return self._info(userid, record, passwd=stored, passwd2=password)

    def _log_info_of(self, userid: str, record: UserRecord, stored: str) -> None:
        info = self._info(userid, record, passwd=stored)
        if info is not None:
            self._log_info(info)

    def _auth_cram(
        self, service: str, algo: str, challenge: bytes, userid: str, digest: str
    ) -> AuthInfo | None:
        record = self._lookup(userid)
        if record is None:
            return None
        secret = None
        for field in (f"{service}-hmac-{algo}pw", f"hmac-{algo}pw"):
            if field in record.secrets:
                secret = record.secrets[field]
                break
        if secret is None:
            self.debug(f"authuserdb: no hmac-{algo}pw for '{userid}'")
            return None
        if not passwords.cram_verify(challenge, digest, secret, algo):
            self.debug(f"authuserdb: CRAM-{algo.upper()} response does not match")
            return None
        info = self._info(userid, record, full=False)
        if info is not None:
            self._log_info(info)
        return info

    def passwd(self, service: str, userid: str, oldpw: str, newpw: str) -> bool:
        self.debug(f"Trying to change system password for {service}")
        self.debug.secret(f"Old password={oldpw}, new password={newpw}", "Checking old password")
        record = self._lookup(userid)
        if record is None:
            return False
        location = record.fields.get("_", "")
        changes: list[tuple[str, str]] = []
        field = f"{service}pw" if f"{service}pw" in record.secrets else "systempw"
        self.debug(f'Checking for password called "{field}"')
        stored = record.secrets.get(field)
        if stored is None:
            self.debug("Password not found.")
        elif passwords.verify(oldpw, stored):
            changes.append((field, passwords.hash_password(newpw, "md5-crypt")))
        else:
            self.debug("Password didn't match.")
        for algo in passwords.CRAM_ALGORITHMS:
            for hfield in (f"{service}-hmac-{algo}pw", f"hmac-{algo}pw"):
                secret = record.secrets.get(hfield)
                self.debug(f'Checking for password called "{hfield}"')
                if secret is None:
                    self.debug("Password not found.")
                    continue
                expected = passwords.hmac_secret(oldpw, algo).encode()
                if hmac.compare_digest(secret.lower().encode(), expected):
                    changes.append((hfield, passwords.hmac_secret(newpw, algo)))
                else:
                    self.debug("Password didn't match.")
        if not changes:
            self.debug("authuserdb: return code -1")
            return False
        try:
            for fname, value in changes:
                set_password(self.ctx.confdir, userid, location, fname, value)
        except CourierError as exc:
            self.ctx.debug.logger.error(f"authuserdb: password change for {userid} failed: {exc}")
            raise ModuleTempFail(str(exc)) from None
        self.debug("authuserdb: return code 0")
        return True

    def enumerate(self) -> Iterator[EnumEntry] | None:
        try:
            records = list(self.db.enumerate())
        except CourierError as exc:
            raise ModuleTempFail(str(exc)) from None
        return self._entries(records)

    @staticmethod
    def _entries(records: list[UserRecord]) -> Iterator[EnumEntry]:
        for record in records:
            f = record.fields
            if "home" not in f or "uid" not in f or "gid" not in f:
                continue
            uid, gid = _atoi(f["uid"]), _atoi(f["gid"])
            yield EnumEntry(
                record.name, uid, gid, f["home"], f.get("mail", ""), f.get("options", "")
            )
