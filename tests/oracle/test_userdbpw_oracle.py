"""userdbpw and the password schemes, side by side with the real Courier.

* our ``userdbpw`` against ``/usr/sbin/userdbpw``: arguments, standard input,
  and a pseudo-terminal (prompts, mismatch, end of input, Ctrl-C);
* our HMAC states against the real ``userdbpw -hmac-*`` output;
* our ``authpasswd_hash`` against the real ``/usr/sbin/authpasswd`` (it hashes
  locally and needs no authdaemond);
* crypt(3) hashes both ways against Perl's ``crypt`` (the system libxcrypt,
  which is what Courier's crypt() calls);
* CRAM-MD5 against Courier's ``userdb-test-cram-md5`` client script.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import os
import pty
import random
import select
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from authdaemon.passwords import (
    authpasswd_hash,
    cram_verify,
    hash_password,
    hmac_secret,
    md5_crypt_hash,
    verify,
)
from tests.support import REPO, require

pytestmark = pytest.mark.oracle

REAL = "/usr/sbin/userdbpw"
OURS = [sys.executable, "-m", "authdaemon.cli.userdbpw"]


def real_cmd() -> list[str]:
    # argv[0] "userdbpw": what the real one prints when run from $PATH.
    return [require(REAL)]


def run(cmd: list[str], args: list[str], data: bytes) -> subprocess.CompletedProcess[bytes]:
    if cmd[0] == REAL:
        return subprocess.run(
            ["userdbpw", *args], executable=REAL, input=data, capture_output=True, timeout=20
        )
    return subprocess.run([*cmd, *args], input=data, capture_output=True, timeout=20, cwd=REPO)


# -- arguments -------------------------------------------------------------------

ARGUMENT_CASES = [
    [],
    ["-md5"],
    ["-hmac-md5"],
    ["-hmac-sha1"],
    ["-hmac-sha256"],
    ["-md5", "-hmac-md5"],
    ["-hmac-md5", "-md5"],
    ["-hmac-sha1", "-hmac-md5"],
    ["-md5", "-md5"],
    ["-sha512"],
    ["-hmac-sha512"],
    ["-hmac-"],
    ["-hmac"],
    ["-hmac-MD5"],
    ["-MD5"],
    ["-x"],
    ["x"],
    [""],
    ["--", "-md5"],
    ["-md5", "extra"],
    ["-hmac-md5", "-hmac-bogus"],
]


@pytest.mark.parametrize("args", ARGUMENT_CASES, ids=lambda a: " ".join(a) or "(none)")
def test_arguments_like_courier(args):
    real = run(real_cmd(), args, b"secret\n")
    ours = run(OURS, args, b"secret\n")
    assert ours.returncode == real.returncode
    assert ours.stderr == real.stderr
    if real.returncode:
        assert ours.stdout == real.stdout == b""
    elif any(a.startswith("-hmac-") for a in args):
        assert ours.stdout == real.stdout
    else:
        for out in (real.stdout, ours.stdout):
            assert out.endswith(b"\n") and out.count(b"\n") == 1
            assert verify("secret", out[:-1].decode())
        # same kind of hash: DES (13 chars) or $1$ with an 8-character salt
        assert len(ours.stdout) == len(real.stdout)
        assert ours.stdout[:3] == real.stdout[:3] or b"$" not in real.stdout


def test_installed_console_script():
    script = require(str(Path(sys.executable).parent / "userdbpw"), "pip install -e .")
    real = run(real_cmd(), ["-hmac-sha1"], b"pw\n")
    ours = subprocess.run([script, "-hmac-sha1"], input=b"pw\n", capture_output=True, timeout=20)
    assert (ours.returncode, ours.stdout, ours.stderr) == (0, real.stdout, b"")
    bad = subprocess.run([script, "-bogus"], input=b"pw\n", capture_output=True, timeout=20)
    assert (bad.returncode, bad.stdout, bad.stderr) == (1, b"", b"userdbpw: invalid argument.\n")


# -- standard input ----------------------------------------------------------------

INPUTS = [
    b"secret\n",
    b"secret",
    b"",
    b"\n",
    b"secret\r\n",
    b" spaced out \n",
    b"first\nsecond\n",
    b"sec\0ret\n",
    b"tab\there\n",
    "pässwörd\n".encode(),
    "日本語のパスワード\n".encode(),
    b"\xff\xfe latin junk\n",
    b"x" * 64 + b"\n",
    b"y" * 65 + b"\n",
    b"z" * 300 + b"\n",
    b"w" * 9000 + b"\n",  # longer than Courier's line buffer (8191 kept)
    b"v" * 70000,
]


@pytest.mark.parametrize("algo", ["md5", "sha1", "sha256"])
@pytest.mark.parametrize("data", INPUTS, ids=lambda d: repr(d[:20]) + f"/{len(d)}")
def test_hmac_from_stdin_identical(algo, data):
    real = run(real_cmd(), [f"-hmac-{algo}"], data)
    ours = run(OURS, [f"-hmac-{algo}"], data)
    assert (ours.returncode, ours.stdout, ours.stderr) == (
        real.returncode,
        real.stdout,
        real.stderr,
    )


@pytest.mark.parametrize("args", [[], ["-md5"]], ids=["des", "md5"])
@pytest.mark.parametrize("data", INPUTS, ids=lambda d: repr(d[:20]) + f"/{len(d)}")
def test_crypt_from_stdin_verifies_both_ways(args, data):
    real = run(real_cmd(), args, data)
    ours = run(OURS, args, data)
    assert (ours.returncode, ours.stderr) == (real.returncode, real.stderr)
    if real.returncode:
        assert ours.stdout == real.stdout == b""
        return
    line = data.split(b"\n")[0][:8191].split(b"\0")[0]
    if real.stdout == b"*0\n":  # crypt(3) refused a password of 512 bytes or more
        assert not args and len(line) >= 512
        assert ours.stdout == real.stdout
        return
    real_hash = real.stdout.decode().rstrip("\n")
    our_hash = ours.stdout.decode().rstrip("\n")
    assert verify(line, real_hash)  # Courier's hash, our check
    if len(line) < 512:
        assert perl_crypt_matches(line, our_hash)  # our hash, libxcrypt's check
    else:  # libxcrypt refuses long passwords; Courier's own MD5-crypt does not
        assert args == ["-md5"] and verify(line, our_hash)
    assert not verify(line + b"!", our_hash) or (not args and len(line) >= 8)


# -- a terminal --------------------------------------------------------------------


def pty_session(
    argv: list[str], inputs: list[bytes], executable: str | None = None
) -> tuple[int, bytes, bytes]:
    """Run *argv* with a pseudo-terminal as stdin (its controlling tty) and pipes
    for stdout/stderr; send each input after the next prompt shows on stderr."""
    master, slave = pty.openpty()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.setsid()
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
            os.dup2(slave, 0)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            for fd in (master, slave, out_r, out_w, err_r, err_w):
                os.close(fd)
            os.chdir(REPO)
            os.execv(executable or argv[0], argv)
        finally:
            os._exit(127)
    os.close(slave)
    os.close(out_w)
    os.close(err_w)
    out = bytearray()
    err = bytearray()
    status = None
    try:
        deadline = time.monotonic() + 20

        open_fds = {out_r, err_r, master}

        def pump(until) -> None:
            """Read everything that arrives until *until()* holds or both pipes end."""
            while not until() and open_fds & {out_r, err_r}:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out; stderr so far {bytes(err)!r}")
                ready, _, _ = select.select(list(open_fds), [], [], min(left, 0.5))
                for fd in ready:
                    try:
                        chunk = os.read(fd, 65536)
                    except OSError:  # the pty master reports EIO once the child is gone
                        chunk = b""
                    if not chunk:
                        open_fds.discard(fd)
                    elif fd == out_r:
                        out.extend(chunk)
                    elif fd == err_r:
                        err.extend(chunk)

        prompts = 0
        for data in inputs:
            prompts += 1
            pump(lambda n=prompts: err.count(b"password: ") + err.count(b"Password: ") >= n)
            time.sleep(0.05)  # let it reach read() after writing the prompt
            os.write(master, data)
        pump(lambda: False)  # until stdout and stderr both close
        _, status = os.waitpid(pid, 0)
    finally:
        if status is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        for fd in (master, out_r, err_r):
            os.close(fd)
    return os.waitstatus_to_exitcode(status), bytes(out), bytes(err)


PTY_CASES = {
    "match": [b"secret\n", b"secret\n"],
    "mismatch-then-match": [b"secret\n", b"other\n", b"secret\n", b"secret\n"],
    "eof-at-first": [b"\x04"],
    "eof-at-second": [b"secret\n", b"\x04"],
    "empty-lines": [b"\n", b"\n"],
    "ctrl-c-at-first": [b"\x03"],
    "ctrl-c-at-second": [b"secret\n", b"\x03"],
}


@pytest.mark.parametrize("case", list(PTY_CASES))
@pytest.mark.parametrize("args", [["-hmac-md5"], ["-md5"], []], ids=["hmac", "md5", "des"])
def test_terminal_dialogue_identical(case, args):
    real = pty_session(["userdbpw", *args], PTY_CASES[case], executable=require(REAL))
    ours = pty_session([*OURS, *args], PTY_CASES[case])
    assert ours[0] == real[0]
    assert ours[2] == real[2]  # prompts and messages on stderr
    if args == ["-hmac-md5"] or real[1] in (b"", b"\n"):
        assert ours[1] == real[1]  # deterministic, or nothing / Ctrl-C's empty line
    else:
        pw = PTY_CASES[case][-1].rstrip(b"\n")
        assert verify(pw, real[1].decode().strip())
        assert verify(pw, ours[1].decode().strip())
        assert len(ours[1]) == len(real[1])


def test_terminal_echo_is_restored_after_eof():
    # Courier leaves echo off when input ends at a prompt; we restore it.
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [*OURS], stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO
        )
        deadline = time.monotonic() + 10
        while termios.tcgetattr(slave)[3] & termios.ECHO:  # until it turns echo off
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.write(master, b"\x04")
        assert proc.wait(timeout=10) == 1
        proc.stdout.close()
        proc.stderr.close()
        assert termios.tcgetattr(slave)[3] & termios.ECHO
    finally:
        os.close(master)
        os.close(slave)


# -- HMAC states against the real userdbpw ------------------------------------------


@pytest.mark.parametrize("algo", ["md5", "sha1", "sha256"])
def test_hmac_secret_equals_real_userdbpw(algo):
    rng = random.Random(4242)
    passwords = ["secret", "", "a" * 64, "b" * 65, "c" * 500, "pässwörd", "密码"]
    passwords += [
        "".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(1, 90)))
        for _ in range(10)
    ]
    for pw in passwords:
        pw = pw.replace("\n", "")
        real = run(real_cmd(), [f"-hmac-{algo}"], pw.encode() + b"\n")
        assert real.returncode == 0
        assert hmac_secret(pw, algo) == real.stdout.decode().strip(), pw


def test_cram_md5_with_courier_test_client():
    """userdb-test-cram-md5 computes the client's answer; our check accepts it."""
    script = require("/usr/sbin/userdb-test-cram-md5")
    require("perl")
    for user, pw in [("tim", "tanstaaftanstaaf"), ("fred", "x" * 80), ("ann", "pässwörd")]:
        challenge = b"<1234.5678@mail.example>"
        answer = subprocess.run(
            ["perl", script],
            input=f"{user}\n{pw}\n".encode() + base64.b64encode(challenge) + b"\n",
            capture_output=True,
            timeout=20,
            check=True,
        ).stdout
        response = base64.b64decode(answer.split(b"Send this response:\n")[1].strip())
        got_user, digest = response.split(b" ")
        assert got_user.decode() == user
        secret = run(real_cmd(), ["-hmac-md5"], pw.encode() + b"\n").stdout.decode().strip()
        assert cram_verify(challenge, digest.decode(), secret, "md5")
        assert not cram_verify(challenge + b" ", digest.decode(), secret, "md5")
        expected = hmac.new(pw.encode(), challenge, "md5").hexdigest().encode()
        assert digest == expected


# -- authpasswd ------------------------------------------------------------------------

AUTHPASSWD_METHODS = [
    None, "md5", "MD5", "md5raw", "md5r", "md5rawxxxxxxxxxxxxxxxxxx", "sha", "ssha", "sshax",
    "sha256", "sha256x", "sha512", "SHA512", "crypt", "sha1", "bogus", "", "md5x", "md5}",
    "{md5}",
]  # fmt: skip


@pytest.mark.parametrize("method", AUTHPASSWD_METHODS, ids=repr)
def test_authpasswd_methods_match_courier(method):
    prog = require("/usr/sbin/authpasswd")
    args = [prog] if method is None else [prog, method]
    real = subprocess.run(args, input=b"secret\n", capture_output=True, timeout=20, check=True)
    real_hash = real.stdout.decode().strip()
    ours = authpasswd_hash("secret", method)
    assert verify("secret", real_hash)
    assert verify("secret", ours)
    if real_hash.startswith("$1$"):  # random salt: same scheme, same salt length
        assert ours.startswith("$1$") and len(ours) == len(real_hash)
        assert len(ours.split("$")[2]) == len(real_hash.split("$")[2]) == 5
    elif real_hash.startswith("{SSHA}"):
        assert ours.startswith("{SSHA}") and len(ours) == len(real_hash)
    else:
        assert ours == real_hash


# -- crypt(3) against libxcrypt through Perl -------------------------------------------


def perl_crypt(pairs: list[tuple[bytes, str]]) -> list[str]:
    """crypt(password, setting) from the system libxcrypt, through Perl."""
    require("perl")
    payload = b"".join(
        base64.b64encode(pw) + b" " + base64.b64encode(setting.encode()) + b"\n"
        for pw, setting in pairs
    )
    code = (
        "use MIME::Base64; $|=1; while (<STDIN>) { chomp; my ($p, $s) = split / /;"
        " my $r = crypt(decode_base64($p), decode_base64($s));"
        " print defined $r ? encode_base64($r, '') : '-', \"\\n\"; }"
    )
    out = subprocess.run(
        ["perl", "-e", code], input=payload, capture_output=True, timeout=60, check=True
    ).stdout.split(b"\n")[:-1]
    return [("" if o == b"-" else base64.b64decode(o).decode("latin-1")) for o in out]


def perl_crypt_matches(password: bytes, stored: str) -> bool:
    return perl_crypt([(password, stored)])[0] == stored


def _random_password(rng: random.Random) -> bytes:
    n = rng.randrange(0, 90)
    return bytes(rng.choice(range(1, 256)) for _ in range(n))


def test_our_hashes_verify_in_libxcrypt():
    rng = random.Random(7)
    pairs = []
    for _ in range(40):
        pw = _random_password(rng)
        for scheme, rounds in [
            ("des", None),
            ("md5-crypt", None),
            ("md5-crypt-5", None),
            ("sha256-crypt", 1000),
            ("sha512-crypt", 1000),
            ("bcrypt", 4),
        ]:
            pairs.append((pw, hash_password(pw, scheme, rounds=rounds)))
    results = perl_crypt(pairs)
    for (pw, stored), got in zip(pairs, results, strict=True):
        assert got == stored, (pw, stored)


def test_libxcrypt_hashes_verify_with_ours():
    rng = random.Random(11)
    alphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

    def salt(n: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    settings_makers = [
        lambda: salt(2),
        lambda: f"$1${salt(rng.randrange(1, 9))}$",
        lambda: f"$5${salt(16)}$",
        lambda: f"$5$rounds={rng.randrange(1000, 3000)}${salt(rng.randrange(1, 17))}$",
        lambda: f"$6$rounds={rng.randrange(1000, 3000)}${salt(8)}$",
        lambda: f"$2b$04${salt(21)}u",
        lambda: f"$2a$04${salt(21)}e",
        lambda: f"$2y$04${salt(21)}O",
        lambda: f"$y$j9T${salt(16)}$",
        lambda: f"_J9..{salt(4)}",
    ]
    pairs = []
    for _ in range(15):
        for make in settings_makers:
            pairs.append((_random_password(rng), make()))
    hashes = perl_crypt(pairs)
    for (pw, setting), stored in zip(pairs, hashes, strict=True):
        assert stored and not stored.startswith("*"), setting
        assert verify(pw, stored), (pw, stored)
        assert verify(b"\x01" + pw, stored) is False, (pw, stored)


def test_verify_agrees_with_libxcrypt_on_odd_stored_values():
    """Values that are not hashes: both sides must say "no match"."""
    odd = [
        "secret", "secretsecret1", "", "*", "!!", "ab", "abcdefghijklm", "$1$", "$1$$",
        "$5$rounds=10$salt$", "$6$", "$2b$04$", "$y$", "_", "_J9..", "{CRYPT}ab",
        "$5$rounds=10$salt$OBSM8xhIUMpMmDNGPoSEKhz9sekA0FXG3oBKcY1CLs2",
        "$6$rounds=0999$salt$x", "$5$rounds=01000$salt$x",
    ]  # fmt: skip
    for stored in odd:
        theirs = perl_crypt([(b"secret", stored.removeprefix("{CRYPT}"))])[0]
        libxcrypt_match = theirs == stored.removeprefix("{CRYPT}")
        assert verify("secret", stored) is libxcrypt_match, stored


# -- the real authdaemond judges our hashes and CRAM secrets -----------------------


def _auth_request(sock_path: Path, service: str, authtype: str, authdata: bytes) -> bytes:
    import socket

    body = f"{service}\n{authtype}\n".encode() + authdata
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(20)
        s.connect(str(sock_path))
        s.sendall(f"AUTH {len(body)}\n".encode() + body)
        reply = b""
        while not (reply.endswith(b"\n.\n") or reply == b"FAIL\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply


def _login(sock: Path, user: str, password: bytes) -> bool:
    reply = _auth_request(sock, "imap", "login", user.encode() + b"\n" + password + b"\n")
    assert reply == b"FAIL\n" or reply.startswith(b"UID="), reply
    return reply.startswith(b"UID=")


def _cram(sock: Path, user: str, password: bytes, algo: str) -> bool:
    challenge = b"<98765.4321@oracle.example>"
    digest = hmac.new(password, challenge, algo).hexdigest()
    data = base64.b64encode(challenge) + b"\n"
    data += base64.b64encode(f"{user} {digest}".encode()) + b"\n"
    reply = _auth_request(sock, "imap", f"cram-{algo}", data)
    assert reply == b"FAIL\n" or reply.startswith(b"UID="), reply
    return reply.startswith(b"UID=")


def test_real_authdaemond_accepts_our_hashes_and_agrees_with_verify(tmp_path):
    from tests.oracle.courier_auth import real_authdaemond, write_authdaemonrc

    pw = "Pässwort-1".encode()
    users: dict[str, str] = {}
    for scheme in ("des", "md5-crypt", "md5-crypt-5", "{MD5}", "{MD5RAW}", "{SHA}", "{SSHA}",
                   "{SHA256}", "{SHA512}"):  # fmt: skip
        users[f"u{len(users)}"] = hash_password(pw, scheme)
    users["sha256crypt"] = hash_password(pw, "sha256-crypt", rounds=1000)
    users["sha512crypt"] = hash_password(pw, "sha512-crypt", rounds=1000)
    users["bcrypt"] = hash_password(pw, "bcrypt", rounds=4)
    users["cryptprefix"] = "{CRYPT}" + hash_password(pw, "md5-crypt")
    users["lowerprefix"] = "{sha}" + hash_password(pw, "{SHA}")[5:]
    # Courier's own MD5-crypt takes any salt; through {CRYPT} libxcrypt refuses it
    users["oddsalt"] = md5_crypt_hash(pw, b"ab!d")
    users["oddsaltcrypt"] = "{CRYPT}" + users["oddsalt"]
    # values Courier must reject although they "contain" the password
    users["cleartext"] = pw.decode()
    users["upperhex"] = "{MD5RAW}" + hashlib.md5(pw).hexdigest().upper()
    users["longsalt"] = (
        "{SSHA}" + base64.b64encode(hashlib.sha1(pw + b"12345678").digest() + b"12345678").decode()
    )
    etc = tmp_path / "etc"
    write_authdaemonrc(etc)
    home = tmp_path / "home"
    home.mkdir()
    lines = [
        f"{name}\tuid=5000|gid=5000|home={home}|systempw={stored}\n"
        for name, stored in users.items()
    ]
    secrets = {f"hmac-{a}pw": hmac_secret(pw, a) for a in ("md5", "sha1", "sha256")}
    lines.append(
        f"cram\tuid=5000|gid=5000|home={home}|"
        + "|".join(f"{k}={v}" for k, v in secrets.items())
        + "\n"
    )
    userdb = etc / "userdb"
    userdb.write_text("".join(lines))
    userdb.chmod(0o600)
    with real_authdaemond(etc) as ns:
        built = ns.run(["makeuserdb"])
        assert built.returncode == 0, built.stderr
        for name, stored in users.items():
            courier_says = _login(ns.socket, name, pw)
            assert courier_says is verify(pw, stored), (name, stored)
            expected = name not in ("cleartext", "upperhex", "longsalt", "oddsaltcrypt")
            assert courier_says is expected, (name, stored)
            assert _login(ns.socket, name, b"Q" + pw[1:]) is False  # DES reads 8 bytes
        for algo in ("md5", "sha1", "sha256"):
            assert _cram(ns.socket, "cram", pw, algo), algo
            assert not _cram(ns.socket, "cram", pw + b"x", algo), algo


def test_closed_stdin_like_courier():
    def close_stdin() -> None:
        os.close(0)

    real = subprocess.run(
        ["userdbpw"], executable=require(REAL), capture_output=True, preexec_fn=close_stdin
    )
    ours = subprocess.run([*OURS], cwd=REPO, capture_output=True, preexec_fn=close_stdin)
    assert (real.returncode, real.stdout, real.stderr) == (1, b"", b"")
    assert (ours.returncode, ours.stdout, ours.stderr) == (1, b"", b"")


def test_help_is_ours() -> None:
    """Courier calls --help an invalid argument; ours prints a usage summary (differences.md)."""
    real = run(real_cmd(), ["--help"], b"")
    assert real.returncode == 1 and b"invalid argument" in real.stderr
    ours = run(OURS, ["--help"], b"")
    assert ours.returncode == 0
    assert ours.stdout.startswith(b"Usage: userdbpw [-md5 | -hmac-md5")
