"""authdaemon.passwords: Courier's password checks, hashes and CRAM secrets.

The vectors below were produced by independent tools, not by our code:
``openssl passwd -1/-5/-6``, Perl's ``crypt`` (the system libxcrypt), the real
``userdbpw`` and ``authpasswd`` (spec transcripts), and Python's ``hmac``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authdaemon import passwords
from authdaemon.passwords import (
    SCHEMES,
    authpasswd_hash,
    authpasswd_scheme,
    cram_verify,
    cram_verify_cleartext,
    hash_password,
    hmac_secret,
    verify,
)

# (password, stored) pairs that must match; each came from an independent tool.
KNOWN = [
    # real userdbpw (spec transcript userdbpw.txt)
    ("secret", "I7Cmn6wm5K4WU"),
    ("secret", "$1$eXojfYML$1hMGmCEf4BDkcPnTr3lXQ."),
    ("secret", "$1$KecQBNno$J57ye8U4ZZueVSNf1vBh51"),
    # real authpasswd (spec transcript authenumerate-authpasswd.txt)
    ("secret", "{MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ=="),
    ("secret", "{MD5RAW}5ebe2294ecd0e0f08eab7690d2a6ee69"),
    ("secret", "{SHA256}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols="),
    (
        "secret",
        "{SHA512}vSsar3708Jvp9Szi2NWZZ02Bqp1qRCFpbcTZPdBhnWgs5WtNZKnvCXdhztmeD2cmW192CF5bDufKRpayrW/isg==",
    ),
    ("secret", "{SSHA}hS2wgD4mIPU4M9W5OkCz1RighTJ9zxUu"),
    ("secret", "{SSHA}pm5Olb4gI2gkoArGilmNFMe/OFq6YDod"),
    ("secret", "$1$QT8Br$04PI6YWZ/IomPBTWhRR5h0"),
    # openssl passwd
    ("secret", "$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1"),
    ("pässwörd", "$1$ab$bRZzLnQPD1ql12pSoshc71"),
    ("secret", "$5$saltsaltsaltsalt$X0ra9qlY7TJaGBDgorLevriQfwysW8fXnbybcO4mF4/"),
    ("secret", "$5$rounds=1000$salty$06aBYV2eUs1esmJmOQQgv1TMMifACEXHgDCvS/yIVR."),
    (
        "secret",
        "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1",
    ),
    # perl crypt (libxcrypt)
    (
        "secret",
        "$6$rounds=1000$salty$fqJZBxaXwxUSvj0hv7ESR6yY7106btt1ezv9lXimUnzi3rcStZRQ7pQyPR4bwWudplzyCKZxsQyr83BPAjCrI/",
    ),
    ("longpassword123", "xy7XrDVdSINMQ"),
    ("longpass", "xy7XrDVdSINMQ"),  # DES looks at 8 characters only
    ("pässwörd", "AbpfB8hnqbbHk"),
    ("secret", "$2b$04$abcdefghijklmnopqrstuu2r9OfJnfCsdneAXAGHnS4UpFFP8WIrW"),
    ("secret", "$2a$04$abcdefghijklmnopqrstuu2r9OfJnfCsdneAXAGHnS4UpFFP8WIrW"),
    ("secret", "$2y$04$abcdefghijklmnopqrstuu2r9OfJnfCsdneAXAGHnS4UpFFP8WIrW"),
    ("a" * 80, "$2b$04$abcdefghijklmnopqrstuuBzzIgyKkz7xMWYSzkIjUSnxEQFQ0WNe"),
    ("a" * 72, "$2b$04$abcdefghijklmnopqrstuuBzzIgyKkz7xMWYSzkIjUSnxEQFQ0WNe"),
    (b"pw\xe9", "$1$xyz$y6LmQjjiDIIeYH99BhkO5."),
    # forms only libxcrypt knows (perl crypt)
    ("secret", "$y$j9T$abcdefghijklmnop$3dL1LkYnZM.OVXuVdnnaKVDlLYT92dRwOzDZ5XiVCe."),
    ("secret", "$gy$j9T$abcdefghijklmnop$mixfBgwqRYkgJa0E4eWmDF3HC/BbYXm8ztA717oxvqD"),
    ("secret", "$7$CU..../....abcdefghijkl$bxa5X1WCF49g06YYPQblCr7lSXIjP8G8SLULt8dzHS."),
    ("secret", "_J9..abcd/H6HLCcf7nw"),
    ("secret", "$sha1$1000$abcdefgh$ji8ESnkwjcTjo4hThodnLYyi.3yG"),
    ("secret", "$md5$abcdefgh$039tO8IKli6fTXViofrkG1"),
    ("secret", "$3$$878d8014606cda29677a44efa1353fc7"),
    ("secret", "$2x$05$abcdefghijklmnopqrstuuOQiyCxlgf/oeuTqixKmWdcYUh4Hjl0a"),
    # {CRYPT} prefix, in any case, in front of crypt(3) forms
    ("secret", "{CRYPT}I7Cmn6wm5K4WU"),
    ("secret", "{crypt}$1$eXojfYML$1hMGmCEf4BDkcPnTr3lXQ."),
    # braced prefixes in any case
    ("secret", "{md5}Xr4ilOzQ4PCOq3aQ0qbuaQ=="),
    ("secret", "{Md5RaW}5ebe2294ecd0e0f08eab7690d2a6ee69"),
    ("secret", "{ssha}hS2wgD4mIPU4M9W5OkCz1RighTJ9zxUu"),
    ("secret", "{sha}" + base64.b64encode(hashlib.sha1(b"secret").digest()).decode()),
]


@pytest.mark.parametrize(("password", "stored"), KNOWN)
def test_known_vectors_match(password, stored):
    assert verify(password, stored) is True


@pytest.mark.parametrize(("password", "stored"), KNOWN)
def test_known_vectors_reject_wrong_password(password, stored):
    # Change the first byte: DES and bcrypt ignore what lies past 8 / 72 bytes.
    wrong = ("X" + password[1:]) if isinstance(password, str) else b"X" + password[1:]
    assert verify(wrong, stored) is False
    assert verify("", stored) is False


@pytest.mark.parametrize(
    "stored",
    [
        "secret",  # cleartext never matches (Courier: systempw=davepw rejects davepw)
        "",
        "*",
        "!",
        "!$1$eXojfYML$1hMGmCEf4BDkcPnTr3lXQ.",
        "{MD5}",
        "{MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ",  # padding missing: Courier compares text
        "{MD5RAW}5EBE2294ECD0E0F08EAB7690D2A6EE69",  # Courier compares lower-case hex
        "{SSHA}",
        "{SSHA}!!!!",
        "{SSHA}AAA=",
        # an 8-byte salt (some LDAP tools): Courier only ever takes 4
        "{SSHA}"
        + base64.b64encode(hashlib.sha1(b"secret12345678").digest() + b"12345678").decode(),
        "{CRYPT}",
        "{CRYPT}secret",
        "$1$",
        "$1$abc",
        "$1$ab!d$xxxxxxxxxxxxxxxxxxxxxx",
        "$5$",
        "$5$rounds=10$salt$garbage",
        "$6$x$y",
        "$2b$04$short",
        "$2b$99$abcdefghijklmnopqrstuu2r9OfJnfCsdneAXAGHnS4UpFFP8WIrW",
        "$y$garbage",
        "$9$unknown",
        "I7Cmn6wm5K4W!",
        "I7Cmn6wm5K4W",
        "\x00",
        "\udcff\udcfe",
        "é" * 20,
        "$" * 200,
        "{SHA256}" + "A" * 10000,
    ],
)
def test_garbage_and_cleartext_never_match(stored):
    assert verify("secret", stored) is False


@pytest.mark.parametrize("stored", [None, 5, b"$1$abc", b"\xff\xfe", object(), ["x"]])
def test_non_string_stored_values_return_false(stored):
    assert verify("secret", stored) is False  # type: ignore[arg-type]


def test_stored_value_may_be_bytes():
    assert verify("secret", b"I7Cmn6wm5K4WU") is True
    assert verify(b"secret", b"{SSHA}hS2wgD4mIPU4M9W5OkCz1RighTJ9zxUu") is True
    assert verify("secreT", b"I7Cmn6wm5K4WU") is False


def test_password_stops_at_nul_like_a_c_string():
    assert verify("secret\0tail", "I7Cmn6wm5K4WU") is True
    assert verify(b"secret\0", "{MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==") is True
    assert hmac_secret("secret\0x", "md5") == hmac_secret("secret", "md5")


def test_str_and_bytes_passwords_agree():
    stored = hash_password("pässwörd", "{SHA}")
    assert verify("pässwörd".encode(), stored)
    assert verify("pässwörd", stored)


# -- producing hashes ---------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "prefix"),
    [
        (None, "$1$"),
        ("md5", "{MD5}"),
        ("MD5", "{MD5}"),
        ("md5raw", "{MD5RAW}"),
        ("md5r", "{MD5RAW}"),  # Courier compares 5 characters of "{md5r..."
        ("md5rawish", "{MD5RAW}"),
        ("sha", "{SHA}"),
        ("ssha", "{SSHA}"),
        ("sha256", "{SHA256}"),
        ("SHA512", "{SHA512}"),
        ("crypt", "{SSHA}"),
        ("sha1", "{SSHA}"),
        ("bogus", "{SSHA}"),
        ("", "{SSHA}"),
        ("md5x", "{SSHA}"),
    ],
)
def test_authpasswd_methods(method, prefix):
    out = authpasswd_hash("secret", method)
    assert out.startswith(prefix)
    assert verify("secret", out)
    assert not verify("secreT", out)
    assert hash_password("secret", method).startswith(prefix)


def test_authpasswd_default_is_md5_crypt_with_five_char_salt():
    out = authpasswd_hash("secret")
    assert out.startswith("$1$") and len(out.split("$")[2]) == 5
    assert authpasswd_scheme(None) == "md5-crypt-5"


def test_authpasswd_method_is_cut_at_15_characters():
    # "{%1.15s}": a 16th character cannot turn "sha256" into something else.
    assert authpasswd_scheme("sha256" + "x" * 20).startswith("{SSHA}")
    assert authpasswd_scheme("md5raw" + "x" * 20) == "{MD5RAW}"


def test_fixed_outputs_equal_courier_authpasswd():
    assert authpasswd_hash("secret", "md5") == "{MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ=="
    assert authpasswd_hash("secret", "md5raw") == "{MD5RAW}5ebe2294ecd0e0f08eab7690d2a6ee69"
    assert (
        authpasswd_hash("secret", "sha256")
        == "{SHA256}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols="
    )


@pytest.mark.parametrize(
    ("scheme", "shape"),
    [
        ("des", r"^[./0-9A-Za-z]{13}$"),
        ("md5-crypt", r"^\$1\$[./0-9A-Za-z]{8}\$[./0-9A-Za-z]{22}$"),
        ("md5-crypt-5", r"^\$1\$[./0-9A-Za-z]{5}\$[./0-9A-Za-z]{22}$"),
        ("sha256-crypt", r"^\$5\$"),
        ("sha512-crypt", r"^\$6\$"),
        ("bcrypt", r"^\$2b\$\d\d\$[./0-9A-Za-z]{53}$"),
        ("{MD5}", r"^\{MD5\}[A-Za-z0-9+/]{22}==$"),
        ("{MD5RAW}", r"^\{MD5RAW\}[0-9a-f]{32}$"),
        ("{SHA}", r"^\{SHA\}[A-Za-z0-9+/]{27}=$"),
        ("{SSHA}", r"^\{SSHA\}[A-Za-z0-9+/]{32}$"),
        ("{SHA256}", r"^\{SHA256\}[A-Za-z0-9+/]{43}=$"),
        ("{SHA512}", r"^\{SHA512\}[A-Za-z0-9+/]{86}==$"),
    ],
)
def test_scheme_formats(scheme, shape):
    import re

    out = hash_password("secret", scheme)
    assert re.match(shape, out), out
    assert verify("secret", out)
    assert not verify("Secret", out)


@settings(max_examples=80, deadline=None)
@given(
    password=st.binary(max_size=300).map(lambda b: b.replace(b"\0", b"")),
    salt=st.text(alphabet=passwords.CRYPT_ALPHABET, min_size=0, max_size=8),
)
def test_md5_crypt_equals_passlib(password, salt):
    from passlib.hash import md5_crypt

    assert passwords.md5_crypt_hash(password, salt.encode()) == md5_crypt.using(salt=salt).hash(
        password
    )


def test_long_passwords_follow_libxcrypt_and_courier():
    long_pw = b"w" * 600
    # Courier's own MD5-crypt ($1$) and the digest forms take any length...
    for scheme in ("md5-crypt", "{SHA}", "{SSHA}", "{MD5}"):
        assert verify(long_pw, hash_password(long_pw, scheme))
    # ...the crypt(3) forms refuse 512 bytes and more (libxcrypt's limit).
    with pytest.raises(passwords.PasswordTooLongError):
        hash_password(long_pw, "des")
    with pytest.raises(passwords.PasswordTooLongError):
        hash_password(long_pw, "bcrypt")
    md5 = hash_password(long_pw, "md5-crypt")
    assert not verify(long_pw, "{CRYPT}" + md5)  # through crypt(3): refused
    assert verify(b"w" * 511, "{CRYPT}" + hash_password(b"w" * 511, "md5-crypt"))
    des = hash_password(b"w" * 511, "des")
    assert verify(b"w" * 511, des) and not verify(b"w" * 512, des)


def test_md5_crypt_salt_outside_the_alphabet():
    # Courier's own MD5-crypt takes any salt; crypt(3) (reached through {CRYPT}) does not.
    stored = passwords.md5_crypt_hash(b"secret", b"ab!d")
    assert verify("secret", stored)
    assert not verify("secret", "{CRYPT}" + stored)


def test_rounds_are_honoured():
    assert hash_password("pw", "sha256-crypt", rounds=1000).startswith("$5$rounds=1000$")
    assert hash_password("pw", "sha512-crypt", rounds=2000).startswith("$6$rounds=2000$")
    assert hash_password("pw", "bcrypt", rounds=5).startswith("$2b$05$")


def test_salts_are_random():
    for scheme in ("des", "md5-crypt", "{SSHA}"):
        outs = {hash_password("secret", scheme) for _ in range(8)}
        assert len(outs) > 1


FAST_SCHEMES = [s for s in SCHEMES if s not in ("sha256-crypt", "sha512-crypt", "bcrypt")]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(password=st.text(min_size=1, max_size=100), scheme=st.sampled_from(FAST_SCHEMES))
def test_property_hash_then_verify(password, scheme):
    pw = password.split("\0")[0] or "x"
    stored = hash_password(pw, scheme)
    assert verify(pw, stored)
    other = pw + "!"
    if scheme == "des" and len(pw.encode()) >= 8:
        return  # DES ignores everything after 8 bytes
    assert not verify(other, stored)


@settings(max_examples=20, deadline=None)
@given(password=st.text(min_size=1, max_size=40).filter(lambda p: "\0" not in p))
def test_property_slow_schemes(password):
    for scheme, rounds in (("sha256-crypt", 1000), ("sha512-crypt", 1000), ("bcrypt", 4)):
        stored = hash_password(password, scheme, rounds=rounds)
        assert verify(password, stored)
        if scheme == "bcrypt" and len(password.encode()) >= 72:
            # every bcrypt (libxcrypt's, so Courier's) reads only the first 72 bytes
            assert verify(password + "!", stored)
        else:
            assert not verify(password + "!", stored)


@settings(max_examples=200, deadline=None)
@given(stored=st.text(max_size=80), password=st.text(max_size=20))
def test_property_verify_never_raises(stored, password):
    assert verify(password, stored) in (True, False)


# -- HMAC secrets and CRAM -----------------------------------------------------

# Printed by the real `userdbpw -hmac-*` for "secret" (spec transcript userdbpw.txt).
USERDBPW_SECRET = {
    "md5": "cd3ba7deaad6e5ca23448ba42e379747a9e0f7f1fbc00c8a81bbaac395731b56",
    "sha1": "091e0f4c6cb5277ee2beb639a60d0831b5c8adcdaee172433df3e96ba4f00fb1b6a490c3929d2034",
    "sha256": (
        "5a84072aab37d22275b139adf7a92564c7f674be98e77d991f6f689d29e05245"
        "72804f31b042016804d3dea2f4e991a21b1c8906be161594b202fb74afc8ceb3"
    ),
}


@pytest.mark.parametrize("algo", ["md5", "sha1", "sha256"])
def test_hmac_secret_matches_userdbpw(algo):
    assert hmac_secret("secret", algo) == USERDBPW_SECRET[algo]
    assert hmac_secret(b"secret", algo) == USERDBPW_SECRET[algo]


def test_hmac_secret_of_empty_password_matches_userdbpw():
    # `printf '\n' | userdbpw -hmac-md5`
    assert hmac_secret("", "md5") == (
        "00747cf2ffaf11c5ea4a64979c3901fc1d20dee13f480bb598f7d8575b23e61b"
    )


@pytest.mark.parametrize("algo", ["md5", "sha1", "sha256"])
def test_compression_functions_against_hashlib(algo):
    # Finishing from the IV must give the ordinary digest, for many lengths.
    spec = passwords._HASHES[algo]
    for n in (0, 1, 55, 56, 63, 64, 65, 119, 120, 200):
        data = bytes(range(256))[:n] * 1
        assert spec.finish(spec.iv, data, 0) == hashlib.new(algo, data).digest()


PASSWORDS = ["secret", "", "x" * 64, "y" * 65, "z" * 300, "pässwörd", "日本語のパスワード"]


@pytest.mark.parametrize("algo", ["md5", "sha1", "sha256"])
@pytest.mark.parametrize("password", PASSWORDS)
def test_cram_roundtrip_with_stdlib_hmac(algo, password):
    secret = hmac_secret(password, algo)
    challenge = b"<1896.697170952@postoffice.reston.mci.net>"
    response = hmac.new(password.encode(), challenge, algo).hexdigest()
    assert cram_verify(challenge, response, secret, algo)
    assert cram_verify(challenge, response.upper(), secret.upper(), algo)
    assert cram_verify_cleartext(challenge, response, password, algo)
    assert not cram_verify(challenge + b"x", response, secret, algo)
    assert not cram_verify_cleartext(challenge, response, password + "x", algo)
    bad = ("0" if response[0] != "0" else "1") + response[1:]
    assert not cram_verify(challenge, bad, secret, algo)


def test_cram_rfc2195_example():
    challenge = base64.b64decode("PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+")
    secret = hmac_secret("tanstaaftanstaaf", "md5")
    assert cram_verify(challenge, "b913a602c7eda7a495b4e6e7334d3890", secret, "md5")


@pytest.mark.parametrize(
    ("response", "secret"),
    [
        ("", USERDBPW_SECRET["md5"]),
        ("zz" * 16, USERDBPW_SECRET["md5"]),
        ("00" * 17, USERDBPW_SECRET["md5"]),
        ("00" * 16, ""),
        ("00" * 16, USERDBPW_SECRET["md5"][:-2]),
        ("00" * 16, "g" * 64),
        ("00" * 16, USERDBPW_SECRET["sha1"]),
        ("é" * 32, USERDBPW_SECRET["md5"]),
    ],
)
def test_cram_malformed_values_are_no_match(response, secret):
    assert cram_verify(b"<x@y>", response, secret, "md5") is False


def test_unknown_hmac_algorithm_is_an_error():
    with pytest.raises(passwords.UnknownSchemeError):
        hmac_secret("x", "sha512")
    with pytest.raises(ValueError):
        cram_verify(b"c", "00", "00", "md4")


@settings(max_examples=60, deadline=None)
@given(
    pw=st.binary(min_size=0, max_size=80).filter(lambda b: b"\0" not in b),
    salt=st.text(alphabet=passwords.CRYPT_ALPHABET, min_size=0, max_size=8),
)
def test_libxcrypt_md5_path_agrees_with_ours(pw: bytes, salt: str) -> None:
    """verify() takes libxcrypt's MD5-crypt when it can; it must equal Courier's algorithm."""
    fast = passwords._libxcrypt(pw, "$1$" + salt)  # libcrypt1 is essential on Debian
    assert fast is not None
    assert fast == passwords.md5_crypt_hash(pw, salt.encode())
    assert passwords.verify(pw, fast)
