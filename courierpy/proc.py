"""Privilege drop and environment hand-off: the only module that calls set*id.

After a login the server process becomes the account before it touches any
mail, as Courier's login programs do: supplementary groups are cleared, the
gid and then the uid are set (real, effective and saved), the process moves
to the account's home directory and takes the configured umask.
"""

from __future__ import annotations

import os

from courierpy.errors import EX_TEMPFAIL, CourierError

__all__ = [
    "PrivilegeError", "become_account", "drop_to", "lookup_group", "lookup_user", "parse_umask",
]


class PrivilegeError(CourierError):
    """The process could not become the account (or reach its home)."""

    exit_code = EX_TEMPFAIL


def parse_umask(text: str | None, default: int = 0o022) -> int:
    """``IMAP_UMASK``-style octal text (``022``) → int; *default* when unset or bad."""
    if not text:
        return default
    try:
        return int(text.strip(), 8) & 0o777
    except ValueError:
        return default


def become_account(uid: int | None, gid: int, home: str | None, *,
                   umask: int | None = None) -> None:
    """Drop to *uid*/*gid* when running as root, chdir to *home*, set *umask*.

    A uid of ``None`` (Courier's "no uid given") or the current ids change
    nothing; as an unprivileged process a different uid is refused.
    """
    if uid is not None:
        if os.geteuid() == 0:
            try:
                os.setgroups([])
                os.setresgid(gid, gid, gid)
                os.setresuid(uid, uid, uid)
            except OSError as e:
                raise PrivilegeError(f"cannot become uid {uid} gid {gid}: {e.strerror}") from None
        elif uid != os.geteuid():
            raise PrivilegeError(f"cannot become uid {uid}: not running as root")
    if home:
        try:
            os.chdir(home)
        except OSError as e:
            raise PrivilegeError(f"{home}: {e.strerror}") from None
    if umask is not None:
        os.umask(umask)


# -- couriertcpd's -user/-group -------------------------------------------------


def lookup_user(name: str) -> tuple[int, int, str]:
    """``(uid, gid, name)`` of *name* (or a numeric uid); :class:`PrivilegeError` if unknown.

    The message of an unknown user is Courier couriertcpd's (``getpwnam: Success``).
    """
    import pwd

    try:
        pw = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except (KeyError, ValueError):
        raise PrivilegeError("getpwnam: Success") from None
    return pw.pw_uid, pw.pw_gid, pw.pw_name


def lookup_group(name: str) -> int:
    """The gid of *name* (or a numeric gid); :class:`PrivilegeError` if unknown."""
    import grp

    if name.isdigit():
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise PrivilegeError(f"Group not found: {name}") from None


def drop_to(user: str | None, group: str | None) -> None:
    """couriertcpd's ``-user``/``-group``: become that user (and its groups) / group.

    ``-user`` also takes the user's primary group and supplementary groups;
    ``-group`` sets the group (after ``-user``'s, so it wins).  Resolve the
    names first (:func:`lookup_user`, :func:`lookup_group`) to report unknown
    names before anything is bound.
    """
    try:
        gid = lookup_group(group) if group else None
        if user:
            uid, pgid, pname = lookup_user(user)
            os.initgroups(pname, gid if gid is not None else pgid)
            target_gid = gid if gid is not None else pgid
            os.setresgid(target_gid, target_gid, target_gid)
            os.setresuid(uid, uid, uid)
        elif gid is not None:
            os.setresgid(gid, gid, gid)
    except OSError as e:
        raise PrivilegeError(f"{e.strerror}") from None
