"""Drive the REAL Courier imapd, pre-authenticated, over a pipe: the Maildir oracle.

Courier's imapd runs after login with the account already chosen: its
environment says who is logged in (``AUTHENTICATED``), its argument names the
Maildir, its cwd is the home. Without ``IMAPLOGINTAG`` it greets with
``* PREAUTH Ready.`` and speaks IMAP on stdin/stdout, so no couriertcpd,
authdaemond or password is needed::

    env -i AUTHENTICATED=user <keys of /etc/courier/imapd> /usr/bin/imapd Maildir

Usage::

    from tests.oracle.courier_imapd import CourierImapd

    with CourierImapd(home) as imap:            # home/Maildir is the Maildir
        untagged, tagged = imap.command("SELECT INBOX")
        imap.append("INBOX", b"Subject: x\\r\\n\\r\\nbody\\r\\n", flags=r"\\Seen")
        state = imap.select("INBOX")            # uidvalidity, exists, flags by UID
        imap.list_folders()                     # {"INBOX", "INBOX.Work", ...}
        imap.status("INBOX.Work")               # {"MESSAGES": 0, "UIDNEXT": 1, ...}
        imap.quota()                            # {"STORAGE": (used_kb, limit_kb), ...}

``command()`` returns the untagged lines (``str``, CRLF stripped; a literal
in a response is inlined) and the tagged line, and raises
:class:`ImapdError` when the tagged status is not OK (``check=False`` to
get it anyway). Every read has a timeout, so a silent server fails the test
instead of hanging it. The process is killed on exit.

The environment is ``/etc/courier/imapd``'s keys (read with our shell
variable reader), minus anything that would change the session's shape,
plus ``extra_env``. Run it as the Maildir's owner: with
``IMAP_MAILBOX_SANITY_CHECK=1`` Courier refuses a Maildir owned by someone
else. Used by the Maildir, imapd and pop3d tests alike.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import time
from pathlib import Path

from courierpy.config import read_shell_vars
from tests.support import require

IMAPD = "/usr/bin/imapd"
IMAPD_CONFIG = "/etc/courier/imapd"

_LITERAL_RE = re.compile(rb"\{(\d+)\}$")


class ImapdError(AssertionError):
    """The real imapd answered NO/BAD (or not at all)."""


def courier_env(user: str = "user", **extra: str) -> dict[str, str]:
    """The environment Courier's imaplogin would hand to imapd."""
    env: dict[str, str] = {}
    if os.path.exists(IMAPD_CONFIG):
        env.update(read_shell_vars(Path(IMAPD_CONFIG)))
    env.pop("IMAPLOGINTAG", None)
    env.update({
        "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
        "AUTHENTICATED": user,
        "PROTOCOL": "IMAP",
        "TCPREMOTEIP": "127.0.0.1",
        "TCPREMOTEPORT": "0",
        "IMAP_EMPTYTRASH": "",  # never delete anything behind a test's back
    })
    env.update(extra)
    return env


class CourierImapd:
    """One pre-authenticated real imapd session on *home*/*maildir*."""

    def __init__(self, home: str | os.PathLike[str], maildir: str = "Maildir", *,
                 user: str = "user", extra_env: dict[str, str] | None = None,
                 timeout: float = 10.0) -> None:
        self.home = Path(home)
        self.maildir = maildir
        self.env = courier_env(user, **(extra_env or {}))
        self.timeout = timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self._buf = b""
        self._tag = 0
        self.greeting = ""

    # -- process --------------------------------------------------------------

    def start(self) -> CourierImapd:
        require(IMAPD, "the real Courier imapd is the oracle")
        self.proc = subprocess.Popen(
            [IMAPD, self.maildir], cwd=self.home, env=self.env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        os.set_blocking(self.proc.stdout.fileno(), False)  # type: ignore[union-attr]
        self.greeting = self._readline().decode("utf-8", "replace")
        if not self.greeting.startswith("* PREAUTH"):
            raise ImapdError(f"unexpected greeting: {self.greeting!r}")
        return self

    def close(self) -> None:
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                self.command("LOGOUT", check=False)
        except (ImapdError, OSError):
            pass
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
            for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                if f is not None:
                    f.close()
            self.proc = None

    def __enter__(self) -> CourierImapd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- wire -----------------------------------------------------------------

    def _fill(self, deadline: float) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise ImapdError(f"imapd silent for {self.timeout}s; buffer {self._buf!r}")
        chunk = os.read(fd, 65536)
        if not chunk:
            raise ImapdError(f"imapd closed the connection; buffer {self._buf!r}")
        self._buf += chunk

    def _readline(self) -> bytes:
        """One response line, literals inlined, CRLF stripped."""
        deadline = time.monotonic() + self.timeout
        line = b""
        while True:
            while b"\r\n" not in self._buf:
                self._fill(deadline)
            part, self._buf = self._buf.split(b"\r\n", 1)
            line += part
            m = _LITERAL_RE.search(part)
            if not m:
                return line
            n = int(m.group(1))
            while len(self._buf) < n:
                self._fill(deadline)
            line += b"\r\n" + self._buf[:n]
            self._buf = self._buf[n:]

    def _send(self, data: bytes) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def command(self, text: str, *literals: bytes, check: bool = True) -> tuple[list[str], str]:
        """Send ``<tag> text``; each ``{n}`` at a line end is followed by a literal."""
        self._tag += 1
        tag = f"t{self._tag}"
        # text holds len(literals)+1 pieces separated by NUL; each piece but the
        # last ends with {n}. One literal at the end needs no NUL.
        pieces = text.encode("utf-8").split(b"\x00")
        if len(pieces) == len(literals):
            pieces.append(b"")
        if len(pieces) != len(literals) + 1:
            raise ValueError("need one NUL-separated piece per literal, plus the rest")
        untagged: list[str] = []
        prefix = f"{tag} ".encode()
        for piece, lit in zip(pieces, literals, strict=False):
            self._send(prefix + piece + b"\r\n")
            prefix = b""
            while True:
                resp = self._readline()
                if resp.startswith(b"+"):
                    break
                if resp.startswith(tag.encode() + b" "):
                    raise ImapdError(f"literal refused: {resp!r}")
                untagged.append(resp.decode("utf-8", "replace"))
            self._send(lit)
        self._send(prefix + pieces[-1] + b"\r\n")
        while True:
            resp = self._readline().decode("utf-8", "replace")
            if resp.startswith(tag + " "):
                tagged = resp
                break
            untagged.append(resp)
        if check and not tagged.startswith(tag + " OK"):
            raise ImapdError(f"{text!r} -> {tagged!r} after {untagged!r}")
        return untagged, tagged

    # -- helpers --------------------------------------------------------------

    @staticmethod
    def quote(name: str) -> str:
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'

    def append(self, folder: str, message: bytes, *, flags: str = "",
               date: str | None = None) -> str:
        """APPEND; returns the tagged line (with APPENDUID)."""
        extra = f" ({flags})" if flags else ""
        if date:
            extra += f' "{date}"'
        _, tagged = self.command(f"APPEND {self.quote(folder)}{extra} {{{len(message)}}}",
                                 message)
        return tagged

    def select(self, folder: str = "INBOX") -> dict[str, object]:
        """SELECT and fetch every message's UID and FLAGS."""
        untagged, tagged = self.command(f"SELECT {self.quote(folder)}")
        out: dict[str, object] = {"tagged": tagged}
        for u in untagged:
            if m := re.match(r"\* OK \[UIDVALIDITY (\d+)\]", u):
                out["uidvalidity"] = int(m.group(1))
            if m := re.match(r"\* (\d+) EXISTS", u):
                out["exists"] = int(m.group(1))
        out["flags"] = self.uid_flags()
        return out

    def uid_flags(self) -> dict[int, set[str]]:
        """UID → flags (without \\Recent) of the selected folder."""
        untagged, _ = self.command("UID FETCH 1:* (FLAGS)")
        result: dict[int, set[str]] = {}
        for u in untagged:
            m = re.match(r"\* \d+ FETCH \((.*)\)$", u)
            if not m:
                continue
            body = m.group(1)
            uid = int(re.search(r"UID (\d+)", body).group(1))  # type: ignore[union-attr]
            fl = re.search(r"FLAGS \(([^)]*)\)", body).group(1)  # type: ignore[union-attr]
            result[uid] = {f for f in fl.split() if f != "\\Recent"}
        return result

    def list_folders(self) -> set[str]:
        """Names of every folder LIST "" "*" shows (including INBOX)."""
        untagged, _ = self.command('LIST "" "*"')
        out = set()
        for u in untagged:
            m = re.match(r'\* LIST \(([^)]*)\) "\." (.*)$', u)
            if m:
                name = m.group(2)
                if name.startswith('"'):
                    name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
                if "\\Noselect" not in m.group(1):
                    out.add(name)
        return out

    def status(self, folder: str) -> dict[str, int]:
        untagged, _ = self.command(
            f"STATUS {self.quote(folder)} (MESSAGES UIDNEXT UIDVALIDITY UNSEEN)")
        for u in untagged:
            if m := re.match(r"\* STATUS .* \((.*)\)$", u):
                items = m.group(1).split()
                return {items[i]: int(items[i + 1]) for i in range(0, len(items), 2)}
        raise ImapdError(f"no STATUS response in {untagged!r}")

    def quota(self, folder: str = "INBOX") -> dict[str, tuple[int, int]]:
        """GETQUOTAROOT: resource → (usage, limit); {} without a quota."""
        untagged, _ = self.command(f"GETQUOTAROOT {self.quote(folder)}")
        out = {}
        for u in untagged:
            if m := re.match(r'\* QUOTA "?[^ ]*"? \((.*)\)$', u):
                items = m.group(1).split()
                for i in range(0, len(items), 3):
                    out[items[i]] = (int(items[i + 1]), int(items[i + 2]))
        return out
