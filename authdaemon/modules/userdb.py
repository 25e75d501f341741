"""``authuserdb``: accounts from the compiled userdb (``userdb.dat`` + ``userdbshadow.dat``).

Field rules, as the real module applies them (checked against it):

- the record must have ``home``, ``uid`` and ``gid`` (numbers read like C's
  ``atoi``); ``mail`` becomes ``MAILDIR``, ``quota`` ``QUOTA``, ``gecos``
  ``NAME``; ``ADDRESS`` is the name that was looked up (case-sensitive);
- the password is ``<service>pw`` when the record has one, else ``systempw``;
- CRAM-<algo> uses ``<service>-hmac-<algo>pw``, else ``hmac-<algo>pw``, and a
  CRAM success carries no NAME, QUOTA or PASSWD;
- a password change rewrites ``<service>pw`` (or ``systempw``) with MD5-crypt,
  and each ``hmac-*pw`` field the old password matches, then recompiles;
- reverse uid records (``5000=``) are never accounts.

With DEBUG_LOGIN the module logs what Courier's logs, line for line where
we have seen it (``tests/oracle`` compares the two logs).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterator

from authdaemon import passwords
from authdaemon.modules import ModuleContext, ModuleTempFail, authinfo_summary
from authdaemon.userdb.database import UserDatabase, UserRecord, set_password
from courierpy import authproto
from courierpy.authproto import AuthInfo, EnumEntry
from courierpy.errors import CourierError

__all__ = ["UserdbModule"]

_LEADING_INT = re.compile(r"\s*[-+]?[0-9]+")
#: Fields an account must have, in the order Courier checks them.
_REQUIRED = ("home", "uid", "gid")


def _atoi(text: str) -> int:
    """C's atoi, as Courier reads uid and gid: "abc" is 0, "12x" is 12."""
    m = _LEADING_INT.match(text)
    return int(m.group()) if m else 0


def _unset(value: str | None) -> str:
    return "<unset>" if value is None else value


class UserdbModule:
    """The authuserdb backend."""

    name = "authuserdb"

    def __init__(self, ctx: ModuleContext) -> None:
        self.ctx = ctx
        self.debug = ctx.debug
        self.db = UserDatabase(ctx.confdir)

    def close(self) -> None:
        self.db.close()

    # -- records -----------------------------------------------------------------

    def _fetch(self, userid: str) -> UserRecord | None:
        try:
            return self.db.lookup(userid)
        except CourierError as exc:
            self.ctx.debug.logger.error(f"userdb: {exc}")
            raise ModuleTempFail(str(exc)) from None

    def _usable(self, record: UserRecord) -> bool:
        """Has the required fields; logs the record as Courier does."""
        f = record.fields
        for name in _REQUIRED:
            if name not in f:
                self.debug(f"userdb: required value '{name}' is missing")
                return False
        if self.debug.enabled:
            self.debug(
                f"userdb: home={f['home']}, uid={_atoi(f['uid'])}, gid={_atoi(f['gid'])}, "
                f"shell={_unset(f.get('shell'))}, mail={_unset(f.get('mail'))}, "
                f"quota={_unset(f.get('quota'))}, gecos={_unset(f.get('gecos'))}, "
                f"options={_unset(f.get('options'))}"
            )
        return True

    def _lookup(self, userid: str) -> UserRecord | None:
        self.debug(f"userdb: looking up '{userid}'")
        record = self._fetch(userid)
        if record is None:
            self.debug("userdb: entry not found")
            return None
        return record if self._usable(record) else None

    @staticmethod
    def _info(
        userid: str,
        record: UserRecord,
        *,
        full: bool = True,
        passwd: str | None = None,
        passwd2: str | None = None,
    ) -> AuthInfo:
        f = record.fields
        return AuthInfo(
            uid=_atoi(f["uid"]),
            gid=_atoi(f["gid"]),
            home=f["home"],
            address=userid,
            fullname=f.get("gecos") if full else None,
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
        self.debug("userdbshadow: entry not found")
        return None

    def _log_info(self, info: AuthInfo) -> None:
        if self.debug.enabled:
            self.debug(f"authuserdb: {authinfo_summary(info)}")
        if self.debug.passwords:
            self.debug(f"authuserdb: clearpasswd=<null>, passwd={info.passwd or '<null>'}")

    # -- the four requests -------------------------------------------------------

    def pre(self, service: str, userid: str) -> AuthInfo | None:
        record = self._lookup(userid)
        if record is None:
            return None
        field = self._password_field(service, record)
        passwd = record.secrets[field] if field is not None else None
        info = self._info(userid, record, passwd=passwd)
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
            return self._auth_cram(service, algo, authdata)
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
        self._log_info(self._info(userid, record, passwd=stored))
        if not self._check(password, stored):
            return None
        self.debug("password matches successfully")
        return self._info(userid, record, passwd=stored, passwd2=password)

    def _check(self, password: str, stored: str) -> bool:
        if passwords.verify(password, stored):
            return True
        self.debug.secret(
            f"supplied password '{password}' does not match encrypted password '{stored}'",
            "supplied password does not match encrypted password",
        )
        return False

    def _auth_cram(self, service: str, algo: str, authdata: str) -> AuthInfo | None:
        lines = authdata.split("\n")
        self.debug(
            f"cram: challenge={lines[0]}, response={lines[1] if len(lines) > 1 else ''}"
        )
        cram = authproto.parse_cram(authdata)
        if cram is None:
            self.debug("cram: invalid base64 encoding")
            return None
        challenge, userid, digest = cram
        self.debug(f"cram: decoded challenge/response, username '{userid}'")
        record = self._fetch(userid)
        if record is None:
            self.debug("userdb: entry not found")
            return None
        secret = None
        for field in (f"{service}-hmac-{algo}pw", f"hmac-{algo}pw"):
            if field in record.secrets:
                secret = record.secrets[field]
                break
        if secret is None:
            self.debug(
                f"authcram: no {service}-hmac-{algo}pw or hmac-{algo}pw value found"
            )
            return None
        if not passwords.cram_verify(challenge, digest, secret, algo):
            self.debug("cram validation failed")
            return None
        self.debug("cram validation succeeded")
        if not self._usable(record):
            return None
        return self._info(userid, record, full=False)

    def passwd(self, service: str, userid: str, oldpw: str, newpw: str) -> bool:
        record = self._fetch(userid)
        changes: list[tuple[str, str]] = []
        old_line = f"Old password={oldpw}, new password={newpw}"
        no_shadow = "userdbshadow: entry not found"
        has_shadow = record is not None and bool(record.secrets)
        self.debug(f"Trying to change system password for {service}")
        self.debug.secret(old_line)
        if record is None or not record.secrets:
            self.debug(no_shadow)
        else:
            field = f"{service}pw"
            self.debug(f'Checking for password called "{field}"')
            if field not in record.secrets:
                field = "systempw"
                self.debug(f'Not found, checking for "{field}"')
            stored = record.secrets.get(field)
            if stored is None:
                self.debug("Password not found.")
            elif self._check(oldpw, stored):
                changes.append((field, passwords.hash_password(newpw, "md5-crypt")))
            else:
                self.debug("Password didn't match.")
        for algo in passwords.CRAM_ALGORITHMS:
            for hfield in (f"{service}-hmac-{algo}pw", f"hmac-{algo}pw"):
                self.debug(f"Trying to change password for {algo}")
                self.debug.secret(old_line)
                if record is None or not has_shadow:
                    self.debug(no_shadow)
                    continue
                self.debug(f'Checking for password called "{hfield}"')
                secret = record.secrets.get(hfield)
                if secret is None:
                    self.debug("Password not found.")
                    continue
                expected = passwords.hmac_secret(oldpw, algo).encode()
                if hmac.compare_digest(secret.lower().encode(), expected):
                    changes.append((hfield, passwords.hmac_secret(newpw, algo)))
                else:
                    self.debug("Password didn't match.")
        if record is None or not changes:
            self.debug("authuserdb: return code -1")
            return False
        location = record.fields.get("_", "")
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

    def _entries(self, records: list[UserRecord]) -> Iterator[EnumEntry]:
        for record in records:
            if not self._usable(record):
                continue
            f = record.fields
            yield EnumEntry(
                record.name,
                _atoi(f["uid"]),
                _atoi(f["gid"]),
                f["home"],
                f.get("mail", ""),
                f.get("options", ""),
            )
