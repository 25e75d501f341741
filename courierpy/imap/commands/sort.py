"""SORT and THREAD (RFC 5256), as Courier answers them.

Courier's choices, observed on the real imapd: equal sort keys leave the
messages in *descending* sequence order; SORT DATE takes a missing Date: as
0 and an unreadable one as the internal date; THREAD ORDEREDSUBJECT prints
each thread flat, ``(first second third)``.

The header fields come from the folder's metadata cache
(:func:`courierpy.maildir.cache.sort_fields`: the raw values Python's
``email`` parser would give), not from the message files.
"""

from __future__ import annotations

import email.header
import email.utils
import re
from dataclasses import dataclass
from email.policy import compat32

from courierpy.imap import texts
from courierpy.imap.errors import Refused
from courierpy.imap.grammar import Command
from courierpy.maildir.store import MessageGone

_WS = re.compile(r"[ \t\r\n]+")
_TRAILER = re.compile(r"[ ]*\(fwd\)[ ]*\Z", re.I)
_BLOB = r"\[[^\[\]]*\]"
_REFWD = re.compile(r"\A(?:" + _BLOB + r"[ ]*)*(?:re|fwd?)[ ]*(?:" + _BLOB + r")?:[ ]*", re.I)
_LEADING_BLOB = re.compile(r"\A" + _BLOB + r"[ ]*")
_FWD_WRAP = re.compile(r"\A\[fwd:(.*)\]\Z", re.I | re.S)
_MSGID = re.compile(r"<[^<>]*>")


def _casemap(text: str) -> str:
    """i;ascii-casemap: ASCII letters upper-cased, everything else as it is."""
    return text.translate(_UPPER)


_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _decode(value: str | None) -> str:
    if not value:
        return ""
    try:
        parts = email.header.decode_header(value)
    except (ValueError, LookupError):
        return value
    out = []
    for data, charset in parts:
        if isinstance(data, bytes):
            try:
                out.append(data.decode(charset or "ascii", "replace"))
            except LookupError:
                out.append(data.decode("latin-1"))
        else:
            out.append(data)
    return "".join(out)


def base_subject(subject: str) -> str:
    """RFC 5256 section 2.1: the subject without Re:/Fwd:/[blob] leaders and (fwd) trailers."""
    s = _WS.sub(" ", subject).strip(" ")
    while True:
        old = s
        while True:
            t = _TRAILER.sub("", s)
            if t == s:
                break
            s = t
        while True:
            t = _REFWD.sub("", s, count=1)
            if t == s:
                m = _LEADING_BLOB.match(s)
                if m and s[m.end():]:
                    t = s[m.end():]
            if t == s:
                break
            s = t
        m = _FWD_WRAP.match(s)
        if m:
            s = m.group(1).strip(" ")
        if s == old:
            return _casemap(s)


def _mailbox(value: str | None) -> str:
    """The first address, compared as it is written (Courier: the whole address, case kept)."""
    if not value:
        return ""
    addrs = email.utils.getaddresses([value])
    for _name, addr in addrs:
        if addr:
            return addr
    return ""


@dataclass
class _Info:
    seq: int
    uid: int
    subject: str
    base: str
    from_: str
    to: str
    cc: str
    date: float | None  # None: no Date:, -1.0: unreadable
    arrival: float
    size: int
    msgid: str
    refs: list[str]


def _info(mbox, i: int, e, size: int, fields: dict[str, str]) -> _Info:
    """The sort data of entry *e* from its cached header *fields*, each read as
    ``email.message.Message.get`` (policy compat32) gives it."""

    def get(name: str):  # noqa: ANN202 - str, email.header.Header or None
        value = fields.get(name)
        return None if value is None else compat32.header_fetch_parse(name, value)

    subject = _decode(get("subject"))
    raw_date = get("date")
    date: float | None
    if raw_date is None:
        date = None
    else:
        t = email.utils.parsedate_tz(str(raw_date))
        date = float(email.utils.mktime_tz(t)) if t else -1.0
    refs = _MSGID.findall(str(get("references") or ""))
    irt = _MSGID.findall(str(get("in-reply-to") or ""))
    if not refs and irt:
        refs = irt[:1]
    mid = _MSGID.findall(str(get("message-id") or ""))
    return _Info(i + 1, e.uid, subject, base_subject(subject), _mailbox(get("from")),
                 _mailbox(get("to")), _mailbox(get("cc")), date,
                 mbox.internaldate(e), size, mid[0] if mid else "", refs)


def _selected_infos(session, key) -> list[_Info]:
    from courierpy.imap.commands.messages import _cache, _view
    from courierpy.imap.search import search as run_search

    mbox = session.selected
    views = [_view(mbox, i, e) for i, e in enumerate(mbox.entries)]
    cache = _cache(session, mbox)
    max_uid = mbox.entries[-1].uid if mbox.entries else 0
    found = run_search(views, key, cache, max_uid=max_uid, max_seq=len(views))
    out = []
    for v in found:
        e = mbox.entries[v.seq - 1]
        try:
            fields = cache.sort_data(v.path, v.basename)
            size = v.size if v.size is not None else cache.get(v.path, v.basename).size
        except (OSError, MessageGone):
            fields, size = {}, v.size or 0
        out.append(_info(mbox, v.seq - 1, e, size, fields))
    try:
        cache.save()
    except Exception:  # noqa: BLE001 - the cache is never the only copy
        pass
    return out


def _sort_key(info: _Info, name: str):
    if name == "SUBJECT":
        return info.base.encode("utf-8")
    if name == "FROM":
        return info.from_.encode("utf-8")
    if name == "TO":
        return info.to.encode("utf-8")
    if name == "CC":
        return info.cc.encode("utf-8")
    if name == "DATE":
        if info.date is None:
            return -1.0  # before unreadable dates (observed)
        return max(info.date, 0.0)
    if name == "ARRIVAL":
        return info.arrival
    return info.size  # SIZE


def sort(session, cmd: Command) -> None:
    """RFC 5256 section 3 (SORT) — https://www.rfc-editor.org/rfc/rfc5256#section-3"""
    a = cmd.args
    infos = _selected_infos(session, a.key)
    infos.sort(key=lambda x: -x.seq)  # ties: descending sequence order, as Courier
    for name, reverse in reversed(a.criteria):
        infos.sort(key=lambda x, n=name: _sort_key(x, n), reverse=reverse)
    nums = [x.uid if a.uid else x.seq for x in infos]
    session.send(b"* SORT" + b"".join(b" %d" % n for n in nums) + b"\r\n")
    session.ok(cmd.tag, texts.SORT_OK)


# -- THREAD ------------------------------------------------------------------------


def _thread_date(info: _Info) -> float:
    """ORDEREDSUBJECT's date: the Date: header; a missing one sorts before any real
    date, an unreadable one before that (observed on Courier)."""
    if info.date is None:
        return 0.0
    return -1.0 if info.date < 0 else info.date


def _references_date(info: _Info) -> float:
    """REFERENCES' date: an unreadable Date: sorts after every real one (observed)."""
    if info.date is None:
        return 0.0
    return float("inf") if info.date < 0 else info.date


class _Node:
    __slots__ = ("children", "info", "keep_order", "parent")

    def __init__(self, info: _Info | None = None) -> None:
        self.info = info
        self.parent: _Node | None = None
        self.children: list[_Node] = []
        #: a subject-merge container: Courier keeps its children in merge order
        self.keep_order = False


def _is_ancestor(a: _Node, b: _Node) -> bool:
    n: _Node | None = b
    while n is not None:
        if n is a:
            return True
        n = n.parent
    return False


def _link(parent: _Node, child: _Node) -> None:
    if child.parent is parent or _is_ancestor(child, parent):
        return
    if child.parent is not None:
        child.parent.children.remove(child)
    child.parent = parent
    parent.children.append(child)


def _first_date(node: _Node) -> tuple[float, int]:
    """A node's sort key; a container takes its first child's."""
    if node.info is not None:
        return (_references_date(node.info), node.info.seq)
    return _first_date(node.children[0]) if node.children else (0.0, 0)


def _first_seq(node: _Node) -> int:
    if node.info is not None:
        return node.info.seq
    return min((_first_seq(c) for c in node.children), default=0)


def _references(infos: list[_Info]) -> list[_Node]:
    table: dict[str, _Node] = {}
    for info in infos:
        mid = info.msgid or f"<dup-{info.seq}>"
        node = table.get(mid)
        if node is None or node.info is not None:
            if node is not None:
                mid = f"<dup-{info.seq}>"
            node = table[mid] = _Node(info)
        else:
            node.info = info
        prev: _Node | None = None
        for ref in info.refs:
            r = table.get(ref)
            if r is None:
                r = table[ref] = _Node()
            if prev is not None and r.parent is None:
                _link(prev, r)
            prev = r
        if prev is not None and prev is not node:
            if node.parent is not None:
                node.parent.children.remove(node)
                node.parent = None
            _link(prev, node)
        elif node.parent is not None and not info.refs:
            node.parent.children.remove(node)
            node.parent = None
    roots = [n for n in table.values() if n.parent is None]

    def prune(nodes: list[_Node], top: bool) -> list[_Node]:
        out: list[_Node] = []
        for n in nodes:
            n.children = prune(n.children, False)
            for c in n.children:
                c.parent = n
            if n.info is None:
                if not n.children:
                    continue
                if not top or len(n.children) == 1:
                    for c in n.children:
                        c.parent = None
                    out.extend(n.children)
                    continue
            out.append(n)
        return out

    roots = prune(roots, True)
    roots.sort(key=lambda n: _first_seq(n))
    # group by base subject (RFC 5256 REFERENCES step 5), roots taken in arrival order
    by_subject: dict[str, _Node] = {}
    for r in list(roots):
        info = r.info if r.info is not None else r.children[0].info
        subj = info.base if info else ""
        if not subj:
            continue
        other = by_subject.get(subj)
        if other is None:
            by_subject[subj] = r
            continue
        if other.info is None and r.info is None:
            for c in r.children:
                c.parent = other
            other.children.extend(r.children)
            roots.remove(r)
        elif other.info is None:
            r.parent = other
            other.children.append(r)
            roots.remove(r)
        elif r.info is None:
            other.parent = r
            r.children.append(other)
            roots.remove(other)
            by_subject[subj] = r
        elif r.info.subject != r.info.base and other.info.subject == other.info.base:
            r.parent = other
            other.children.append(r)
            roots.remove(r)
        else:
            dummy = _Node()
            roots[roots.index(other)] = dummy
            roots.remove(r)
            for c in (other, r):
                c.parent = dummy
                dummy.children.append(c)
            by_subject[subj] = dummy
    return roots


def _sort_tree(nodes: list[_Node], keep: bool = False) -> None:
    for n in nodes:
        _sort_tree(n.children, n.keep_order)
    if not keep:
        nodes.sort(key=_first_date)


def _render(node: _Node, uid: bool) -> str:
    parts: list[str] = []
    n: _Node | None = node
    while n is not None:
        if n.info is not None:
            parts.append(str(n.info.uid if uid else n.info.seq))
        if len(n.children) == 1 and n.info is not None:
            n = n.children[0]
            continue
        if n.children:
            parts.append("".join("(" + _render(c, uid) + ")" for c in n.children))
        n = None
    return " ".join(parts)


def thread(session, cmd: Command) -> None:
    """RFC 5256 section 3 (THREAD) — https://www.rfc-editor.org/rfc/rfc5256#section-3"""
    a = cmd.args
    if a.algorithm not in ("ORDEREDSUBJECT", "REFERENCES"):
        raise Refused()
    infos = _selected_infos(session, a.key)
    if a.algorithm == "ORDEREDSUBJECT":
        groups: dict[str, list[_Info]] = {}
        for info in infos:
            groups.setdefault(info.base, []).append(info)
        threads = [sorted(g, key=lambda x: (_thread_date(x), x.seq)) for g in groups.values()]
        threads.sort(key=lambda g: (_thread_date(g[0]), g[0].seq))
        text = "".join(
            "(" + " ".join(str(x.uid if a.uid else x.seq) for x in g) + ")" for g in threads)
    else:
        roots = _references(infos)
        _sort_tree(roots)
        text = "".join("(" + _render(r, a.uid) + ")" for r in roots)
    session.send(b"* THREAD " + text.encode() + b"\r\n" if text else b"* THREAD\r\n")
    session.ok(cmd.tag, texts.THREAD_OK)


HANDLERS = {
    "SORT": sort,
    "UID SORT": sort,
    "THREAD": thread,
    "UID THREAD": thread,
}
