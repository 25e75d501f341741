"""imapd over a real socket: greeting, pre-auth commands, LOGIN/AUTHENTICATE through
our authdaemond, failed logins, disableimap, temporary auth failure, hand-over
from a login stage (AUTHENTICATED/IMAPLOGINTAG)."""

from __future__ import annotations

import base64
import time

import pytest

from courierpy.imap import texts
from tests.integration.imapd_support import ImapdListener, RawClient, base_env, preauth_env

CAPS = (b"IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES SORT "
        b"QUOTA IDLE ACL ACL2=UNION ENABLE UTF8=ACCEPT")
GREETING = (b"* OK [CAPABILITY " + CAPS + b"] Courier-IMAP ready. Copyright 1998-2019 Double "
            b"Precision, Inc.  See COPYING for distribution information.")


@pytest.fixture
def server(instance):
    instance.add_user("erin", "erinpw")
    instance.add_user("dave", "davepw", options="disableimap=1")
    instance.make_userdb()
    with instance.start_authdaemond():
        env = base_env(COURIER_CONFDIR=str(instance.confdir))
        with ImapdListener([], env) as port:
            yield port


def test_greeting_and_preauth_commands(server):
    with RawClient(server) as c:
        assert c.line() == GREETING
        assert c.command("a1", "CAPABILITY") == [b"* CAPABILITY " + CAPS,
                                                 b"a1 OK CAPABILITY completed"]
        assert c.command("a2", "NOOP") == [b"a2 OK NOOP completed"]
        assert c.command("a3", "SELECT INBOX") == [b"a3 BAD " + texts.ERROR_IN_COMMAND.encode()]
        assert c.command("a4", "FOO") == [b"a4 BAD " + texts.ERROR_IN_COMMAND.encode()]
        assert c.command("a5", "LOGOUT") == [b"* BYE Courier-IMAP server shutting down",
                                             b"a5 OK LOGOUT completed"]
        assert c.at_eof()


def test_login_failed_then_ok(server):
    with RawClient(server) as c:
        c.line()
        assert c.command("a1", "LOGIN erin wrong") == [b"a1 NO Login failed."]
        assert c.command("a2", "LOGIN ERIN erinpw") == [b"a2 NO Login failed."]
        assert c.command("a3", 'LOGIN "erin" "erinpw"') == [b"a3 OK LOGIN Ok."]
        out = c.command("a4", "SELECT INBOX")
        assert out[-1] == b"a4 OK [READ-WRITE] Ok"
        assert b"* 0 EXISTS" in out
        assert c.command("a5", "LOGIN erin erinpw") == [
            b"a5 BAD " + texts.ERROR_IN_COMMAND.encode()]


def test_login_literals(server):
    with RawClient(server) as c:
        c.line()
        c.send(b"a1 LOGIN {4}\r\n")
        assert c.line() == b"+ OK"
        c.send(b"erin {6}\r\n")
        assert c.line() == b"+ OK"
        c.send(b"erinpw\r\n")
        assert c.line() == b"a1 OK LOGIN Ok."


def test_authenticate_plain_and_login(server):
    with RawClient(server) as c:
        c.line()
        c.send(b"a1 AUTHENTICATE PLAIN\r\n")
        assert c.line() == b"+ "
        c.send(base64.b64encode(b"\0erin\0erinpw") + b"\r\n")
        assert c.line() == b"a1 OK LOGIN Ok."
    with RawClient(server) as c:
        c.line()
        ir = base64.b64encode(b"\0erin\0erinpw").decode()
        assert c.command("a2", f"AUTHENTICATE PLAIN {ir}") == [b"a2 OK LOGIN Ok."]
    with RawClient(server) as c:
        c.line()
        c.send(b"a1 AUTHENTICATE LOGIN\r\n")
        assert c.line() == b"+ VXNlcm5hbWU6"
        c.send(base64.b64encode(b"erin") + b"\r\n")
        assert c.line() == b"+ UGFzc3dvcmQ6"
        c.send(base64.b64encode(b"nope") + b"\r\n")
        assert c.line() == b"a1 NO Login failed."


def test_authenticate_cram_cancelled(server):
    with RawClient(server) as c:
        c.line()
        c.send(b"a1 AUTHENTICATE CRAM-MD5\r\n")
        challenge = c.line()
        assert challenge.startswith(b"+ ")
        assert base64.b64decode(challenge[2:]).startswith(b"<")
        c.send(b"*\r\n")
        assert c.line() == b"a1 NO Login failed."


def test_disableimap(server):
    with RawClient(server) as c:
        c.line()
        c.send(b"a1 LOGIN dave davepw\r\n")
        assert c.line() == b"a1 OK LOGIN Ok."
        assert c.line() == b"* BYE IMAP access disabled for this account."
        assert c.at_eof()


def test_failed_login_waits(instance):
    instance.add_user("erin", "erinpw")
    instance.make_userdb()
    with instance.start_authdaemond():
        env = base_env(COURIER_CONFDIR=str(instance.confdir), COURIERPY_LOGIN_FAIL_DELAY="0.5")
        with ImapdListener([], env) as port, RawClient(port) as c:
            c.line()
            t0 = time.monotonic()
            assert c.command("a1", "LOGIN erin bad") == [b"a1 NO Login failed."]
            assert time.monotonic() - t0 >= 0.5


def test_authdaemond_down_is_temporary_problem(instance):
    env = base_env(COURIER_CONFDIR=str(instance.confdir), TIMEOUT_SOCK="1")
    with ImapdListener([], env) as port, RawClient(port) as c:
        c.line()
        c.send(b"a1 LOGIN erin erinpw\r\n")
        assert c.line() == b"* BYE Temporary problem, please try again later"
        assert c.at_eof()


def test_preauth_handover(tmp_path):
    from tests.integration.imapd_support import make_maildir

    make_maildir(tmp_path / "Maildir")
    with ImapdListener(["Maildir"], preauth_env(), tmp_path) as port, RawClient(port) as c:
        assert c.line() == b"* PREAUTH Ready."
        assert c.command("a1", "LIST \"\" \"*\"") == [
            b'* LIST (\\Unmarked \\HasNoChildren) "." "INBOX"', b"a1 OK LIST completed"]
    env = preauth_env(IMAPLOGINTAG="x17")
    with ImapdListener(["Maildir"], env, tmp_path) as port, RawClient(port) as c:
        assert c.line() == b"x17 OK LOGIN Ok."
        assert c.command("a1", "NOOP") == [b"a1 OK NOOP completed"]


def test_sticky_home_refused(tmp_path):
    from tests.integration.imapd_support import make_maildir

    make_maildir(tmp_path / "Maildir")
    tmp_path.chmod(0o1755)
    try:
        with ImapdListener(["Maildir"], preauth_env(), tmp_path) as port, RawClient(port) as c:
            assert c.line() == b"* BYE " + texts.STICKY_HOME.encode()
            assert c.at_eof()
    finally:
        tmp_path.chmod(0o755)


def test_bad_input(tmp_path):
    from tests.integration.imapd_support import make_maildir

    make_maildir(tmp_path / "Maildir")
    with ImapdListener(["Maildir"], preauth_env(), tmp_path) as port:
        with RawClient(port) as c:
            c.line()
            assert c.command("a1", 'CREATE "INBOX.a/b"') == [b"a1 NO Invalid mailbox name."]
            # "INBOX.." is a hierarchy placeholder for "INBOX.": Courier's text has no period
            assert c.command("a2", 'CREATE "INBOX.."') == [b"a2 NO Invalid mailbox name"]
            assert c.command("a3", 'SELECT "INBOX.../../x"') == [
                b"a3 NO Mailbox does not exist, or must be subscribed to."]
            assert c.command("a4", "FETCH 1 FLAGS") == [
                b"a4 BAD " + texts.ERROR_IN_COMMAND.encode()]
            out = c.command("a5", "APPEND INBOX {4294967295}")
            assert out[-1].startswith(b"a5 NO [TOOBIG]")
            c.send(b"a6 " + b"x" * 200000 + b"\r\n")
            assert c.line().startswith(b"* BYE")
            assert c.at_eof()


def test_login_drops_privileges_and_applies_umask(instance, tmp_path_factory):
    """As root, LOGIN becomes the account (uid/gid 12345) before touching mail."""
    import os
    import shutil
    import tempfile
    from pathlib import Path

    from tests.integration.imapd_support import make_maildir
    from tests.support import require_root

    require_root("changes file owners and uids")
    home = Path(tempfile.mkdtemp(prefix="imapd-priv-", dir="/tmp"))
    try:
        home.chmod(0o755)
        make_maildir(home / "Maildir")
        for p in [home, *home.rglob("*")]:
            os.chown(p, 12345, 12345)
        instance.add_user("frank", "frankpw", uid="12345", gid="12345", home=str(home),
                          mail=str(home / "Maildir"))
        instance.make_userdb()
        with instance.start_authdaemond():
            env = base_env(COURIER_CONFDIR=str(instance.confdir), IMAP_UMASK="077",
                           IMAP_MAILBOX_SANITY_CHECK="1")
            with ImapdListener([], env) as port, RawClient(port) as c:
                c.line()
                assert c.command("a1", "LOGIN frank frankpw") == [b"a1 OK LOGIN Ok."]
                assert c.command("a2", "CREATE INBOX.Sent") == [b'a2 OK "INBOX.Sent" created.']
                c.send(b"a3 APPEND INBOX {12}\r\n")
                assert c.line() == b"+ OK"
                c.send(b"Subject: x\r\n\r\n")
                assert c.line().startswith(b"a3 OK [APPENDUID ")
        made = [home / "Maildir" / ".Sent", *(home / "Maildir" / "cur").iterdir(),
                home / "Maildir" / "courierimapuiddb"]
        for p in made:
            st = p.stat()
            assert (st.st_uid, st.st_gid) == (12345, 12345), p
        msg = next((home / "Maildir" / "cur").iterdir())
        assert msg.stat().st_mode & 0o077 == 0
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_mailbox_sanity_check(tmp_path):
    """IMAP_MAILBOX_SANITY_CHECK=1: a Maildir owned by someone else is refused."""
    import os

    from tests.integration.imapd_support import make_maildir
    from tests.support import require_root

    require_root("changes file owners and uids")
    make_maildir(tmp_path / "Maildir")
    os.chown(tmp_path / "Maildir", 12345, 12345)
    env = preauth_env(IMAP_MAILBOX_SANITY_CHECK="1")
    with ImapdListener(["Maildir"], env, tmp_path) as port, RawClient(port) as c:
        assert c.line() == (b"* BYE [ALERT] Fatal error: Account's mailbox directory is not "
                            b"owned by the correct uid or gid: ")
        assert c.at_eof()
    with ImapdListener(["Nope"], env, tmp_path) as port, RawClient(port) as c:
        assert c.line() == (b"* BYE [ALERT] Fatal error: No such file or directory: "
                            b"No such file or directory")
        assert c.at_eof()


def test_authenticate_cram_md5_success(instance):
    import hashlib
    import hmac

    from authdaemon.passwords import hmac_secret

    instance.add_user("carol", "carolpw", **{"hmac-md5pw": hmac_secret("carolcram", "md5")})
    instance.make_userdb()
    with instance.start_authdaemond():
        env = base_env(COURIER_CONFDIR=str(instance.confdir))
        with ImapdListener([], env) as port, RawClient(port) as c:
            c.line()
            c.send(b"a1 AUTHENTICATE CRAM-MD5\r\n")
            challenge = base64.b64decode(c.line()[2:])
            digest = hmac.new(b"carolcram", challenge, hashlib.md5).hexdigest()
            c.send(base64.b64encode(f"carol {digest}".encode()) + b"\r\n")
            assert c.line() == b"a1 OK LOGIN Ok."
            assert c.command("a2", "SELECT INBOX")[-1] == b"a2 OK [READ-WRITE] Ok"


def test_starttls_then_login(instance, tmp_path):
    """IMAP_STARTTLS=YES with a certificate: STARTTLS, then the TLS capability list."""
    import imaplib
    import ssl
    import subprocess

    from tests.support import require

    openssl = require("openssl", "makes the test certificate")
    pem = tmp_path / "imapd.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", str(pem), "-out", str(pem)],
                   check=True, capture_output=True)
    instance.add_user("erin", "erinpw")
    instance.make_userdb()
    with instance.start_authdaemond():
        env = base_env(COURIER_CONFDIR=str(instance.confdir), IMAP_STARTTLS="YES",
                       IMAP_TLS_REQUIRED="1", TLS_CERTFILE=str(pem))
        with ImapdListener([], env) as port:
            with RawClient(port) as c:
                greeting = c.line()
                assert b" STARTTLS LOGINDISABLED ENABLE UTF8=ACCEPT]" in greeting
                assert c.command("a1", "LOGIN erin erinpw") == [b"a1 NO STARTTLS required"]
            m = imaplib.IMAP4("127.0.0.1", port)
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            assert m.starttls(ssl_context=ctx)[0] == "OK"
            caps = m.capability()[1][0]
            assert b"AUTH=PLAIN" in caps and b"STARTTLS" not in caps
            assert m.login("erin", "erinpw")[0] == "OK"
            assert m.select("INBOX")[0] == "OK"
            m.append("INBOX", None, None, b"Subject: tls\r\n\r\n" + b"x" * 100000 + b"\r\n")
            m.select("INBOX")
            data = m.fetch("1", "(BODY.PEEK[])")[1][0][1]
            assert data.endswith(b"x" * 100000 + b"\r\n")
            m.logout()
