"""CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST, LSUB, STATUS, NAMESPACE."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from courierpy.imap import texts
from courierpy.imap.errors import Refused
from courierpy.imap.grammar import Command
from courierpy.imap.responses import Atom, Raw, quoted
from courierpy.maildir import acl, folders, shared, subscriptions
from courierpy.wire import utf7

INBOX = "INBOX"


# -- names ----------------------------------------------------------------------------


def wire_name(session, name: str) -> Raw:
    """A mailbox name as sent: UTF-8 after ENABLE UTF8=ACCEPT, else modified UTF-7."""
    text = name if session.utf8 else utf7.encode(name)
    return Raw(quoted(text.encode("utf-8")))


SHARED = "#shared"


@dataclass(frozen=True)
class SharedFolder:
    """A folder of another account that this user may see (virtual shared index)."""

    name: str  # #shared.<group>...<account>.<folder>
    maildir: Path  # the owner's Maildir
    folder: str  # the folder's name in the owner's Maildir (INBOX or INBOX.x)

    @property
    def path(self) -> Path:
        return self.maildir if self.folder == INBOX else self.maildir / self.folder[5:]


def shared_folders(session) -> dict[str, SharedFolder]:
    """Every ``#shared.`` folder whose ACL gives this user ``l`` (README.sharedfolders)."""
    cached = getattr(session, "_shared_cache", None)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    settings = session.settings
    index_file = settings.extra.get("IMAP_SHAREDINDEXFILE") or str(shared.DEFAULT_INDEX_FILE)
    opts = session.account.options
    if opts.get("disableshared", "0") not in ("", "0"):
        return {}
    munge = settings.extra.get("IMAP_SHAREDMUNGENAMES", "") not in ("", "0")
    index = shared.SharedIndex(shared.index_file_for(opts, index_file), munge=munge)
    me = ["user=" + session.account.name]
    out: dict[str, SharedFolder] = {}
    try:
        accounts = list(index.accounts())
    except OSError:
        accounts = []
    for path, account in accounts:
        md = account.maildir_path
        try:
            entries = sorted(e.name for e in os.scandir(md) if e.name.startswith("."))
        except OSError:
            continue
        for dname in [".", *entries]:
            folder = INBOX if dname == "." else INBOX + dname
            if dname != "." and not (md / dname / "cur").is_dir():
                continue
            try:
                rights = acl.compute_rights(acl.read_acl(md, folder), me)
            except (acl.AclError, OSError):
                continue
            if "l" not in rights:
                continue
            parts = [INBOX] if dname == "." else dname[1:].split(".")
            name = ".".join([SHARED, *path, *(shared.munge_name(p, munge) for p in parts)])
            out[name] = SharedFolder(name, md, folder)
    session._shared_cache = (time.monotonic() + 5.0, out)
    return out


def _shared_groups(session) -> list[str]:
    """``#shared.<group>`` for each group of the top-level shared index."""
    index_file = session.settings.extra.get("IMAP_SHAREDINDEXFILE") or str(
        shared.DEFAULT_INDEX_FILE)
    munge = session.settings.extra.get("IMAP_SHAREDMUNGENAMES", "") not in ("", "0")
    index = shared.SharedIndex(shared.index_file_for(session.account.options, index_file),
                               munge=munge)
    try:
        children = index.children()
    except OSError:
        return []
    return [SHARED + "." + n for n, e in children.items() if isinstance(e, shared.IndexGroup)]


def access_denied(command: str, where: str, right: str) -> Refused:
    """Courier's refusal for missing ACL rights."""
    return Refused(f'Access denied for {command} on {where} (ACL "{right}" required)')


def _location(session, name: str) -> tuple[Path, str, list[str]]:
    """(Maildir, folder name in it, ACL identifiers) for rights checks of *name*."""
    if name.startswith(SHARED + "."):
        sf = shared_folders(session).get(name)
        if sf is None:
            raise Refused(texts.NO_SUCH_MAILBOX)
        return sf.maildir, sf.folder, ["user=" + session.account.name]
    return Path(session.account.maildir), name, ["owner", "user=" + session.account.name]


def resolve(session, name: str) -> tuple[str, Path]:
    """(the IMAP name, the folder's directory) of an existing folder, or NO."""
    if name.startswith(SHARED + "."):
        sf = shared_folders(session).get(name)
        if sf is None or not (sf.path / "cur").is_dir():
            raise Refused(texts.NO_SUCH_MAILBOX)
        return name, sf.path
    if name.upper() == INBOX:
        return INBOX, Path(session.account.maildir)
    if not name.startswith(INBOX + "."):
        raise Refused(texts.NO_SUCH_MAILBOX)
    try:
        path = folders.folder_path(session.account.maildir, name)
    except folders.FolderError:
        raise Refused(texts.NO_SUCH_MAILBOX) from None
    if not (path / "cur").is_dir():
        raise Refused(texts.NO_SUCH_MAILBOX)
    return name, path


def my_rights(session, name: str) -> str:
    """The on-disk ACL rights (``aceilrstwx`` letters) the user holds on *name*."""
    maildir, folder, ids = _location(session, name)
    try:
        entries = acl.read_acl(maildir, folder)
    except (acl.AclError, OSError):
        return acl.ALL_RIGHTS if ids[0] == "owner" else ""
    return acl.compute_rights(entries, ids)


# -- CREATE / DELETE / RENAME -----------------------------------------------------


def create(session, cmd: Command) -> None:
    """RFC 3501 6.3.3 — https://www.rfc-editor.org/rfc/rfc3501#section-6.3.3

    ``CREATE INBOX.x.`` (a hierarchy to come) is answered OK and creates nothing, as
    Courier does: Maildir++ needs no directory for a level without messages.
    """
    name = cmd.args.mailbox
    placeholder = name.endswith(".") and len(name) > 1
    target = name[:-1] if placeholder else name
    if target.upper() == INBOX:
        raise Refused(texts.CANNOT_CREATE)
    if not target.startswith(INBOX + "."):
        raise Refused(texts.INVALID_MAILBOX_NAME)
    maildir = session.account.maildir
    try:
        folders.validate(target[6:])
    except folders.FolderNameError:
        # sic: Courier's text for a bad hierarchy placeholder has no final period
        raise Refused(texts.INVALID_MAILBOX_NAME.rstrip(".") if placeholder
                      else texts.INVALID_MAILBOX_NAME) from None
    if not placeholder:
        try:
            folders.create_folder(maildir, target)
        except folders.FolderExistsError:
            raise Refused(texts.CANNOT_CREATE) from None
        except folders.FolderNameError:
            raise Refused(texts.INVALID_MAILBOX_NAME) from None
        try:
            acl.read_acl(maildir, target)  # saves the inherited ACL, as Courier's CREATE does
        except (acl.AclError, OSError):
            pass
    session.ok(cmd.tag, texts.CREATED.format(name=name))


def delete(session, cmd: Command) -> None:
    """RFC 3501 6.3.4 — https://www.rfc-editor.org/rfc/rfc3501#section-6.3.4"""
    name = cmd.args.mailbox
    if name.upper() == INBOX:
        raise Refused("Cannot delete this folder.")
    if not name.startswith(INBOX + "."):
        raise Refused(texts.NO_SUCH_MAILBOX)
    name, path = resolve(session, name)
    if "x" not in my_rights(session, name):
        raise Refused(texts.NO_SUCH_MAILBOX)
    sel = session.selected
    if sel is not None and sel.path == path:
        raise Refused("Can't DELETE the currently-open folder")
    try:
        folders.delete_folder(session.account.maildir, name)
    except folders.FolderError:
        raise Refused(texts.NO_SUCH_MAILBOX) from None
    session.ok(cmd.tag, texts.DELETED)


def rename(session, cmd: Command) -> None:
    """RFC 3501 6.3.5 — https://www.rfc-editor.org/rfc/rfc3501#section-6.3.5

    Children move with the folder; INBOX cannot be renamed (as Courier).
    """
    old, new = cmd.args.old, cmd.args.new
    if old.upper() == INBOX:
        raise Refused(texts.RENAME_INBOX)
    if not old.startswith(INBOX + ".") or not new.startswith(INBOX + "."):
        raise Refused(texts.INVALID_MAILBOX_NAME)
    maildir = Path(session.account.maildir)
    sel = session.selected
    if sel is not None and sel.name != INBOX and (
            sel.name == old or sel.name.startswith(old + ".")):
        raise Refused(texts.RENAME_OPEN_FOLDER)
    if new == old or new.startswith(old + "."):
        raise Refused("RENAME failed: Invalid argument")
    prefix = "." + old[6:]
    if not any(n == prefix or n.startswith(prefix + ".") for n in os.listdir(maildir)):
        session.ok(cmd.tag, texts.RENAMED)  # nothing by that name: Courier says OK all the same
        return
    try:
        folders.rename_folder(maildir, old, new)
    except folders.NoSuchFolderError:
        pass  # nothing by that name: Courier answers OK all the same
    except folders.FolderExistsError:
        raise Refused("RENAME failed: File exists") from None
    except folders.FolderNameError:
        raise Refused(texts.INVALID_MAILBOX_NAME) from None
    session.ok(cmd.tag, texts.RENAMED)


# -- subscriptions ------------------------------------------------------------------


def subscribe(session, cmd: Command) -> None:
    """RFC 3501 6.3.6 — https://www.rfc-editor.org/rfc/rfc3501#section-6.3.6"""
    subscriptions.subscribe(session.account.maildir, cmd.args.mailbox)
    session.ok(cmd.tag, texts.SUBSCRIBED)


def unsubscribe(session, cmd: Command) -> None:
    """RFC 3501 6.3.7 — https://www.rfc-editor.org/rfc/rfc3501#section-6.3.7"""
    subscriptions.unsubscribe(session.account.maildir, cmd.args.mailbox)
    session.ok(cmd.tag, texts.UNSUBSCRIBED)


# -- LIST / LSUB -------------------------------------------------------------------


def _pattern(text: str) -> re.Pattern[str]:
    if text[:5].upper() == INBOX and (len(text) == 5 or text[5] in ".*%"):
        text = INBOX + text[5:]
    out = []
    for ch in text:
        if ch == "*":
            out.append(".*")
        elif ch == "%":
            out.append(r"[^.]*")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.S)


def _folders_in_dir_order(maildir: Path) -> list[str]:
    out = []
    with os.scandir(maildir) as it:
        for entry in it:
            n = entry.name
            if not n.startswith(".") or n in (".", ".."):
                continue
            try:
                if not entry.is_dir():
                    continue
                folders.validate(n[1:], allow_control=True)
            except (folders.FolderNameError, OSError):
                continue
            out.append(INBOX + n)
    return out


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _list(session, cmd: Command, lsub: bool) -> None:
    ref, pat = cmd.args.reference, cmd.args.pattern
    word = "LSUB" if lsub else "LIST"
    if pat == "":
        if not lsub:
            session.untagged(Atom(word), (Atom("\\Noselect"),), ".", Raw(b'""'))
        session.ok(cmd.tag, texts.LSUB_OK if lsub else texts.LIST_OK)
        return
    if ref and not ref.endswith("."):
        ref += "."  # the reference names a level of the hierarchy (as Courier reads it)
    rx = _pattern(ref + pat)
    maildir = Path(session.account.maildir)
    real = _folders_in_dir_order(maildir)
    real_set = set(real)
    has_children: set[str] = {INBOX} if real else set()
    for f in real:
        has_children.update(_parents(f))
    if lsub:
        subscribed = [s for s in subscriptions.read(maildir) if s == INBOX or s.startswith(
            INBOX + ".")]
        listed = subscribed
        exists = set(subscribed)
        has_children = set()  # LSUB: children among the subscribed names (as Courier)
        for f in subscribed:
            has_children.update(_parents(f))
    elif ref == "" and pat.startswith(SHARED + "."):
        # the shared hierarchy is listed only for patterns inside it (as Courier)
        listed = list(shared_folders(session))
        exists = set(listed)
        real = listed
        has_children = set()
        for f in listed:
            has_children.update(_parents(f))
        for group in _shared_groups(session):  # index groups show even when empty
            if group not in has_children:
                has_children.add(group)
                listed.append(group)
    else:
        listed = [*real, INBOX]
        exists = {*real_set, INBOX}
    seen = set(listed)
    synth: list[str] = []
    for f in listed:
        for p in _parents(f):
            if p not in seen:
                seen.add(p)
                synth.append(p)
    for name in [*listed, *synth]:
        if not rx.fullmatch(name) or name == SHARED:
            continue
        attrs = []
        if name not in exists:
            attrs.append("\\Noselect")
        elif name == INBOX and not lsub:
            attrs.append("\\Marked" if _has_unseen(maildir) else "\\Unmarked")
        kids = name in has_children or (name not in exists)
        attrs.append("\\HasChildren" if kids else "\\HasNoChildren")
        session.untagged(Atom(word), tuple(Atom(a) for a in attrs), ".", wire_name(session, name))
    session.ok(cmd.tag, texts.LSUB_OK if lsub else texts.LIST_OK)


def _has_unseen(maildir: Path) -> bool:
    """Courier marks INBOX when it holds a message without \\Seen (new/ counts as unseen)."""
    from courierpy.maildir import names

    for sub in ("new", "cur"):
        try:
            with os.scandir(maildir / sub) as it:
                for e in it:
                    if e.name.startswith("."):
                        continue
                    if sub == "new" or "S" not in names.flags_of(e.name):
                        return True
        except FileNotFoundError:
            pass
    return False


def list_(session, cmd: Command) -> None:
    """RFC 3501 6.3.8 — https://www.rfc-editor.org/rfc/rfc3501#section-6.3.8"""
    _list(session, cmd, False)


def lsub(session, cmd: Command) -> None:
    """RFC 3501 6.3.9 — https://www.rfc-editor.org/rfc/rfc3501#section-6.3.9"""
    _list(session, cmd, True)


# -- STATUS, NAMESPACE -------------------------------------------------------------


def status(session, cmd: Command) -> None:
    """RFC 3501 6.3.10 — https://www.rfc-editor.org/rfc/rfc3501#section-6.3.10"""
    from courierpy.maildir.store import Maildir

    name, path = resolve(session, cmd.args.mailbox)
    if "r" not in my_rights(session, name):
        raise Refused(texts.NO_SUCH_MAILBOX)
    sel = session.selected
    if sel is not None and sel.path == path:
        # the selected folder is reported as this session sees it (as Courier)
        counts = {"MESSAGES": len(sel.entries),
                  "RECENT": sum(1 for e in sel.entries if e.recent),
                  "UIDNEXT": sel.uidnext, "UIDVALIDITY": sel.uidvalidity,
                  "UNSEEN": sum(1 for e in sel.entries if "S" not in e.letters)}
    else:
        counts = Maildir(path).status()
    items: list[object] = []
    for item in cmd.args.items:
        items.extend((Atom(item), counts[item]))
    session.untagged(Atom("STATUS"), wire_name(session, name), tuple(items))
    session.ok(cmd.tag, texts.STATUS_OK)


def namespace(session, cmd: Command) -> None:
    """RFC 2342 — https://www.rfc-editor.org/rfc/rfc2342"""
    session.send(b'* NAMESPACE (("INBOX." ".")) NIL (("#shared." ".")("shared." "."))\r\n')
    session.ok(cmd.tag, texts.NAMESPACE_OK)


HANDLERS = {
    "CREATE": create,
    "DELETE": delete,
    "RENAME": rename,
    "SUBSCRIBE": subscribe,
    "UNSUBSCRIBE": unsubscribe,
    "LIST": list_,
    "LSUB": lsub,
    "STATUS": status,
    "NAMESPACE": namespace,
}
