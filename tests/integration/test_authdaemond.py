"""Our authdaemond as a real process on a real socket, driven by our client and CLIs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import signal
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from passlib.hash import md5_crypt

from authdaemon.passwords import hmac_secret, verify
from courierpy.authclient import (
    AuthClient,
    AuthConnectError,
    AuthFailed,
    AuthTempFail,
    Timeouts,
    cram_response_b64,
)
from tests.instance import AuthdaemondProcess, Instance
from tests.support import REPO

BIN = REPO / ".venv" / "bin"


#: The accounts' ids (the daemon does not switch to them; Courier's client
#: library ignores accounts with uid or gid 0, so the tests avoid root's).
UID, GID = 5000, 5001
IDS = {"uid": str(UID), "gid": str(GID)}


@pytest.fixture
def users(instance: Instance) -> Instance:
    instance.add_user("alice", "alicepw", **IDS)
    instance.add_user(
        "carol",
        "carolpw",
        **IDS,
        quota="5000000S",
        options="disablepop3=1",
        gecos="Carol Example,Room 1",
        imappw=md5_crypt.hash("carolimap"),
        **{"hmac-md5pw": hmac_secret("carolcram", "md5")},
    )
    instance.make_userdb()
    return instance


@pytest.fixture
def daemon(users: Instance) -> Iterator[AuthdaemondProcess]:
    with users.start_authdaemond() as d:
        yield d


@pytest.fixture
def client(users: Instance, daemon: AuthdaemondProcess) -> AuthClient:
    return AuthClient(users.socket_path, Timeouts(2, 2, 5))


def raw(instance: Instance, data: bytes, timeout: float = 5) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(instance.socket_path))
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def test_socket_pid_and_permissions(users: Instance, daemon: AuthdaemondProcess) -> None:
    mode = os.stat(users.socket_path).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o777
    assert stat.S_IMODE(os.stat(users.authdaemonvar).st_mode) == 0o750
    assert int((users.authdaemonvar / "pid").read_text()) == daemon.proc.pid
    log = daemon.log()
    assert 'INFO: modules="authuserdb", daemons=5' in log
    assert "INFO: Installation complete: authuserdb" in log


def test_pre(users: Instance, client: AuthClient) -> None:
    info = client.pre("imap", "carol")
    assert info.uid == UID and info.gid == GID
    assert info.home == str(users.users["carol"].home)
    assert info.address == "carol" and info.fullname == "Carol Example"
    assert info.quota == "5000000S" and info.options == "disablepop3=1"
    assert verify("carolimap", info.passwd)  # imappw overrides systempw for imap
    assert verify("carolpw", client.pre("login", "carol").passwd)
    assert info.passwd2 is None
    with pytest.raises(AuthFailed):
        client.pre("imap", "CAROL")  # case-sensitive
    with pytest.raises(AuthFailed):
        client.pre("imap", "nosuch")


def test_external_is_a_lookup(client: AuthClient) -> None:
    info = client.external("imap", "alice")
    assert info.address == "alice" and info.passwd2 is None
    with pytest.raises(AuthFailed):
        client.external("imap", "nosuch")


def test_pre_module_selection(users: Instance, client: AuthClient) -> None:
    assert client.pre("imap", "alice", module="authuserdb").address == "alice"
    with pytest.raises(AuthFailed):
        client.pre("imap", "alice", module="authpam")


def test_login(client: AuthClient) -> None:
    info = client.login("imap", "alice", "alicepw")
    assert info.passwd2 == "alicepw" and info.address == "alice"
    with pytest.raises(AuthFailed):
        client.login("imap", "alice", "wrong")
    with pytest.raises(AuthFailed):
        client.login("imap", "nosuch", "x")
    assert client.login("imap", "carol", "carolimap").passwd2 == "carolimap"
    with pytest.raises(AuthFailed):
        client.login("imap", "carol", "carolpw")  # systempw is not imap's password
    with pytest.raises(AuthFailed):
        client.login("pop3", "carol", "carolimap")
    assert client.login("pop3", "carol", "carolpw").options == "disablepop3=1"


def test_cram_md5(users: Instance, client: AuthClient) -> None:
    challenge = b"<1234.5678@vm>"
    digest = hmac.new(b"carolcram", challenge, hashlib.md5).hexdigest()
    ch64 = base64.b64encode(challenge).decode()
    info = client.cram("imap", "cram-md5", ch64, cram_response_b64("carol", digest))
    # as captured from Courier: no NAME, QUOTA or PASSWD on a CRAM success
    assert (info.fullname, info.quota, info.passwd, info.passwd2) == (None, None, None, None)
    assert info.options == "disablepop3=1" and info.address == "carol"
    bad = hmac.new(b"wrong", challenge, hashlib.md5).hexdigest()
    with pytest.raises(AuthFailed):
        client.cram("imap", "cram-md5", ch64, cram_response_b64("carol", bad))
    with pytest.raises(AuthFailed):  # alice has no hmac-md5pw
        client.cram("imap", "cram-md5", ch64, cram_response_b64("alice", digest))


def test_passwd(users: Instance, client: AuthClient) -> None:
    with pytest.raises(AuthFailed):
        client.passwd("imap", "carol", "wrong", "new")
    client.passwd("imap", "carol", "carolimap", "carolimap2")
    assert client.login("imap", "carol", "carolimap2").passwd.startswith("$1$")
    with pytest.raises(AuthFailed):
        client.login("imap", "carol", "carolimap")
    assert client.login("login", "carol", "carolpw")  # systempw untouched
    text = users.userdb.read_text()
    assert "imappw=$1$" in text
    client.passwd("login", "alice", "alicepw", "alice2")
    assert client.login("imap", "alice", "alice2")


def test_enumerate(users: Instance, client: AuthClient) -> None:
    entries = {e.name: e for e in client.enumerate()}
    assert set(entries) == {"alice", "carol"}
    carol = entries["carol"]
    assert carol.home == str(users.users["carol"].home)
    assert carol.maildir == str(users.users["carol"].maildir)
    assert carol.options == "disablepop3=1"
    reply = raw(users, b"ENUMERATE\n")
    assert reply.startswith(b"# authuserdb\n\n") and reply.endswith(b"\n.\n")


def test_meta_line_and_exact_reply(users: Instance, daemon: AuthdaemondProcess) -> None:
    alice = users.users["alice"]
    reply = raw(users, b"TCPREMOTEIP=::1\nPRE . imap alice\n")
    expected = (
        f"UID={UID}\nGID={GID}\nHOME={alice.home}\nADDRESS=alice\n"
        f"MAILDIR={alice.maildir}\nPASSWD={alice.fields['systempw']}\n.\n"
    ).encode()
    assert reply == expected
    # a second request pipelined on the same connection is ignored
    assert raw(users, b"PRE . imap alice\nPRE . imap carol\n") == expected


@pytest.mark.parametrize(
    ("request_bytes", "reply"),
    [
        (b"BOGUS x\n", b""),
        (b"PRE\n", b""),
        (b"AUTH abc\n", b""),
        (b"AUTH 8192\n", b""),
        (b"AUTH 27x\nimap\nlogin\ncarol\ncarolimaq\n", b"FAIL\n"),  # read as 27
        (b"AUTH 19\nimap\nbogus\ncarol\nxx\n", b"FAIL\n"),
        (b"AUTH 11\nimap\nlogin\n", b"FAIL\n"),
        (b"PASSWD imap\tcarol\tx\x01\tnew\n", b"FAIL\n"),
        (b"X" * 100_000, b""),
    ],
)
def test_garbage_gets_fail_or_close(
    users: Instance, client: AuthClient, request_bytes: bytes, reply: bytes
) -> None:
    try:
        got = raw(users, request_bytes)
    except (BrokenPipeError, ConnectionResetError):
        got = b""
    assert got == reply
    assert client.login("imap", "alice", "alicepw")  # still serving


def _silent_clients(instance: Instance, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(instance.socket_path))
        socks.append(s)
    return socks


def test_50_concurrent_auth_with_25_silent_clients(users: Instance, client: AuthClient) -> None:
    silent = _silent_clients(users, 25)
    # half-sent requests too: they must not hold anything up either
    for s in silent[:5]:
        s.sendall(b"AUTH 25\nimap\nlo")
    try:

        def one(i: int) -> bool:
            if i % 3 == 2:
                try:
                    client.login("imap", "alice", "wrong")
                except AuthFailed:
                    return True
                return False
            user, pw = ("alice", "alicepw") if i % 3 == 0 else ("carol", "carolimap")
            return client.login("imap", user, pw).address == user

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=50) as pool:
            results = list(pool.map(one, range(50)))
        assert all(results)
        # the silent clients hold a 10 s read timeout; nobody waited for it
        assert time.monotonic() - started < 8
    finally:
        for s in silent:
            s.close()


def test_silent_client_is_dropped_after_10s(users: Instance, daemon: AuthdaemondProcess) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(users.socket_path))
        s.sendall(b"PRE . imap al")
        s.settimeout(15)
        started = time.monotonic()
        assert s.recv(100) == b""
        assert 9.5 <= time.monotonic() - started < 12


def test_temp_failure_and_no_daemon(users: Instance) -> None:
    client = AuthClient(users.socket_path, Timeouts(1, 1, 1))
    with pytest.raises(AuthConnectError):
        client.pre("imap", "alice")
    # a server that closes without a word is a temporary failure
    path = users.root / "mute.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as srv:
        srv.bind(str(path))
        srv.listen(1)

        def serve() -> None:
            conn, _ = srv.accept()
            conn.recv(100)
            conn.close()

        t = threading.Thread(target=serve)
        t.start()
        with pytest.raises(AuthTempFail) as exc:
            AuthClient(path, Timeouts(1, 1, 1)).login("imap", "alice", "x")
        assert not isinstance(exc.value, AuthFailed)
        t.join()


def test_defaultoptions_and_sighup(users: Instance, client: AuthClient) -> None:
    users.set_config("authdaemonrc", DEFAULTOPTIONS="disablewebmail=1,disablepop3=0")
    pid = int((users.authdaemonvar / "pid").read_text())
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if client.pre("imap", "alice").options:
            break
        time.sleep(0.05)
    assert client.pre("imap", "alice").options == "disablewebmail=1,disablepop3=0"
    assert client.pre("imap", "carol").options == "disablepop3=1,disablewebmail=1"
    assert {e.name: e.options for e in client.enumerate()}["carol"] == (
        "disablepop3=1,disablewebmail=1"
    )


def test_userdb_rebuild_is_picked_up(users: Instance, client: AuthClient) -> None:
    with pytest.raises(AuthFailed):
        client.pre("imap", "dave")
    users.add_user("dave", "davepw", **IDS)
    users.make_userdb()
    assert client.login("imap", "dave", "davepw").address == "dave"


def test_unknown_module_is_a_startup_error(users: Instance) -> None:
    users.set_config("authdaemonrc", authmodulelist="authuserdb authnosuch")
    proc = subprocess.run(
        [BIN / "authdaemond", "--config-dir", users.confdir],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert proc.returncode == 78
    assert "authnosuch" in proc.stderr
    assert not users.socket_path.exists()


@pytest.mark.parametrize("level", ["1", "2"])
def test_debug_login_never_leaks_passwords_below_2(users: Instance, level: str) -> None:
    users.set_config("authdaemonrc", DEBUG_LOGIN=level)
    with users.start_authdaemond() as d:
        client = AuthClient(users.socket_path, Timeouts(2, 2, 5))
        with pytest.raises(AuthFailed):
            client.login("imap", "alice", "s3cretGuess")
        client.login("imap", "alice", "alicepw")
        time.sleep(0.1)
        log = d.log()
    assert "DEBUG: received auth request, service=imap, authtype=login" in log
    assert ("s3cretGuess" in log) == (level == "2")


def children(pid: int) -> list[str]:
    """Live child processes of *pid*, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat_line = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat_line.rsplit(")", 1)[1].split()
        if fields[1] == str(pid) and fields[0] != "Z":
            found.append(entry)
    return found


def test_dead_worker_is_replaced(users: Instance, daemon: AuthdaemondProcess) -> None:
    deadline = time.monotonic() + 5
    while len(workers := children(daemon.proc.pid)) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)  # the socket listens before the workers are forked
    assert len(workers) == 5
    for pid in workers[:3]:
        os.kill(int(pid), signal.SIGKILL)
    client = AuthClient(users.socket_path, Timeouts(2, 2, 5))
    for _ in range(20):
        assert client.login("imap", "alice", "alicepw")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        now = children(daemon.proc.pid)
        if len(now) == 5 and not set(now) & set(workers[:3]):
            break
        time.sleep(0.05)
    assert len(now) == 5 and not set(now) & set(workers[:3])


def test_second_daemon_refuses_to_start(users: Instance, daemon: AuthdaemondProcess) -> None:
    proc = subprocess.run(
        [BIN / "authdaemond", "--config-dir", users.confdir],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert proc.returncode != 0 and "already running" in proc.stderr
    assert users.auth_client().pre("imap", "alice")


# -- the CLIs ------------------------------------------------------------------------


def run_cli(
    instance: Instance, *argv: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / argv[0]), *argv[1:]],
        input=stdin,
        capture_output=True,
        text=True,
        env=instance.env(),
        timeout=30,
    )


def test_authtest_cli(users: Instance, daemon: AuthdaemondProcess) -> None:
    carol = users.users["carol"]
    r = run_cli(users, "authtest", "-s", "imap", "carol", "carolimap")
    assert r.returncode == 0, r.stderr
    assert r.stdout == (
        "Authentication succeeded.\n\n"
        f"     Authenticated: carol  (uid {UID}, gid {GID})\n"
        f"    Home Directory: {carol.home}\n"
        f"           Maildir: {carol.maildir}\n"
        "             Quota: 5000000S\n"
        f"Encrypted Password: {carol.fields['imappw']}\n"
        "Cleartext Password: carolimap\n"
        "           Options: disablepop3=1\n"
    )
    r = run_cli(users, "authtest", "alice")
    assert r.returncode == 0 and "Cleartext Password: (none)\n" in r.stdout
    for args in (("alice", "bad"), ("nosuch",), ("alice", "bad", "new")):
        r = run_cli(users, "authtest", *args)
        assert (r.returncode, r.stdout) == (1, "")
        assert r.stderr == "Authentication FAILED: Operation not permitted\n"
    r = run_cli(users, "authtest")
    assert r.returncode == 1
    assert r.stderr == "Usage: authtest [-s service] userid [ password [ newpassword ] ]\n"
    r = run_cli(users, "authtest", "-simap", "carol", "carolimap", "newimap")
    assert (r.returncode, r.stderr) == (0, "Password change succeeded.\n")
    assert run_cli(users, "authtest", "-s", "imap", "carol", "newimap").returncode == 0


def test_authtest_without_daemon(users: Instance) -> None:
    r = run_cli(users, "authtest", "alice")
    assert r.returncode == 1
    assert r.stderr == (
        "ERR: authdaemon: s_connect() failed: No such file or directory\n"
        "Authentication FAILED: Invalid argument\n"
    )


def test_authenumerate_cli(users: Instance, daemon: AuthdaemondProcess) -> None:
    users.add_user("erin", "erinpw", options="disableshared=1", **IDS)
    users.make_userdb()
    r = run_cli(users, "authenumerate", "-o")
    assert r.returncode == 0
    lines = sorted(r.stdout.splitlines())
    carol = users.users["carol"]
    assert (
        f"carol\t{UID}\t{GID}\t{carol.home}\t{carol.maildir}\tdisablepop3=1" in lines
    )
    assert len(lines) == 3
    r = run_cli(users, "authenumerate", "-s")
    assert sorted(line.split("\t")[0] for line in r.stdout.splitlines()) == ["alice", "carol"]
    assert all(line.count("\t") == 4 for line in r.stdout.splitlines())
    r = run_cli(users, "authenumerate", "-x")
    assert (r.returncode, r.stderr) == (1, "Usage: authenumerate [-s] [-o]\n")


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("md5", "{MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==\n"),
        ("md5raw", "{MD5RAW}5ebe2294ecd0e0f08eab7690d2a6ee69\n"),
        ("sha256", "{SHA256}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols=\n"),
    ],
)
def test_authpasswd_cli_fixed(instance: Instance, method: str, expected: str) -> None:
    r = run_cli(instance, "authpasswd", method, stdin="secret\nsecret\n")
    assert (r.returncode, r.stdout) == (0, expected)


def test_authpasswd_cli_salted(instance: Instance) -> None:
    r = run_cli(instance, "authpasswd", stdin="secret\nsecret\n")
    assert r.returncode == 0 and r.stdout.startswith("$1$") and verify("secret", r.stdout.strip())
    r = run_cli(instance, "authpasswd", "bogus", stdin="secret\n")
    assert r.stdout.startswith("{SSHA}") and verify("secret", r.stdout.strip())
    r = run_cli(instance, "authpasswd", stdin="")
    assert (r.returncode, r.stdout) == (1, "")


def test_bin_authdaemond_start_stop(users: Instance) -> None:
    script = REPO / "bin" / "authdaemond"
    env = users.env(PATH=f"{BIN}:{os.environ['PATH']}")
    r = subprocess.run([script, "start"], env=env, capture_output=True, text=True, timeout=30)
    try:
        assert r.returncode == 0, r.stderr
        assert AuthClient(users.socket_path).login("imap", "alice", "alicepw")
        pid = int((users.authdaemonvar / "pid").read_text())
        r = subprocess.run([script, "restart"], env=env, capture_output=True, timeout=30)
        assert r.returncode == 0
        new_pid = int((users.authdaemonvar / "pid").read_text())
        assert new_pid != pid
        assert users.auth_client().pre("imap", "alice")
    finally:
        subprocess.run([script, "stop"], env=env, capture_output=True, timeout=30)
    assert not (users.authdaemonvar / "pid").exists()
    assert not users.socket_path.exists()


def test_passwd_in_a_userdb_directory(instance: Instance) -> None:
    """A userdb made of sub-files: the change lands in the account's own file."""
    instance.userdb.unlink()
    (instance.userdb / "staff").mkdir(parents=True, mode=0o700)
    instance.userdb.chmod(0o700)
    home = instance.mailroot / "olga"
    line = (
        f"olga\tuid={UID}|gid={GID}|home={home}|systempw={md5_crypt.hash('olgapw')}\n"
    )
    (instance.userdb / "staff" / "people").write_text(line)
    (instance.userdb / "staff" / "people").chmod(0o600)
    (instance.userdb / "other").write_text(
        f"piet\tuid={UID}|gid={GID}|home={home}|systempw={md5_crypt.hash('pietpw')}\n"
    )
    (instance.userdb / "other").chmod(0o600)
    instance.make_userdb()
    with instance.start_authdaemond():
        client = AuthClient(instance.socket_path, Timeouts(2, 2, 10))
        client.passwd("imap", "olga", "olgapw", "olganew")
        assert client.login("imap", "olga", "olganew")
        with pytest.raises(AuthFailed):
            client.login("imap", "olga", "olgapw")
        assert client.login("imap", "piet", "pietpw")
    people = (instance.userdb / "staff" / "people").read_text()
    assert people.startswith("olga\t") and "systempw=$1$" in people
    other = (instance.userdb / "other").read_text()
    assert other.startswith("piet\t") and other.count("\n") == 1
