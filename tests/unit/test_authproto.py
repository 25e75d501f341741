"""The authdaemon wire protocol core: encoders, both incremental parsers, limits.

Expected bytes are the ones captured from the real Courier
(/work/shared/spec/courier-transcripts/authdaemon-*.txt) or probed on it.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courierpy import authproto as p

ALICE_REPLY = (
    b"UID=5000\nGID=5000\nHOME=/srv/vmail/alice\nADDRESS=alice\n"
    b"MAILDIR=/srv/vmail/alice/Maildir\nPASSWD=$1$KNpH8wyx$fULtihaYFZUPtYzNwSq7w0\n"
    b"PASSWD2=alicepw\n.\n"
)
CAROL_PRE = (
    b"UID=5000\nGID=5000\nHOME=/srv/vmail/carol\nADDRESS=carol\nNAME=Carol Example\n"
    b"MAILDIR=/srv/vmail/carol/Maildir\nQUOTA=5000000S\nPASSWD=QfKig99H7JqrE\n"
    b"OPTIONS=disablepop3=1\n.\n"
)
CRAM_REQUEST = (
    b"AUTH 88\nimap\ncram-md5\nPDEyMzQuNTY3OEB2bT4=\n"
    b"Y2Fyb2wgODVjMzYzYzcxYTlhYmIzYjIwN2MxMGE1NjkyNTUxNDg=\n"
)


def feed_all(data: bytes, step: int | None = None):
    parser = p.RequestParser()
    if step is None:
        return parser.feed(data)
    result = p.NEED_DATA
    for i in range(0, len(data), step):
        result = parser.feed(data[i : i + step])
        if result is not p.NEED_DATA:
            return result
    return result


# -- request encoders: exactly Courier's client strings ---------------------------


def test_encode_pre() -> None:
    assert p.encode_pre("imap", "alice") == b"PRE . imap alice\n"
    assert p.encode_pre("login", "alice", meta=[("TCPREMOTEIP", "::1")]) == (
        b"TCPREMOTEIP=::1\nPRE . login alice\n"
    )
    assert p.encode_pre("imap", "alice", module="authuserdb") == b"PRE authuserdb imap alice\n"


def test_encode_auth_login_matches_capture() -> None:
    assert p.encode_auth("imap", "login", "alice\nalicepw\n") == (
        b"AUTH 25\nimap\nlogin\nalice\nalicepw\n"
    )


def test_encode_auth_cram_matches_capture() -> None:
    data = "PDEyMzQuNTY3OEB2bT4=\nY2Fyb2wgODVjMzYzYzcxYTlhYmIzYjIwN2MxMGE1NjkyNTUxNDg=\n"
    assert p.encode_auth("imap", "cram-md5", data) == CRAM_REQUEST


def test_encode_passwd_and_enumerate() -> None:
    assert p.encode_passwd("imap", "carol", "a", "b") == b"PASSWD imap\tcarol\ta\tb\n"
    assert p.encode_enumerate() == b"ENUMERATE\n"


def test_encoders_refuse_injection() -> None:
    with pytest.raises(ValueError):
        p.encode_pre("imap", "alice\nENUMERATE")
    with pytest.raises(ValueError):
        p.encode_passwd("imap", "a\tb", "x", "y")
    with pytest.raises(ValueError):
        p.encode_pre("imap", "a", meta=[("X", "1\nPRE")])


def test_length_counts_bytes_not_characters() -> None:
    req = p.encode_auth("imap", "login", "jörg\npw\n")
    assert req.startswith(b"AUTH 20\n")
    assert feed_all(req) == p.AuthRequest("imap", "login", "jörg\npw\n")


# -- request parser ----------------------------------------------------------------


@pytest.mark.parametrize("step", [None, 1, 2, 7])
def test_parse_every_request_whole_and_in_pieces(step: int | None) -> None:
    assert feed_all(b"PRE . imap alice\n", step) == p.PreRequest(".", "imap", "alice")
    assert feed_all(b"AUTH 25\nimap\nlogin\nalice\nalicepw\n", step) == p.AuthRequest(
        "imap", "login", "alice\nalicepw\n"
    )
    assert feed_all(b"PASSWD imap\tcarol\told\tnew\n", step) == p.PasswdRequest(
        "imap", "carol", "old", "new"
    )
    assert feed_all(b"TCPREMOTEIP=::1\nENUMERATE\n", step) == p.EnumerateRequest(
        (("TCPREMOTEIP", "::1"),)
    )
    cram = feed_all(CRAM_REQUEST, step)
    assert isinstance(cram, p.AuthRequest) and cram.authtype == "cram-md5"


def test_need_data_until_complete() -> None:
    parser = p.RequestParser()
    for ch in b"AUTH 25\nimap\nlogin\nalice\nalicepw":
        assert parser.feed(bytes([ch])) is p.NEED_DATA
    assert isinstance(parser.feed(b"\n"), p.AuthRequest)
    # anything after the first request is ignored, as by Courier
    assert isinstance(parser.feed(b"PRE . imap bob\n"), p.AuthRequest)


def test_pre_word_splitting_as_courier() -> None:
    # probed on the real authdaemond: extra spaces are skipped; the userid is the rest
    assert feed_all(b"PRE  . imap alice\n") == p.PreRequest(".", "imap", "alice")
    assert feed_all(b"PRE . imap alice extra\n") == p.PreRequest(".", "imap", "alice extra")
    assert feed_all(b"FOO=bar BAZ\nPRE . imap a\n") == p.PreRequest(
        ".", "imap", "a", (("FOO", "bar BAZ"),)
    )


@pytest.mark.parametrize(
    "data",
    [
        b"BOGUS x\n",
        b"pre . imap alice\n",
        b"PRE\n",
        b"PRE . imap\n",
        b"X" * 100 + b"\n",
        b"AUTH abc\n",
        b"AUTH 0\n",
        b"AUTH -1\n",
        b"AUTH 8192\n",
        b"AUTH 5\nimap\n",  # no authtype line inside the counted body
        b"PASSWD imap\tcarol\told\n",
    ],
)
def test_requests_courier_hangs_up_on(data: bytes) -> None:
    with pytest.raises(p.RequestError):
        feed_all(data)


@pytest.mark.parametrize(
    "data",
    [
        b"PASSWD imap\tcarol\tx\x01\tnew\n",
    ],
)
def test_requests_courier_answers_fail(data: bytes) -> None:
    assert isinstance(feed_all(data), p.BadRequest)


@pytest.mark.parametrize("header", [b"AUTH 27x\n", b"AUTH  27\n", b"AUTH 27 \n"])
def test_auth_length_is_read_like_atoi(header: bytes) -> None:
    # probed on the real authdaemond: all three authenticate
    req = feed_all(header + b"imap\nlogin\ncarol\ncarolimap\n")
    assert req == p.AuthRequest("imap", "login", "carol\ncarolimap\n")


def test_line_limit_is_bufsiz_minus_one() -> None:
    ok = b"PRE . imap " + b"a" * (p.LINE_MAX - 12) + b"\n"
    assert len(ok) == p.LINE_MAX
    assert isinstance(feed_all(ok), p.PreRequest)
    with pytest.raises(p.RequestError):
        feed_all(b"PRE . imap " + b"a" * (p.LINE_MAX - 11) + b"\n")
    # without any LF the parser gives up as soon as the buffer is full
    parser = p.RequestParser()
    assert parser.feed(b"X" * (p.LINE_MAX - 1)) is p.NEED_DATA
    with pytest.raises(p.RequestError):
        parser.feed(b"X")


def test_auth_limit() -> None:
    body = b"imap\nlogin\nalice\n" + b"p" * (p.AUTH_MAX - 17)
    assert isinstance(feed_all(b"AUTH %d\n" % p.AUTH_MAX + body), p.AuthRequest)


def test_many_meta_lines_are_fine() -> None:
    assert isinstance(feed_all(b"FOO=bar\n" * 2000 + b"PRE . imap a\n", 4096), p.PreRequest)


@given(st.binary(max_size=300), st.integers(1, 17))
def test_garbage_never_crashes(data: bytes, step: int) -> None:
    try:
        result = feed_all(data, step)
    except p.RequestError:
        return
    assert result is p.NEED_DATA or isinstance(
        result,
        (p.PreRequest, p.AuthRequest, p.PasswdRequest, p.EnumerateRequest, p.BadRequest),
    )


@given(
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\x00"),
        min_size=1,
        max_size=40,
    )
)
def test_auth_roundtrip(password: str) -> None:
    req = p.encode_auth("imap", "login", f"alice\n{password}\n")
    parsed = feed_all(req, 3)
    assert isinstance(parsed, p.AuthRequest)
    assert p.parse_login(parsed.authdata) == ("alice", password)


def test_parse_login_and_cram() -> None:
    assert p.parse_login("alice\nalicepw") == ("alice", "alicepw")  # final LF optional
    assert p.parse_login("alice") is None
    challenge, user, digest = p.parse_cram(
        "PDEyMzQuNTY3OEB2bT4=\nY2Fyb2wgODVjMzYzYzcxYTlhYmIzYjIwN2MxMGE1NjkyNTUxNDg=\n"
    )
    assert (challenge, user, digest) == (
        b"<1234.5678@vm>",
        "carol",
        "85c363c71a9abb3b207c10a569255148",
    )
    assert p.parse_cram("not base64!\nxx\n") is None
    assert p.parse_cram("") is None


# -- replies -----------------------------------------------------------------------


def test_encode_authinfo_matches_captures() -> None:
    alice = p.AuthInfo(
        uid=5000,
        gid=5000,
        home="/srv/vmail/alice",
        address="alice",
        maildir="/srv/vmail/alice/Maildir",
        passwd="$1$KNpH8wyx$fULtihaYFZUPtYzNwSq7w0",
        passwd2="alicepw",
    )
    assert p.encode_authinfo(alice) == ALICE_REPLY
    carol = p.AuthInfo(
        uid=5000,
        gid=5000,
        home="/srv/vmail/carol",
        address="carol",
        fullname="Carol Example",
        maildir="/srv/vmail/carol/Maildir",
        quota="5000000S",
        passwd="QfKig99H7JqrE",
        options="disablepop3=1",
    )
    assert p.encode_authinfo(carol) == CAROL_PRE
    assert p.encode_authinfo(p.AuthInfo(gid=1, home="/h", sysusername="bob")) == (
        b"USERNAME=bob\nGID=1\nHOME=/h\n.\n"
    )


@pytest.mark.parametrize("step", [1, 5, 1000])
def test_reply_parser_roundtrip(step: int) -> None:
    for reply in (ALICE_REPLY, CAROL_PRE):
        parser = p.ReplyParser()
        done = False
        for i in range(0, len(reply), step):
            assert not done
            done = parser.feed(reply[i : i + step])
        assert done
        assert p.encode_authinfo(parser.result()) == reply


def test_reply_parser_fail_short_and_lenient() -> None:
    parser = p.ReplyParser()
    assert parser.feed(b"FAIL\n") and isinstance(parser.result(), p.Fail)
    short = p.ReplyParser()
    assert not short.feed(b"UID=5000\nGID=5000\n")
    with pytest.raises(p.ReplyError):
        short.result()
    lenient = p.ReplyParser()
    lenient.feed(b"junk\nUID=1\nGID=2\nFOO=bar\nHOME=/h\n.\n")
    assert lenient.result() == p.AuthInfo(uid=1, gid=2, home="/h")
    nohome = p.ReplyParser()
    nohome.feed(b"UID=1\nGID=2\n.\n")
    with pytest.raises(p.ReplyError):
        nohome.result()


def test_enumerate_encoding_and_parsing() -> None:
    e = p.EnumEntry("bob", 5000, 5000, "/srv/vmail/bob", "/srv/vmail/bob/Maildir", "")
    line = p.encode_enum_entry(e)
    assert line == b"bob\t5000\t5000\t/srv/vmail/bob\t/srv/vmail/bob/Maildir\t\n"
    reply = p.encode_enum_module("authuserdb") + line + b".\n"
    assert reply.startswith(b"# authuserdb\n\nbob\t")
    assert list(p.parse_enumerate(reply)) == [e]


@pytest.mark.parametrize(
    ("account", "defaults", "merged"),
    [
        (None, None, None),
        ("", "", None),
        ("disablepop3=1", "", "disablepop3=1"),
        (None, "disablewebmail=1", "disablewebmail=1"),
        # probed on the real authdaemond with DEFAULTOPTIONS="disablewebmail=1,disablepop3=0"
        ("disablepop3=1", "disablewebmail=1,disablepop3=0", "disablepop3=1,disablewebmail=1"),
        ("a=1,b", "b=2,c=3", "a=1,b,c=3"),
    ],
)
def test_merge_options(account: str | None, defaults: str | None, merged: str | None) -> None:
    assert p.merge_options(account, defaults) == merged


def test_options_dict() -> None:
    info = p.AuthInfo(gid=1, home="/", options="disableimap=1,group=staff,flag")
    assert info.options_dict() == {"disableimap": "1", "group": "staff", "flag": ""}


def test_parse_enumerate_skips_lines_as_courier_client() -> None:
    # probed by feeding this reply to the real authenumerate through a fake socket
    reply = (
        b"# authuserdb\n\na\t0\t5\t/h\t\t\nb\t5\t0\t/h\t\t\nd\t-1\t5\t/h\t\t\n"
        b"e\tabc\t5\t/h\t\t\nx\t12x\t5\t/h\t\t\ny\t 5\t6\t/h\t\t\nc\t9\t9\n"
        b"f\t7\t7\t\t\t\n# other\n\ng\t8\t8\t/h\n\t1\t1\t/h\n.\n"
    )
    assert list(p.parse_enumerate(reply)) == [
        p.EnumEntry("x", 12, 5, "/h"),
        p.EnumEntry("f", 7, 7, ""),
        p.EnumEntry("g", 8, 8, "/h"),
        p.EnumEntry("", 1, 1, "/h"),
    ]


def test_name_is_gecos_up_to_the_first_comma() -> None:
    info = p.AuthInfo(uid=1, gid=1, home="/h", fullname="Carol Example,Room 1,555")
    assert p.encode_authinfo(info) == b"UID=1\nGID=1\nHOME=/h\nNAME=Carol Example\n.\n"
