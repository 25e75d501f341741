"""SELECT, EXAMINE, CHECK, CLOSE, EXPUNGE, IDLE, and the trash rules."""

from __future__ import annotations

import os
import time
from pathlib import Path

from courierpy.imap import texts
from courierpy.imap.errors import Refused
from courierpy.imap.grammar import Command
from courierpy.imap.mailbox import SelectedMailbox
from courierpy.imap.responses import Continuation, RespCode, ResponseCode, Tagged
from courierpy.imap.state import State
from courierpy.maildir import folders


def _select(session, cmd: Command, readonly: bool) -> None:
    from courierpy.imap.commands.mailboxes import my_rights, resolve

    # a failed SELECT leaves no mailbox selected (RFC 3501 6.3.1)
    current, session.selected = session.selected, None
    session.reader.state = State.AUTHENTICATED
    name, path = resolve(session, cmd.args.mailbox)
    rights = my_rights(session, name)
    if "r" not in rights:
        raise Refused(texts.NO_SUCH_MAILBOX)
    if not any(c in rights for c in "stw") and not readonly:
        readonly = True
    mbox = SelectedMailbox(name, path, readonly=readonly, use_keywords=session.settings.keywords,
                           rights=rights,
                           env_quota=session.settings.extra.get("MAILDIRQUOTA"),
                           recent=session.recent.setdefault(str(path), set()))
    # the view of this folder from the last time it was selected, if that was this one
    # or the one before: used when the folder is unchanged since
    previous = next((m for m in (current, session.earlier)
                     if m is not None and m.path == path), None)
    mbox.open(session, cmd.name, previous)
    if current is not None and current.path != path:
        current.cache = None  # what it read of its cache file is not worth keeping aside
        session.earlier = current
    session.selected = mbox
    session.reader.state = State.SELECTED
    code = RespCode.READ_ONLY if readonly else RespCode.READ_WRITE
    session.send(Tagged(cmd.tag, "OK", texts.SELECT_OK, ResponseCode(code)))


def select(session, cmd: Command) -> None:
    """RFC 3501 6.3.1 — https://www.rfc-editor.org/rfc/rfc3501#section-6.3.1"""
    _select(session, cmd, False)


def examine(session, cmd: Command) -> None:
    """RFC 3501 6.3.2 — https://www.rfc-editor.org/rfc/rfc3501#section-6.3.2"""
    _select(session, cmd, True)


def check(session, cmd: Command) -> None:
    """RFC 3501 6.4.1 — https://www.rfc-editor.org/rfc/rfc3501#section-6.4.1"""
    session.selected.report(session, expunge=True)
    session.ok(cmd.tag, texts.CHECK_OK)


def _remove_deleted(session, uids: set[int] | None = None) -> None:
    mbox = session.selected
    if mbox.command == "EXAMINE" or "e" not in mbox.rights:
        return
    doomed = [e for e in mbox.entries if "T" in e.letters and (uids is None or e.uid in uids)]
    if not doomed:
        return
    trash = _trash_path(session)
    if trash is not None and session.settings.move_expunge_to_trash and mbox.path != trash:
        _move_to_trash(session, mbox, trash, doomed)
    else:
        mbox.store.expunge([e.basename for e in doomed])


def _trash_path(session) -> Path | None:
    root = session.account.maildir
    p = Path(root) / ("." + session.settings.trash)
    return p if p.is_dir() else None


def _move_to_trash(session, mbox, trash: Path, doomed) -> None:
    from courierpy.maildir.store import Maildir

    target = Maildir(trash)
    for e in doomed:
        src = mbox.file_path(e)
        try:
            with open(src, "rb") as f:
                mtime = os.fstat(f.fileno()).st_mtime
                target.deliver(f, flags=e.letters.replace("T", ""), mtime=mtime, subdir="new",
                               enforce_quota=False)
        except FileNotFoundError:
            continue
        mbox.store.expunge([e.basename])


def close(session, cmd: Command) -> None:
    """RFC 3501 6.4.2 — https://www.rfc-editor.org/rfc/rfc3501#section-6.4.2"""
    _remove_deleted(session)
    session.selected = None
    session.reader.state = State.AUTHENTICATED
    session.ok(cmd.tag, texts.CLOSE_OK)


EXPUNGE_READ_ONLY = "Cannot expunge read-only mailbox."


def expunge(session, cmd: Command) -> None:
    """RFC 3501 6.4.3 — https://www.rfc-editor.org/rfc/rfc3501#section-6.4.3"""
    if session.selected.readonly and session.selected.command == "EXAMINE":
        raise Refused(EXPUNGE_READ_ONLY)
    if "e" not in session.selected.rights:
        from courierpy.imap.commands.mailboxes import access_denied

        raise access_denied("EXPUNGE", "current mailbox", "e")
    _remove_deleted(session)
    session.selected.report(session, expunge=True)
    session.ok(cmd.tag, texts.EXPUNGE_OK)


def uid_expunge(session, cmd: Command) -> None:
    """RFC 4315 2.1 — https://www.rfc-editor.org/rfc/rfc4315#section-2.1"""
    mbox = session.selected
    if mbox.readonly:
        raise Refused(EXPUNGE_READ_ONLY)
    top = mbox.entries[-1].uid if mbox.entries else 0
    uids = {e.uid for e in mbox.entries if cmd.args.seqset.contains(e.uid, top)}
    _remove_deleted(session, uids)
    mbox.report(session, expunge=True)
    session.ok(cmd.tag, texts.EXPUNGE_OK)


def idle(session, cmd: Command) -> None:
    """RFC 2177 — https://www.rfc-editor.org/rfc/rfc2177 (polling every IMAP_IDLE_TIMEOUT s)"""
    tag = cmd.tag

    def done(line: bytes) -> None:
        session.idling = False
        if line.strip().upper() != b"DONE":
            raise Refused()
        if session.selected is not None:
            session.selected.report(session, expunge=True)
        session.ok(tag, texts.IDLE_OK)

    session.send(Continuation(texts.IDLE_CONTINUE))
    session.idling = True
    session.expect_line(tag, done)


def empty_trash(settings, maildir) -> None:
    """IMAP_EMPTYTRASH: delete messages older than N days (ctime) in the named folders."""
    spec = (settings.emptytrash or "").strip()
    if not spec:
        return
    now = time.time()
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, days = item.rpartition(":")
        if not name:
            name = settings.trash
        try:
            age = int(days) * 86400
        except ValueError:
            continue
        try:
            path = folders.folder_path(maildir, "INBOX." + name)
        except folders.FolderError:
            continue
        from courierpy.maildir.store import Maildir

        store = Maildir(path)
        old = []
        for sub in ("cur", "new"):
            try:
                with os.scandir(path / sub) as it:
                    for de in it:
                        try:
                            if now - de.stat().st_ctime > age:
                                old.append((sub, de.name))
                        except FileNotFoundError:
                            pass
            except FileNotFoundError:
                continue
        for sub, fname in old:
            try:
                os.unlink(path / sub / fname)
            except FileNotFoundError:
                continue
            from courierpy.maildir import names, quota

            quota.add_delta(path, -(names.parse(fname).size or 0), -1)
        del store


HANDLERS = {
    "SELECT": select,
    "EXAMINE": examine,
    "CHECK": check,
    "CLOSE": close,
    "EXPUNGE": expunge,
    "UID EXPUNGE": uid_expunge,
    "IDLE": idle,
}
