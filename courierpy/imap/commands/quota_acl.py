"""QUOTA (RFC 2087) from maildirsize and ACL (RFC 4314/2086) through maildir/acl.py."""

from __future__ import annotations

from courierpy.imap import texts
from courierpy.imap.errors import Refused
from courierpy.imap.grammar import Command
from courierpy.imap.responses import Atom, Raw, quoted
from courierpy.maildir import acl, quota

_SPECIAL_IDS = ("anyone", "anonymous", "authuser", "owner", "administrators")


def _q(text: str) -> Raw:
    return Raw(quoted(text.encode("utf-8")))


def _quota_items(session) -> tuple[object, ...] | None:
    usage = quota.read_usage(session.account.maildir,
                             env_quota=session.settings.extra.get("MAILDIRQUOTA"))
    if usage.spec is None:
        return None
    items: list[object] = []
    if usage.spec.max_bytes is not None:
        items += [Atom("STORAGE"), max(0, (usage.bytes + 1023) // 1024),
                  (usage.spec.max_bytes + 1023) // 1024]
    if usage.spec.max_count is not None:
        items += [Atom("MESSAGE"), max(0, usage.count), usage.spec.max_count]
    return tuple(items)


def _send_quota(session, root: str) -> None:
    items = _quota_items(session) if root == "ROOT" else None
    if items:
        session.untagged(Atom("QUOTA"), _q(root), items)
    else:
        session.untagged(Atom("QUOTA"), _q(root))


def getquotaroot(session, cmd: Command) -> None:
    """RFC 2087 4.3 — https://www.rfc-editor.org/rfc/rfc2087#section-4.3"""
    from courierpy.imap.commands.mailboxes import wire_name

    name = cmd.args.mailbox  # any name has the one quota root, existing or not (as Courier)
    if name != "INBOX" and not name.startswith("INBOX."):
        raise Refused(texts.INVALID_MAILBOX_NAME)
    session.untagged(Atom("QUOTAROOT"), wire_name(session, name), _q("ROOT"))
    _send_quota(session, "ROOT")
    session.ok(cmd.tag, texts.GETQUOTAROOT_OK)


def getquota(session, cmd: Command) -> None:
    """RFC 2087 4.2 — https://www.rfc-editor.org/rfc/rfc2087#section-4.2"""
    _send_quota(session, cmd.args.root)
    session.ok(cmd.tag, texts.GETQUOTA_OK)


def setquota(session, cmd: Command) -> None:
    """RFC 2087 4.1 — quotas are the administrator's (maildirmake -q): refused, as Courier."""
    raise Refused(texts.SETQUOTA_DENIED)


def _rights(session, name: str) -> str:
    from courierpy.imap.commands.mailboxes import my_rights

    return my_rights(session, name)


def myrights(session, cmd: Command) -> None:
    """RFC 4314 3.5 — https://www.rfc-editor.org/rfc/rfc4314#section-3.5"""
    from courierpy.imap.commands.mailboxes import resolve, wire_name

    name, _ = resolve(session, cmd.args.mailbox)
    session.untagged(Atom("MYRIGHTS"), wire_name(session, name),
                     _q(acl.to_imap_rights(_rights(session, name))))
    session.ok(cmd.tag, texts.MYRIGHTS_OK)


def getacl(session, cmd: Command) -> None:
    """RFC 4314 3.3 — https://www.rfc-editor.org/rfc/rfc4314#section-3.3"""
    from courierpy.imap.commands.mailboxes import access_denied, resolve, wire_name

    name, _ = resolve(session, cmd.args.mailbox)
    if "a" not in _rights(session, name):
        raise access_denied("GETACL", name, "a")
    items: list[object] = [Atom("ACL"), wire_name(session, name)]
    from courierpy.imap.commands.mailboxes import _location

    maildir, folder, _ids = _location(session, name)
    for e in acl.read_acl(maildir, folder):
        items += [_q(acl.to_imap_identifier(e.identifier)), _q(acl.to_imap_rights(e.rights))]
    session.untagged(*items)
    session.ok(cmd.tag, texts.GETACL_OK)


def listrights(session, cmd: Command) -> None:
    """RFC 4314 3.4 — https://www.rfc-editor.org/rfc/rfc4314#section-3.4"""
    from courierpy.imap.commands.mailboxes import resolve, wire_name

    name, _ = resolve(session, cmd.args.mailbox)
    session.untagged(Atom("LISTRIGHTS"), wire_name(session, name), _q(cmd.args.identifier),
                     Raw(b'""'), *(Atom(c) for c in "acdilprsw"))
    session.ok(cmd.tag, texts.LISTRIGHTS_OK)


def _disk_identifier(ident: str) -> str:
    if ident.startswith("-") or ident.startswith("user=") or ident.startswith("-user="):
        raise Refused(texts.INVALID_ACL_IDENTIFIER)
    if ident == "owner":
        raise Refused(texts.CANNOT_MODIFY_ACL)
    if ident in _SPECIAL_IDS or ident.startswith("group="):
        return ident
    return "user=" + ident


def setacl(session, cmd: Command) -> None:
    """RFC 4314 3.1 — https://www.rfc-editor.org/rfc/rfc4314#section-3.1"""
    from courierpy.imap.commands.mailboxes import resolve

    name, _ = resolve(session, cmd.args.mailbox)
    if "a" not in _rights(session, name):
        raise Refused(texts.CANNOT_MODIFY_ACL)
    ident = _disk_identifier(cmd.args.identifier)
    rights = cmd.args.rights
    mode = rights[:1] if rights[:1] in "+-" and rights else ""
    disk = acl.from_imap_rights(rights[len(mode):])
    from courierpy.imap.commands.mailboxes import _location

    maildir, folder, _ids = _location(session, name)
    try:
        acl.set_acl(maildir, folder, ident, mode + disk)
    except acl.AclError:
        raise Refused(texts.CANNOT_MODIFY_ACL) from None
    session.ok(cmd.tag, texts.ACL_UPDATED)


def deleteacl(session, cmd: Command) -> None:
    """RFC 4314 3.2 — https://www.rfc-editor.org/rfc/rfc4314#section-3.2"""
    from courierpy.imap.commands.mailboxes import resolve

    name, _ = resolve(session, cmd.args.mailbox)
    if "a" not in _rights(session, name):
        raise Refused(texts.CANNOT_MODIFY_ACL)
    ident = _disk_identifier(cmd.args.identifier)
    from courierpy.imap.commands.mailboxes import _location

    maildir, folder, _ids = _location(session, name)
    try:
        acl.delete_acl(maildir, folder, ident)
    except acl.AclError:
        raise Refused(texts.CANNOT_MODIFY_ACL) from None
    session.ok(cmd.tag, texts.ACL_UPDATED)


HANDLERS = {
    "GETQUOTAROOT": getquotaroot,
    "GETQUOTA": getquota,
    "SETQUOTA": setquota,
    "MYRIGHTS": myrights,
    "GETACL": getacl,
    "LISTRIGHTS": listrights,
    "SETACL": setacl,
    "DELETEACL": deleteacl,
}
