"""The shell-variable config reader, checked against /bin/sh itself."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from courierpy.config import parse_shell_vars, read_shell_vars, resolve_config_dir
from courierpy.errors import ConfigError


def sh_values(
    path: Path, names: list[str], environ: dict[str, str] | None = None
) -> dict[str, str]:
    """What ``sh -c '. FILE; printf "%s" "$KEY"'`` prints for every name."""
    script = '. "$1"; shift; for n in "$@"; do eval "printf \'%s\\0\' \\"\\${$n}\\""; done'
    out = subprocess.run(
        ["sh", "-c", script, "sh", str(path), *names],
        env=environ or {},
        capture_output=True,
        check=True,
    ).stdout
    parts = out.split(b"\0")[:-1]
    return dict(zip(names, (p.decode("utf-8", "surrogateescape") for p in parts), strict=True))


def check_like_sh(
    tmp_path: Path, text: str, environ: dict[str, str] | None = None
) -> dict[str, str]:
    f = tmp_path / "conf"
    f.write_text(text, encoding="utf-8")
    ours = read_shell_vars(f, environ=environ)
    assert sh_values(f, list(ours), environ) == dict(ours)
    return dict(ours)


CASES = {
    "plain": ("A=1\nB=hello\n", {"A": "1", "B": "hello"}),
    "double quotes": ('A="two words"\n', {"A": "two words"}),
    "single quotes": ("A='$B \"x\" \\n'\n", {"A": '$B "x" \\n'}),
    "empty values": ("A=\nB=\"\"\nC=''\nD= # comment\n", {"A": "", "B": "", "C": "", "D": ""}),
    "comments": (
        "# a comment\n  # indented\nA=1 # trailing\nB=x#not-a-comment\n##NAME: X:0\n",
        {"A": "1", "B": "x#not-a-comment"},
    ),
    "expansion": (
        'CAP="IMAP4rev1 UIDPLUS"\nCAP_TLS="$CAP AUTH=PLAIN"\nX=${CAP}-$CAP.y\n',
        {
            "CAP": "IMAP4rev1 UIDPLUS",
            "CAP_TLS": "IMAP4rev1 UIDPLUS AUTH=PLAIN",
            "X": "IMAP4rev1 UIDPLUS-IMAP4rev1 UIDPLUS.y",
        },
    ),
    "unset reference is empty": ('A="[$NOPE]"\n', {"A": "[]"}),
    "continuation": (
        'A="one \\\ntwo"\nB=abc\\\ndef\nC=x \\\n  # c\n',
        {"A": "one two", "B": "abcdef", "C": "x"},
    ),
    "multi-line single quote": ("A='line1\nline2'\nB=2\n", {"A": "line1\nline2", "B": "2"}),
    "escapes": ('A=a\\ b\\$c\nB="q\\"\\$\\\\\\x"\n', {"A": "a b$c", "B": 'q"$\\\\x'}),
    "lone dollar": ('A=$\nB="$ 5"\nC=a$/b\n', {"A": "$", "B": "$ 5", "C": "a$/b"}),
    "several per line": ("A=1 B=2; C=3\n", {"A": "1", "B": "2", "C": "3"}),
    "export": ("export A=1\nB=2\nexport B\n", {"A": "1", "B": "2"}),
    "reassignment": ('A=1\nA="$A 2"\n', {"A": "1 2"}),
    "crlf kept as sh does": ("A=1\r\n", {"A": "1\r"}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_sh(tmp_path: Path, name: str) -> None:
    text, expected = CASES[name]
    assert check_like_sh(tmp_path, text) == expected


def test_environment_fills_unset_references(tmp_path: Path) -> None:
    got = check_like_sh(tmp_path, 'A="$HOME/x"\nHOME=/h\nB=$HOME\n', environ={"HOME": "/root"})
    assert got == {"A": "/root/x", "HOME": "/h", "B": "/h"}


SHELL_FORMAT_FILES = ["authdaemonrc", "imapd", "imapd-ssl", "pop3d", "pop3d-ssl"]


def test_shipped_config_files(tmp_path: Path) -> None:
    """Our own shipped files parse exactly as sh parses them."""
    etc = Path(__file__).resolve().parents[2] / "etc" / "courier"
    for name in SHELL_FORMAT_FILES:
        f = etc / name
        ours = read_shell_vars(f)
        assert ours, f
        assert sh_values(f, list(ours)) == dict(ours), f


_safe = st.text(alphabet="abcXYZ019_-.:/,=+@%", min_size=0, max_size=6)
_any = st.text(
    alphabet=st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=8
)


@st.composite
def _segment(draw: st.DrawFn, names: list[str]) -> str:
    kind = draw(st.sampled_from(["bare", "single", "double", "ref", "bref", "esc", "cont"]))
    if kind == "bare":
        return draw(_safe)
    if kind == "single":
        return "'" + draw(_any).replace("'", "") + "'"
    if kind == "double":
        raw = draw(_any)
        body = "".join("\\" + c if c in '$`"\\' else c for c in raw)
        if names and draw(st.booleans()):
            body += "$" + draw(st.sampled_from(names)) + " "
        return '"' + body + '"'
    if kind == "esc":
        return "\\" + draw(st.sampled_from(list(" $'\"#;|ab\\")))
    if kind == "cont":
        return "\\\n"
    if not names:
        return ""
    n = draw(st.sampled_from(names))
    return "${" + n + "}" if kind == "bref" else '"$' + n + '"'


@st.composite
def _file(draw: st.DrawFn) -> str:
    names: list[str] = []
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.integers(0, 5)) == 0:
            lines.append("# " + draw(_any).replace("\n", " "))
            continue
        name = draw(st.sampled_from(["A", "B", "C_1", "imap", "_x"]))
        value = "".join(draw(st.lists(_segment(names), max_size=5)))
        comment = draw(st.sampled_from(["", " # c", "\t#x y"]))
        lines.append(f"{name}={value}{comment}")
        names.append(name)
    return "\n".join(lines) + "\n"


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=_file())
def test_random_files_match_sh(tmp_path: Path, text: str) -> None:
    check_like_sh(tmp_path, text)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("A=1\nthis is not an assignment\n", 2, "expected NAME=value"),
        ("A=1\nB=two words\n", 2, "unexpected text after the value"),
        ('A=1\n\nB="open\nC=3\n', 3, "unterminated double quote"),
        ("A='open\n", 1, "unterminated single quote"),
        ("A=$(id)\n", 1, "command substitution"),
        ("A=`id`\n", 1, "command substitution"),
        ("A=${B:-x}\n", 1, "unsupported parameter expansion"),
        ("A=${B\n", 1, "unterminated ${...}"),
        ("A=$1\n", 1, "special parameter"),
        ("A=x|y\n", 1, "shell operator"),
        ("1A=x\n", 1, "expected NAME=value"),
        ("A = x\n", 1, "expected NAME=value"),
        ("\n\n  export\n", 3, "expected NAME=value"),
    ],
)
def test_malformed_lines_name_file_and_line(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    f = tmp_path / "imapd"
    f.write_text(text)
    with pytest.raises(ConfigError) as info:
        read_shell_vars(f)
    assert info.value.line == line
    assert str(info.value).startswith(f"{f}:{line}: ")
    assert fragment in str(info.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        read_shell_vars(tmp_path / "nope")


def test_typed_getters(tmp_path: Path) -> None:
    f = tmp_path / "c"
    f.write_text("N=12\nE=\nY=YES\nZ=0\nBAD=x1\n")
    c = read_shell_vars(f)
    assert c.get_int("N", 1) == 12 and c.get_int("E", 7) == 7 and c.get_int("MISSING", 3) == 3
    assert c.get_bool("Y") and not c.get_bool("Z") and c.get_bool("E", True)
    with pytest.raises(ConfigError, match="BAD"):
        c.get_int("BAD", 0)


def test_parse_string_defaults_to_no_environment() -> None:
    assert parse_shell_vars('A="$HOME"') == {"A": ""}


def test_config_dir_resolution(tmp_path: Path) -> None:
    assert resolve_config_dir(str(tmp_path), {"COURIER_CONFDIR": "/x"}) == tmp_path
    assert resolve_config_dir(None, {"COURIER_CONFDIR": "/x"}) == Path("/x")
    assert resolve_config_dir(None, {}) == Path("/etc/courier")
    assert os.fspath(resolve_config_dir(None, {"COURIER_CONFDIR": ""})) == "/etc/courier"
