"""The selected mailbox: sequence numbers ↔ UIDs, flags, keywords, \\Recent,
and the untagged updates other sessions' changes cause.

The folder is re-read (``store.Maildir.scan`` and ``keywords.read_keywords``)
only at the moments RFC 3501 allows untagged EXPUNGE (NOOP, CHECK, IDLE,
EXPUNGE, SELECT; section 7.4.1): during FETCH, STORE, SEARCH and COPY the
session keeps numbering the messages it last reported, so a sequence number
never changes meaning under the client.

As Courier: ``\\Recent`` belongs to the session whose scan moved the message
from ``new/`` to ``cur/``; ``* FLAGS`` lists the keywords in use (in
``keywords.hash_order``) and is sent again when that set changes.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from courierpy.imap import texts
from courierpy.imap.flags import imap_flags
from courierpy.imap.responses import Atom, RespCode, ResponseCode, UntaggedStatus
from courierpy.maildir import keywords as kwmod
from courierpy.maildir import uiddb
from courierpy.maildir.acl import to_imap_rights
from courierpy.maildir.cache import MetadataCache
from courierpy.maildir.names import flags_of
from courierpy.maildir.store import Maildir

__all__ = ["Entry", "SelectedMailbox", "SYSTEM_FLAG_LETTERS", "flag_list"]

#: maildir info letter → IMAP system flag
SYSTEM_FLAG_LETTERS = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen",
                       "T": "\\Deleted"}
_NO_KEYWORDS: frozenset[str] = frozenset()
#: how old (ns) the times of a folder's files must be for an unchanged stamp to prove an
#: unchanged folder (SelectedMailbox._read)
SETTLED_NS = 2_000_000_000
_FLAGS_TAIL = ("\\Draft", "\\Answered", "\\Flagged", "\\Deleted", "\\Seen")


class _Letters(dict):
    """info part of a file name (``:2,FS``) → its flag letters, computed once."""

    def __missing__(self, info: str) -> str:
        letters = self[info] = flags_of(info)
        return letters


@dataclass(slots=True)
class Entry:
    """One message as this session knows it (treated as immutable: changes
    make a new one, see :meth:`SelectedMailbox.update_entry`)."""

    uid: int
    basename: str
    filename: str
    letters: str
    keywords: frozenset[str]
    recent: bool


def flag_list(entry: Entry) -> tuple[str, ...]:
    """The message's FETCH FLAGS, in Courier's order (courierpy.imap.flags)."""
    return imap_flags(entry.letters, _kw_order(entry.keywords), entry.recent)


def _kw_order(kws: frozenset[str]) -> list[str]:
    return sorted(kws, key=lambda k: k.encode("utf-8"))


class SelectedMailbox:
    """The mailbox of a SELECT or EXAMINE."""

    def __init__(self, name: str, path: Path, *, readonly: bool, use_keywords: bool,
                 rights: str, env_quota: str | None = None,
                 recent: set[str] | None = None) -> None:
        self.name = name
        self.path = path
        self.readonly = readonly
        self.use_keywords = use_keywords
        self.rights = rights
        self.store = Maildir(path, env_quota=env_quota)
        self.entries: list[Entry] = []
        self.uidvalidity = 0
        self.uidnext = 1
        self.flag_words: tuple[str, ...] = ()
        self.command = "SELECT"
        self._cur = path / "cur"
        self._cur_prefix = str(self._cur) + os.sep
        self._dates: dict[int, float] = {}
        #: UID → ``INTERNALDATE "..."`` as FETCH sends it (from _dates, never changes)
        self.date_wire: dict[int, bytes] = {}
        #: messages this process moved from new/: \\Recent for this session (kept
        #: across re-SELECTs by the same process, as Courier does)
        self.recent = recent if recent is not None else set()
        #: basename → inode number, from the last scan's directory listing
        self.inodes: dict[str, int] = {}
        #: the folder's metadata cache (FETCH, SEARCH, SORT), read when first used
        self.cache: MetadataCache | None = MetadataCache(path, inodes=self.inodes)
        #: looked at to tell whether the folder changed (see :meth:`_stamp`)
        self._watched = (self._cur, path / "new", path / uiddb.UIDDB,
                         path / kwmod.KEYWORDS_DIR)
        #: the stamp of the last read when it can vouch for an unchanged folder
        self._unchanged_if: tuple[tuple[int, int, int] | None, ...] | None = None

    # -- reading the folder -------------------------------------------------------

    def _stamp(self) -> tuple[tuple[int, int, int] | None, ...] | None:
        """What a change to the folder changes: inode, mtime and size of cur/, new/, the
        UID list and the keyword directory (None for one that is missing); None when
        cur/ or new/ cannot be looked at."""
        out: list[tuple[int, int, int] | None] = []
        for n, path in enumerate(self._watched):
            try:
                st = os.stat(path)
            except FileNotFoundError:
                if n < 2:
                    return None
                out.append(None)
                continue
            except OSError:
                return None
            out.append((st.st_ino, st.st_mtime_ns, st.st_size))
        return tuple(out)

    def _read(self) -> list[Entry]:
        started = time.time_ns()
        stamp = self._stamp()
        # Unchanged since this read?  Then a report may skip the next one: a change after
        # it would give a later mtime than any recorded here, as long as those lie
        # SETTLED seconds before it (file times come from a coarser clock).
        settled = stamp is not None and all(
            t is None or t[1] < started - SETTLED_NS for t in stamp)
        self._unchanged_if = stamp if settled else None
        # inode numbers serve only to trust entries of a cache file
        lst = self.store.listing(inodes=self.cache is not None and (
            self.cache.loaded_or_exists()))
        self.uidvalidity = lst.uidvalidity
        self.uidnext = lst.uidnext
        self.inodes = lst.inodes
        if self.cache is not None:
            self.cache.inodes = lst.inodes
        kws: dict[str, frozenset[str]] = {}
        if self.use_keywords:
            kws = {b: frozenset(k) for b, k in
                   kwmod.read_keywords(self.path, present=lst.uids.keys()).items()}
        recent = self.recent
        recent |= lst.recent
        names = lst.names
        letters = _Letters()  # info part → flag letters, once per distinct one
        no_kws = _NO_KEYWORDS
        out = [Entry(uid, base, fn, letters[fn[len(base):]], kws.get(base, no_kws),
                     base in recent)
               for base, uid in lst.uids.items() for fn in (names[base],)]
        return out

    def _keywords_in_use(self, entries: list[Entry]) -> tuple[str, ...]:
        words: set[str] = set()
        words.update(*[e.keywords for e in entries if e.keywords])
        return tuple(kwmod.hash_order(words))

    def send_flags(self, session) -> None:
        """``* FLAGS`` and ``* OK [PERMANENTFLAGS]`` as Courier sends them."""
        words = self.flag_words
        session.untagged(Atom("FLAGS"), tuple(Atom(w) for w in (*words, *_FLAGS_TAIL,
                                                                  "\\Recent")))
        if self.command == "EXAMINE":
            session.send(UntaggedStatus("OK", texts.PERMANENTFLAGS_RO,
                                        ResponseCode(RespCode.PERMANENTFLAGS, ((),))))
            return
        perm = list(words)
        if self.use_keywords:
            perm.append("\\*")
        perm.extend(_FLAGS_TAIL)
        session.send(UntaggedStatus("OK", texts.PERMANENTFLAGS_RW, ResponseCode(
            RespCode.PERMANENTFLAGS, (tuple(Atom(w) for w in perm),))))

    def _take_over(self, previous: SelectedMailbox) -> bool:
        """Take the view of *previous* (the same folder, selected before in this session)
        if the folder is unchanged since its last read (see :meth:`_read`)."""
        if (previous.path != self.path or previous.use_keywords != self.use_keywords
                or previous._unchanged_if is None or self._stamp() != previous._unchanged_if):
            return False
        self.entries = list(previous.entries)
        self.uidvalidity, self.uidnext = previous.uidvalidity, previous.uidnext
        self.inodes, self._dates, self.date_wire = previous.inodes, previous._dates, (
            previous.date_wire)
        if previous.cache is not None:  # (dropped from a view kept aside: see _select)
            self.cache = previous.cache
        elif self.cache is not None:
            self.cache.inodes = self.inodes
        self.store = previous.store  # (it knows the files' current names)
        self._unchanged_if = previous._unchanged_if
        return True

    def open(self, session, command: str, previous: SelectedMailbox | None = None) -> None:
        """Read the folder (or take over the view of *previous*, see :meth:`_take_over`)
        and send SELECT/EXAMINE's untagged responses."""
        self.command = command
        if previous is None or not self._take_over(previous):
            self.entries = self._read()
        self.flag_words = self._keywords_in_use(self.entries)
        self.send_flags(session)
        session.untagged(len(self.entries), Atom("EXISTS"))
        session.untagged(sum(1 for e in self.entries if e.recent), Atom("RECENT"))
        session.send(UntaggedStatus("OK", texts.UIDVALIDITY_OK,
                                    ResponseCode(RespCode.UIDVALIDITY, (self.uidvalidity,))))
        # sent whatever IMAP_ACL says (it only changes CAPABILITY), as Courier does
        session.send(UntaggedStatus("OK", texts.MYRIGHTS_ACL,
                                    ResponseCode(RespCode.MYRIGHTS,
                                                 (to_imap_rights(self.rights),))))

    # -- updates -------------------------------------------------------------------

    def report(self, session, *, expunge: bool = True) -> None:
        """Re-read the folder and send what changed since the last report."""
        if self._unchanged_if is not None and self._stamp() == self._unchanged_if:
            return  # nothing in the folder changed since the last read
        if not self._cur.is_dir():
            return  # deleted under us: keep the last view, as Courier does
        try:
            fresh = self._read()
        except FileNotFoundError:
            return
        by_uid = {e.uid: e for e in fresh}
        old = self.entries
        kept: list[Entry] = []
        expunged: list[int] = []
        for seq, e in enumerate(old, 1):
            if e.uid in by_uid or not expunge:
                kept.append(e)
            else:
                expunged.append(seq)
        for n, seq in enumerate(expunged):
            session.untagged(seq - n, Atom("EXPUNGE"))
        known = {e.uid for e in kept}
        added = [e for e in fresh if e.uid not in known]
        changed: list[tuple[int, Entry]] = []
        merged: list[Entry] = []
        for seq, e in enumerate(kept, 1):
            new = by_uid.get(e.uid)
            if new is None:
                merged.append(e)
                continue
            if new.letters != e.letters or new.keywords != e.keywords:
                changed.append((seq, new))
            merged.append(new)
        merged.extend(added)
        self.entries = merged
        self.keywords_grown(session)
        if added or expunged:
            session.untagged(len(merged), Atom("EXISTS"))
            session.untagged(sum(1 for e in merged if e.recent), Atom("RECENT"))
        for seq, e in changed:
            session.untagged(seq, Atom("FETCH"), (Atom("FLAGS"),
                                                  tuple(Atom(f) for f in flag_list(e))))
        self.keywords_settled(session)

    def keywords_grown(self, session) -> None:
        """New keywords in use: ``* FLAGS`` with the old and the new ones (as Courier)."""
        words = set(self._keywords_in_use(self.entries))
        if words - set(self.flag_words):
            self.flag_words = tuple(kwmod.hash_order(words | set(self.flag_words)))
            self.send_flags(session)

    def keywords_settled(self, session) -> None:
        """Keywords no longer in use: ``* FLAGS`` again with those in use."""
        words = self._keywords_in_use(self.entries)
        if words != self.flag_words:
            self.flag_words = words
            self.send_flags(session)

    def update_entry(self, index: int, *, letters: str | None = None,
                     keywords: frozenset[str] | None = None,
                     filename: str | None = None) -> Entry:
        """Entry *index* with new flag letters, keywords or file name (a new object)."""
        old = self.entries[index]
        e = Entry(old.uid, old.basename, old.filename if filename is None else filename,
                  old.letters if letters is None else letters,
                  old.keywords if keywords is None else keywords, old.recent)
        self.entries[index] = e
        return e

    # -- lookups -------------------------------------------------------------------

    def file_path(self, entry: Entry) -> Path:
        return self._cur / entry.filename

    def internaldate(self, entry: Entry) -> float:
        """The message's mtime, kept per UID (renames for flags keep it): as the
        trusted cache entry recorded it, else from ``stat``."""
        when = self._dates.get(entry.uid)
        if when is not None:
            return when
        meta = self.cache.known(entry.basename) if self.cache is not None else None
        if meta is not None:  # the mtime the trusted cache entry recorded
            sec, nsec = divmod(meta.mtime_ns, 1_000_000_000)
            when = self._dates[entry.uid] = sec + nsec * 1e-9  # as os.stat_result.st_mtime
            return when
        try:
            when = self._dates[entry.uid] = os.stat(
                self._cur_prefix + entry.filename).st_mtime
            return when
        except FileNotFoundError:
            try:
                name = self.store._current_name(entry.basename, refresh=True)
                return os.stat(self.path / "cur" / name).st_mtime
            except Exception:  # noqa: BLE001 - gone: report the epoch
                return 0.0
