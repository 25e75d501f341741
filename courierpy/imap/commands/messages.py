"""APPEND, FETCH, STORE, SEARCH, COPY and their UID forms.

FETCH and SEARCH render through engineer B's ``courierpy.imap.fetch`` and
``courierpy.imap.search`` (with the per-folder ``courierpy.maildir.cache``);
flag lists through ``courierpy.imap.flags``.

APPEND streams the message literal into a file in the target folder's
``tmp/`` (CRLF turned into LF, as Courier stores messages), then delivers it
with ``store.deliver(uniq=n)``.  APPENDUID and COPYUID come from looking
the delivered file's own basename up in the uiddb after delivery, so they
name the right message even while other sessions append to the same folder
(Courier's can name another message then; design.md section 5).
"""

from __future__ import annotations

import os
from pathlib import Path

from courierpy.imap import texts
from courierpy.imap.errors import ImapError, Refused, TryCreate
from courierpy.imap.grammar import Command, NeedContinuation
from courierpy.imap.mailbox import Entry, flag_list
from courierpy.imap.responses import Atom, RespCode, ResponseCode, Tagged, UntaggedStatus
from courierpy.imap.seqset import STAR
from courierpy.maildir import keywords as kwmod
from courierpy.maildir import names, quota, uiddb
from courierpy.maildir.store import Maildir, MessageGone

_LETTER = {"\\DRAFT": "D", "\\FLAGGED": "F", "\\ANSWERED": "R", "\\SEEN": "S", "\\DELETED": "T"}


class OverQuotaAlert(Refused):
    code = RespCode.ALERT
    default_text = texts.OVER_QUOTA


def split_flags(flags, use_keywords: bool) -> tuple[str, list[str]]:
    """(maildir letters, keywords) of an IMAP flag list (``\\Recent`` ignored)."""
    letters = set()
    kws: list[str] = []
    for f in flags:
        up = f.upper()
        if up in _LETTER:
            letters.add(_LETTER[up])
        elif f.startswith("\\"):
            continue
        elif use_keywords and f.lower() not in (k.lower() for k in kws):
            kws.append(f)
    return "".join(sorted(letters)), kws


def uid_set(uids: list[int]) -> str:
    """``[1, 2, 3, 5]`` → ``1:3,5``."""
    out: list[str] = []
    i = 0
    while i < len(uids):
        j = i
        while j + 1 < len(uids) and uids[j + 1] == uids[j] + 1:
            j += 1
        out.append(str(uids[i]) if i == j else f"{uids[i]}:{uids[j]}")
        i = j + 1
    return ",".join(out)


# -- APPEND -------------------------------------------------------------------------


class AppendUpload:
    """The message of an APPEND, streamed into ``<folder>/tmp/`` with LF line ends."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "tmp" / names.tmp_name("append")
        self.file = open(self.path, "xb")  # noqa: SIM115 - closed in finish/abort
        self.cr = False
        self.last = b"\n"

    def write(self, data: bytes) -> None:
        if data:
            self.last = data[-1:]
        if self.cr:
            data = b"\r" + data
            self.cr = False
        if data.endswith(b"\r"):
            self.cr = True
            data = data[:-1]
        self.file.write(data.replace(b"\r\n", b"\n"))

    def finish(self) -> Path:
        if self.cr:
            self.file.write(b"\r")
        if self.last != b"\n":
            self.file.write(b"\n")  # Courier ends a stored message with a line end
        self.file.close()
        return self.path

    def abort(self) -> None:
        try:
            self.file.close()
        finally:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


def begin_append(session, ev: NeedContinuation) -> AppendUpload:
    """Check APPEND's target before the message is read; open the upload file."""
    from courierpy.imap.commands.mailboxes import my_rights, resolve

    if session.upload is not None:
        session.upload.abort()
        session.upload = None
    if not session.settings.keywords and any(not f.startswith("\\") for f in ev.append.flags):
        raise Refused()  # keywords are off (IMAP_KEYWORDS): refused before the message
    try:
        name, path = resolve(session, ev.append.mailbox)
    except Refused:
        raise TryCreate(texts.APPEND_TRYCREATE) from None
    if "i" not in my_rights(session, name):
        raise Refused(texts.NO_SUCH_MAILBOX)
    return AppendUpload(path)


def append(session, cmd: Command) -> None:
    """RFC 3501 6.3.11, RFC 4315 (APPENDUID) — https://www.rfc-editor.org/rfc/rfc3501#section-6.3.11"""
    upload, session.upload = session.upload, None
    if upload is None:
        raise Refused()
    tmp = upload.finish()
    try:
        letters, kws = split_flags(cmd.args.flags, session.settings.keywords)
        mtime = cmd.args.date.timestamp() if cmd.args.date is not None else None
        store = Maildir(upload.folder, env_quota=session.settings.extra.get("MAILDIRQUOTA"))
        session.uniq_next = getattr(session, "uniq_next", 0)
        with open(tmp, "rb") as f:
            try:
                path = store.deliver(f, flags=letters, mtime=mtime, uniq=session.uniq_next)
            except quota.QuotaExceeded:
                raise OverQuotaAlert() from None
        session.uniq_next += 1
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    base = names.basename(path.name)
    if kws:
        kwmod.set_keywords(upload.folder, base, kws)
    if is_outbox(session, upload.folder):
        send_outbox(session, [path])
    uidvalidity, uids = register(upload.folder, [base])
    session.send(Tagged(cmd.tag, "OK", texts.APPEND_OK,
                        ResponseCode(RespCode.APPENDUID, (uidvalidity, uids[base]))))


def is_outbox(session, folder: Path) -> bool:
    """OUTBOX (e.g. ``.Outbox``): messages stored there are also mailed."""
    box = session.settings.outbox
    return bool(box) and folder == Path(session.account.maildir) / box


def send_outbox(session, paths: list[Path]) -> None:
    """Mail stored messages as Courier does: ``$SENDMAIL -oi -t -f <user>``, with
    ``$HEADERFROM: <user>`` (default X-IMAP-Sender) put in front."""
    import subprocess

    extra = session.settings.extra
    sendmail = extra.get("SENDMAIL") or "/usr/sbin/sendmail"
    header = extra.get("HEADERFROM") or "X-IMAP-Sender"
    user = session.account.name
    for path in paths:
        with open(path, "rb") as f:
            data = f"{header}: {user}\n".encode() + f.read()
        try:
            r = subprocess.run([sendmail, "-oi", "-t", "-f", user], input=data,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300,
                               check=False)
        except OSError:
            raise Refused("Unable to send message.") from None
        if r.returncode != 0:
            raise Refused("Unable to send message.")


def register(folder: Path, bases: list[str]) -> tuple[int, dict[str, int]]:
    """Give the messages just stored (*bases*, in order) the next UIDs, under the lock.

    As Courier's APPEND and COPY: messages waiting in ``new/`` are moved to
    ``cur/`` on the way, \\Recent for nobody, and get their UIDs at the next
    scan, after the stored ones.  The UIDs are looked up by the stored files'
    own names, so they are right whatever other sessions do meanwhile.
    """
    with uiddb.folder_lock(folder):
        try:
            waiting = os.listdir(folder / "new")
        except FileNotFoundError:
            waiting = []
        for name in waiting:
            if name.startswith("."):
                continue
            target = name if ":" in name else name + names.INFO_PREFIX
            try:
                os.rename(folder / "new" / name, folder / "cur" / target)
            except FileNotFoundError:
                pass
        db = uiddb.read(folder)
        if db is None:
            db = uiddb.new_db()
        for base in bases:
            if base not in db.uids:
                db.uids[base] = db.nextuid
                db.nextuid += 1
        uiddb.write(folder, db)
        return db.uidvalidity, {b: db.uids[b] for b in bases}


# -- message selection ---------------------------------------------------------------


def targets(session, seqset, uid: bool, *, report_invalid: bool = True) -> list[int]:
    """Indexes (0-based) of the messages a sequence set names."""
    mbox = session.selected
    n = len(mbox.entries)
    if uid:
        uids = [e.uid for e in mbox.entries]
        wanted = set(seqset.resolve_uids(uids))
        return [i for i, e in enumerate(mbox.entries) if e.uid in wanted]
    session.invalid_number = None
    if report_invalid:
        for r in seqset.ranges:
            if STAR in r:
                continue  # "1:*" names what there is, even nothing (as Courier)
            bad = next((x for x in r if x > n), None)
            if bad is not None:
                session.invalid_number = bad
                break
    return [s - 1 for s in seqset.resolve_seq(n)]


def report_invalid(session) -> None:
    """``* NO Invalid message sequence number: n`` after the messages that exist (as Courier)."""
    bad = getattr(session, "invalid_number", None)
    if bad is not None:
        session.send(UntaggedStatus("NO", texts.INVALID_SEQUENCE_NUMBER.format(n=bad)))
        session.invalid_number = None


# -- STORE ----------------------------------------------------------------------------


def store(session, cmd: Command) -> None:
    """RFC 3501 6.4.6 — https://www.rfc-editor.org/rfc/rfc3501#section-6.4.6"""
    mbox = session.selected
    a = cmd.args
    if not session.settings.keywords and any(
            not f.startswith("\\") for f in a.flags):
        raise Refused()  # IMAP_KEYWORDS=0: keywords are an error, as Courier answers
    idx = targets(session, a.seqset, a.uid)
    letters, kws = split_flags(a.flags, session.settings.keywords)
    # Courier stores flags even in an EXAMINEd mailbox (only EXPUNGE and the
    # implicit \\Seen of FETCH are refused there); clients may rely on it.
    allowed = True
    rights = mbox.rights
    changed: list[int] = []
    applied: dict[str, str] = {}  # current letters → new ones, for this command
    for i in idx:
        e = mbox.entries[i]
        if not allowed:
            changed.append(i)
            continue
        new_letters = applied.get(e.letters)
        if new_letters is None:
            new_letters = applied[e.letters] = _apply(e.letters, letters, a.mode, rights)
        new_kws = e.keywords
        if "w" in rights:
            if a.mode == "":
                new_kws = frozenset(kws)
            elif a.mode == "+":
                new_kws = frozenset(e.keywords) | {k for k in kws if k.lower() not in
                                                  {x.lower() for x in e.keywords}}
            else:
                low = {k.lower() for k in kws}
                new_kws = frozenset(k for k in e.keywords if k.lower() not in low)
        try:
            if new_letters != e.letters:
                fname = mbox.store.set_flags(e.basename, new_letters)
            else:
                fname = e.filename
            if new_kws != e.keywords:
                if a.mode == "":
                    written = kwmod.set_keywords(mbox.path, e.basename, new_kws)
                elif a.mode == "+":
                    written = kwmod.update_keywords(mbox.path, e.basename, add=kws)
                else:
                    written = kwmod.update_keywords(mbox.path, e.basename, remove=kws)
                new_kws = frozenset(written)
        except MessageGone:
            continue
        mbox.update_entry(i, letters=new_letters, keywords=new_kws, filename=fname)
        changed.append(i)
    mbox.keywords_grown(session)
    if not a.silent:  # one buffer; each distinct flag list rendered once
        memo: dict[tuple[str, frozenset[str], bool], bytes] = {}
        out: list[bytes] = []
        for i in changed:
            e = mbox.entries[i]
            key = (e.letters, e.keywords, e.recent)
            fl = memo.get(key)
            if fl is None:
                fl = memo[key] = " ".join(flag_list(e)).encode("utf-8")
            if a.uid:
                out.append(b"* %d FETCH (UID %d FLAGS (%s))\r\n" % (i + 1, e.uid, fl))
            else:
                out.append(b"* %d FETCH (FLAGS (%s))\r\n" % (i + 1, fl))
        if out:
            session.send(b"".join(out))
    mbox.keywords_settled(session)
    report_invalid(session)
    session.ok(cmd.tag, texts.STORE_OK)


def _apply(current: str, letters: str, mode: str, rights: str) -> str:
    """New maildir letters; letters the rights do not allow keep their value."""
    may = {"S": "s", "T": "t", "D": "w", "F": "w", "R": "w"}
    cur = set(current)
    want = set(letters)
    if mode == "":
        new = want
    elif mode == "+":
        new = cur | want
    else:
        new = cur - want
    out = set()
    for letter in "DFRST":
        if may[letter] in rights:
            if letter in new:
                out.add(letter)
        elif letter in cur:
            out.add(letter)
    out |= {c for c in cur if c not in "DFRST"}
    return "".join(sorted(out))


# -- FETCH ----------------------------------------------------------------------------


def _view(mbox, i: int, e: Entry, *, dates: bool = True):
    """What FETCH and SEARCH know of message *i*; *dates* False skips the stat."""
    from courierpy.imap.fetch import MessageView

    return MessageView(seq=i + 1, uid=e.uid, path=mbox._cur_prefix + e.filename,
                       basename=e.basename,
                       flags=flag_list(e),
                       internaldate=mbox.internaldate(e) if dates else 0.0,
                       size=names.size_of(e.filename))


def _views(mbox, *, dates: bool, sizes: bool) -> list:
    """:func:`_view` of every message, for SEARCH: flag lists rendered once per
    distinct flag set; no stat unless *dates*, no ``,S=`` parsing unless *sizes*
    (size None then: only a SIZE key reads it)."""
    from courierpy.imap.fetch import MessageView

    prefix = mbox._cur_prefix
    memo: dict[tuple[str, frozenset[str], bool], tuple[str, ...]] = {}
    out = []
    for i, e in enumerate(mbox.entries):
        key = (e.letters, e.keywords, e.recent)
        fl = memo.get(key)
        if fl is None:
            fl = memo[key] = flag_list(e)
        out.append(MessageView(i + 1, e.uid, prefix + e.filename, e.basename, fl,
                               mbox.internaldate(e) if dates else 0.0,
                               names.size_of(e.filename) if sizes else None))
    return out


def _cache(session, mbox):
    cache = getattr(mbox, "cache", None)
    if cache is None:
        from courierpy.maildir.cache import MetadataCache

        cache = mbox.cache = MetadataCache(mbox.path)
    return cache


def fetch(session, cmd: Command) -> None:
    """RFC 3501 6.4.5 — https://www.rfc-editor.org/rfc/rfc3501#section-6.4.5"""
    from courierpy.imap.fetch import render_fetch
    from courierpy.imap.fetchatts import FetchAtt

    mbox = session.selected
    a = cmd.args
    idx = targets(session, a.seqset, a.uid)
    atts = tuple(a.atts)
    names_asked = {x.name for x in atts if x.section is None}
    if a.uid and "UID" not in names_asked:
        atts = (FetchAtt("UID"), *atts)
    seen = not mbox.readonly and "s" in mbox.rights and any(x.sets_seen for x in atts)
    dates = "INTERNALDATE" in names_asked
    cache = _cache(session, mbox)
    if not seen and all(x.section is None and x.name in _SIMPLE_ATTS for x in atts):
        _fetch_simple(session, mbox, idx, tuple(x.name for x in atts), cache)
        idx = []
    for i in idx:
        e = mbox.entries[i]
        add_flags = False
        if seen and "S" not in e.letters:
            try:
                fname = mbox.store.set_flags(e.basename, "".join(sorted(set(e.letters) | {"S"})))
                e = mbox.update_entry(i, letters="".join(sorted(set(e.letters) | {"S"})),
                                      filename=fname)
                add_flags = "FLAGS" not in names_asked
            except MessageGone:
                pass
        try:
            items = render_fetch(_view(mbox, i, e, dates=dates), atts, cache)
        except (FileNotFoundError, MessageGone):
            continue
        if all(type(x) is bytes for x in items):
            session.send(b"* %d FETCH (%s)\r\n" % (i + 1, b" ".join(items)))
        else:
            session.untagged(i + 1, Atom("FETCH"), _Items(items))
        if add_flags:  # Courier reports the implicit \Seen in a FETCH of its own
            session.untagged(i + 1, Atom("FETCH"), (Atom("FLAGS"),
                                                     tuple(Atom(f) for f in flag_list(e))))
    try:
        cache.save()
    except Exception:  # noqa: BLE001 - the cache is never the only copy
        pass
    report_invalid(session)
    session.ok(cmd.tag, texts.FETCH_OK)


#: FETCH items that need no message file: the scan, the session and the cache
_META_ATTS = frozenset({"RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE", "BODY"})
_SIMPLE_ATTS = frozenset({"UID", "FLAGS", "INTERNALDATE"}) | _META_ATTS


def _fetch_simple(session, mbox, idx: list[int], atts: tuple[str, ...], cache) -> None:
    """FETCH of items needing no message file, as render_fetch renders them, in
    one loop and one buffer: entries checked this session come straight from
    the cache (no stat, no MessageView), flag lists are rendered once per
    distinct flag set."""
    from courierpy.imap.fetch import internaldate

    need_meta = not _META_ATTS.isdisjoint(atts)
    entries = mbox.entries
    known = cache.known
    date_wire = mbox.date_wire
    dates = mbox._dates
    prefix = mbox._cur_prefix
    flag_memo: dict[tuple[str, frozenset[str], bool], bytes] = {}
    out: list[bytes] = []
    for i in idx:
        e = entries[i]
        meta = None
        if need_meta:
            meta = known(e.basename)
            if meta is None:
                try:
                    meta = cache.get(prefix + e.filename, e.basename)  # type: ignore[arg-type]
                except (FileNotFoundError, MessageGone):
                    continue
                if e.uid not in dates and known(e.basename) is meta:
                    # checked against the file just now: that stat gave its mtime
                    sec, nsec = divmod(meta.mtime_ns, 1_000_000_000)
                    dates[e.uid] = sec + nsec * 1e-9  # as os.stat_result.st_mtime
        parts: list[bytes] = []
        for name in atts:
            if name == "UID":
                parts.append(b"UID %d" % e.uid)
            elif name == "FLAGS":
                key = (e.letters, e.keywords, e.recent)
                fl = flag_memo.get(key)
                if fl is None:
                    fl = flag_memo[key] = (b"FLAGS (" + " ".join(flag_list(e)).encode("utf-8")
                                           + b")")
                parts.append(fl)
            elif name == "INTERNALDATE":
                w = date_wire.get(e.uid)
                if w is None:
                    w = date_wire[e.uid] = b"INTERNALDATE " + internaldate(mbox.internaldate(e))
                parts.append(w)
            elif name == "ENVELOPE":
                parts.append(b"ENVELOPE " + meta.envelope)  # type: ignore[union-attr]
            elif name == "BODYSTRUCTURE":
                parts.append(b"BODYSTRUCTURE " + meta.bodystructure)  # type: ignore[union-attr]
            elif name == "RFC822.SIZE":
                parts.append(b"RFC822.SIZE %d" % meta.rfc822_size)  # type: ignore[union-attr]
            else:  # BODY
                parts.append(b"BODY " + meta.body)  # type: ignore[union-attr]
        out.append(b"* %d FETCH (%s)\r\n" % (i + 1, b" ".join(parts)))
    if out:
        session.send(b"".join(out))


class _Items(tuple):
    """FETCH items already rendered by render_fetch (bytes or LiteralStream)."""

    def __new__(cls, items):
        from courierpy.imap.responses import Raw

        return super().__new__(cls, [Raw(x) if isinstance(x, bytes) else x for x in items])


# -- SEARCH ---------------------------------------------------------------------------


def search(session, cmd: Command) -> None:
    """RFC 3501 6.4.4 — https://www.rfc-editor.org/rfc/rfc3501#section-6.4.4"""
    from courierpy.imap.search import search as run_search

    mbox = session.selected
    prog = cmd.args.program
    if session.utf8 and prog.charset is not None:
        raise Refused("CHARSET is not valid in UTF8 mode as per RFC 6855")
    from courierpy.imap.fetchatts import FetchNeeds

    needs = prog.key.needs
    msgs = _views(mbox, dates=bool(needs & FetchNeeds.INTERNALDATE),
                  sizes=bool(needs & FetchNeeds.SIZE))
    cache = _cache(session, mbox)
    max_uid = mbox.entries[-1].uid if mbox.entries else 0
    found = run_search(msgs, prog.key, cache, charset=prog.charset or "UTF-8",
                       max_uid=max_uid, max_seq=len(msgs))
    nums = [m.uid if cmd.args.uid else m.seq for m in found]
    session.send(b"* SEARCH" + b"".join(b" %d" % n for n in nums) + b"\r\n")
    try:
        cache.save()
    except Exception:  # noqa: BLE001
        pass
    session.ok(cmd.tag, texts.SEARCH_OK)


# -- COPY -----------------------------------------------------------------------------


def copy(session, cmd: Command) -> None:
    """RFC 3501 6.4.7, RFC 4315 (COPYUID) — https://www.rfc-editor.org/rfc/rfc3501#section-6.4.7"""
    from courierpy.imap.commands.mailboxes import my_rights, resolve

    mbox = session.selected
    a = cmd.args
    try:
        name, path = resolve(session, a.mailbox)
    except Refused:
        raise TryCreate(texts.COPY_TRYCREATE) from None
    if "i" not in my_rights(session, name):
        raise Refused(texts.NO_SUCH_MAILBOX)
    idx = targets(session, a.seqset, a.uid)
    outbox = is_outbox(session, path)
    if outbox and len(idx) > 1 and not session.settings.extra.get("OUTBOX_MULTIPLE_SEND"):
        raise Refused("Only one message may be sent at a time.")
    target = Maildir(path, env_quota=session.settings.extra.get("MAILDIRQUOTA"))
    session.uniq_next = getattr(session, "uniq_next", 0)
    done: list[tuple[int, str]] = []
    for i in idx:
        e = mbox.entries[i]
        try:
            src = mbox.file_path(e)
            if not src.exists():
                src = mbox.path / "cur" / mbox.store._current_name(e.basename, refresh=True)
            with open(src, "rb") as f:
                mtime = os.fstat(f.fileno()).st_mtime
                try:
                    newpath = target.deliver(f, flags=e.letters, mtime=mtime,
                                             uniq=session.uniq_next)
                except quota.QuotaExceeded:
                    raise OverQuotaAlert() from None
        except (FileNotFoundError, MessageGone):
            continue
        session.uniq_next += 1
        base = names.basename(newpath.name)
        if outbox:
            send_outbox(session, [newpath])
        if e.keywords:
            kwmod.set_keywords(path, base, e.keywords)
        done.append((e.uid, base))
    report_invalid(session)
    if not done:
        session.ok(cmd.tag, texts.COPY_OK)
        return
    uidvalidity, by_base = register(path, [b for _, b in done])
    pairs = sorted((u, by_base[b]) for u, b in done)
    src_set = uid_set([p[0] for p in pairs])
    dst_set = uid_set([p[1] for p in pairs])
    session.send(Tagged(cmd.tag, "OK", texts.COPY_OK, ResponseCode(
        RespCode.COPYUID, (uidvalidity, Atom(src_set), Atom(dst_set)))))


HANDLERS = {
    "APPEND": append,
    "STORE": store,
    "UID STORE": store,
    "FETCH": fetch,
    "UID FETCH": fetch,
    "SEARCH": search,
    "UID SEARCH": search,
    "COPY": copy,
    "UID COPY": copy,
}


def _unused(e: ImapError) -> None:  # keep the import used for type readers
    del e
