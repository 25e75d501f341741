"""Courier's configuration files, read without a shell.

Courier keeps its settings (``/etc/courier/imapd``, ``pop3d``, ``authdaemonrc``,
...) in files that its start-up scripts *source* with ``/bin/sh``::

    IMAP_CAPABILITY="IMAP4rev1 UIDPLUS CHILDREN"
    IMAP_CAPABILITY_TLS="$IMAP_CAPABILITY AUTH=PLAIN"   # refers to the line above
    IMAP_EMPTYTRASH=Trash:7

:func:`parse_shell_vars` gives, for every assignment, the value that
``sh -c '. FILE; echo "$KEY"'`` would print, but it never runs a shell: the
subset of the shell language these files use is interpreted here, and anything
beyond it (commands, command substitution, pipes, ...) is a
:class:`~courierpy.errors.ConfigError` naming the file and line.

What is understood, as ``sh`` understands it:

- ``NAME=word`` assignments, several per line separated by blanks or ``;``,
  and ``export NAME[=word]``;
- words made of unquoted text, ``'single quoted'`` text (taken literally, may
  span lines) and ``"double quoted"`` text (``\\$ \\` \\" \\\\`` escapes and
  expansions inside);
- backslash escapes, and backslash-newline continuation (outside single quotes);
- ``$NAME`` and ``${NAME}``: the value assigned earlier in the same file, else
  the one in *environ* (empty by default), else the empty string;
- ``#`` comments where a word may start; blank lines.

Where the result would depend on the running shell (``$1``, ``$$``,
``$(cmd)``, ``${NAME:-x}``, a leading ``~``) the file is rejected, or, for
``~``, taken literally; ``docs/differences.md`` lists these.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType

from courierpy.errors import ConfigError

__all__ = [
    "ConfigFile",
    "DEFAULT_CONFIG_DIR",
    "parse_shell_vars",
    "read_shell_vars",
    "resolve_config_dir",
]

#: Where Courier installs its configuration, and where we look last.
DEFAULT_CONFIG_DIR = Path("/etc/courier")

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BLANKS = " \t"
# Characters that end an unquoted word, or that the shell treats as operators.
_WORD_END = frozenset(" \t\n;")
_OPERATORS = frozenset("|&<>()")
_SPECIAL_PARAMS = frozenset("0123456789@*#?-$!")


class _Scanner:
    """A cursor over the file text that keeps count of the line it is on."""

    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.pos = 0
        self.line = 1

    def peek(self, offset: int = 0) -> str:
        i = self.pos + offset
        return self.text[i] if i < len(self.text) else ""

    def advance(self, n: int = 1) -> str:
        chunk = self.text[self.pos : self.pos + n]
        self.line += chunk.count("\n")
        self.pos += n
        return chunk

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def error(self, message: str, line: int | None = None) -> ConfigError:
        return ConfigError(self.path, line if line is not None else self.line, message)

    def skip_blanks(self) -> None:
        """Skip spaces, tabs and backslash-newline continuations."""
        while True:
            c = self.peek()
            if c in _BLANKS and c:
                self.advance()
            elif c == "\\" and self.peek(1) == "\n":
                self.advance(2)
            else:
                return

    def skip_comment(self) -> None:
        end = self.text.find("\n", self.pos)
        self.pos = len(self.text) if end < 0 else end


class _Parser:
    def __init__(self, text: str, path: str, environ: Mapping[str, str]) -> None:
        self.s = _Scanner(text, path)
        self.environ = environ
        self.values: dict[str, str] = {}

    # -- statements ---------------------------------------------------------

    def parse(self) -> dict[str, str]:
        s = self.s
        while True:
            s.skip_blanks()
            c = s.peek()
            if not c:
                return self.values
            if c in "\n;":
                s.advance()
            elif c == "#":
                s.skip_comment()
            else:
                self.statement()

    def statement(self) -> None:
        s = self.s
        line = s.line
        name = self.name_at_cursor()
        if name == "export" and s.peek(len(name)) in (" ", "\t"):
            s.advance(len(name))
            s.skip_blanks()
            while s.peek() not in ("", "\n", ";", "#"):
                name = self.name_at_cursor()
                if name is None:
                    raise s.error("expected a variable name after 'export'", line)
                s.advance(len(name))
                if s.peek() == "=":
                    s.advance()
                    self.values[name] = self.word()
                elif s.peek() not in _WORD_END and s.peek():
                    raise s.error(f"invalid variable name after 'export': {name}...", line)
                self.end_of_word(line)
            return
        if name is None or s.peek(len(name)) != "=":
            raise s.error(f"expected NAME=value, found {self.snippet()!r}", line)
        s.advance(len(name) + 1)
        self.values[name] = self.word()
        self.end_of_word(line)

    def end_of_word(self, line: int) -> None:
        """After a value: only blanks, then a separator, comment, or another assignment."""
        s = self.s
        had_blank = s.peek() in _BLANKS and s.peek() != ""
        s.skip_blanks()
        c = s.peek()
        if c in ("", "\n", ";", "#"):
            return
        name = self.name_at_cursor()
        if had_blank and name is not None and s.peek(len(name)) == "=":
            return  # another assignment on the same line: A=1 B=2
        raise s.error(
            f"unexpected text after the value: {self.snippet()!r} "
            "(quote values that contain spaces)",
            line,
        )

    def name_at_cursor(self) -> str | None:
        m = _NAME.match(self.s.text, self.s.pos)
        return m.group(0) if m else None

    def snippet(self) -> str:
        rest = self.s.text[self.s.pos :]
        return rest.split("\n", 1)[0][:40]

    # -- words --------------------------------------------------------------

    def word(self) -> str:
        """Read one shell word (the value of an assignment) and return its text."""
        s = self.s
        out: list[str] = []
        while True:
            c = s.peek()
            if c == "" or c in _WORD_END:
                return "".join(out)
            if c in _OPERATORS:
                raise s.error(f"shell operator {c!r} is not allowed here (quote the value)")
            if c == "\\":
                nxt = s.peek(1)
                if nxt == "\n":
                    s.advance(2)
                elif nxt == "":
                    s.advance()
                    out.append("\\")
                else:
                    s.advance(2)
                    out.append(nxt)
            elif c == "'":
                out.append(self.single_quoted())
            elif c == '"':
                out.append(self.double_quoted())
            elif c == "$":
                out.append(self.expansion())
            elif c == "`":
                raise s.error("command substitution with `...` is not supported")
            else:
                out.append(s.advance())

    def single_quoted(self) -> str:
        s = self.s
        start_line = s.line
        end = s.text.find("'", s.pos + 1)
        if end < 0:
            raise s.error("unterminated single quote", start_line)
        text = s.text[s.pos + 1 : end]
        s.advance(end + 1 - s.pos)
        return text

    def double_quoted(self) -> str:
        s = self.s
        start_line = s.line
        s.advance()
        out: list[str] = []
        while True:
            c = s.peek()
            if c == "":
                raise s.error("unterminated double quote", start_line)
            if c == '"':
                s.advance()
                return "".join(out)
            if c == "\\":
                nxt = s.peek(1)
                if nxt == "\n":
                    s.advance(2)
                elif nxt in ("$", "`", '"', "\\"):
                    s.advance(2)
                    out.append(nxt)
                else:
                    out.append(s.advance())
            elif c == "$":
                out.append(self.expansion())
            elif c == "`":
                raise s.error("command substitution with `...` is not supported")
            else:
                out.append(s.advance())

    def expansion(self) -> str:
        """At a ``$``: expand ``$NAME`` or ``${NAME}``; a lone ``$`` stays literal."""
        s = self.s
        nxt = s.peek(1)
        if nxt == "{":
            close = s.text.find("}", s.pos + 2)
            inner = s.text[s.pos + 2 : close] if close >= 0 else ""
            if close < 0 or "\n" in inner:
                raise s.error("unterminated ${...}")
            if not _NAME.fullmatch(inner):
                raise s.error(f"unsupported parameter expansion ${{{inner}}}")
            s.advance(close + 1 - s.pos)
            return self.lookup(inner)
        if nxt == "(":
            raise s.error("command substitution with $(...) is not supported")
        if nxt in _SPECIAL_PARAMS and nxt:
            raise s.error(f"special parameter ${nxt} is not supported")
        m = _NAME.match(s.text, s.pos + 1)
        if m is None:
            s.advance()
            return "$"
        s.advance(1 + len(m.group(0)))
        return self.lookup(m.group(0))

    def lookup(self, name: str) -> str:
        if name in self.values:
            return self.values[name]
        return self.environ.get(name, "")


def parse_shell_vars(
    text: str, *, path: str = "<string>", environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Return the variables a shell-variable config *text* assigns, in order.

    *environ* supplies variables the file refers to without setting them (the
    environment ``sh`` would have had); by default there are none.
    Raises :class:`ConfigError` (``path:line: ...``) on a malformed line.
    """
    return _Parser(text, path, environ or {}).parse()


class ConfigFile(Mapping[str, str]):
    """The settings of one config file: an immutable ``{KEY: value}`` mapping."""

    __slots__ = ("path", "_values")

    def __init__(self, path: Path, values: Mapping[str, str]) -> None:
        self.path = path
        self._values = MappingProxyType(dict(values))

    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"ConfigFile({str(self.path)!r}, {len(self)} keys)"

    def get_int(self, key: str, default: int) -> int:
        """The value of *key* as an integer, *default* if unset or empty."""
        raw = self._values.get(key, "").strip()
        if not raw:
            return default
        try:
            return int(raw, 10)
        except ValueError:
            raise ConfigError(str(self.path), None, f"{key}={raw!r} is not a number") from None

    def get_bool(self, key: str, default: bool = False) -> bool:
        """Courier's switches: ``1``/``YES``/``y``/``true`` are on, ``0``/``NO``/empty off."""
        raw = self._values.get(key)
        if raw is None or raw.strip() == "":
            return default
        return raw.strip().lower() in ("1", "yes", "y", "true", "on")


def read_shell_vars(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> ConfigFile:
    """Read the shell-variable config file at *path* (see :func:`parse_shell_vars`)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(str(p), None, "no such file") from None
    except PermissionError:
        raise ConfigError(str(p), None, "permission denied") from None
    except IsADirectoryError:
        raise ConfigError(str(p), None, "is a directory, not a config file") from None
    # Config files are bytes to the shell; keep any non-UTF-8 byte as itself.
    text = raw.decode("utf-8", errors="surrogateescape")
    return ConfigFile(p, parse_shell_vars(text, path=str(p), environ=environ))


def resolve_config_dir(option: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path:
    """Where the config lives: ``--config-dir``, else ``$COURIER_CONFDIR``, else /etc/courier."""
    if option:
        return Path(option)
    env = environ.get("COURIER_CONFDIR")
    if env:
        return Path(env)
    return DEFAULT_CONFIG_DIR
