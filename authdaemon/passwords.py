"""Password hashes and CRAM secrets, checked the way courier-authlib checks them.

Three things live here:

* :func:`verify` -- Courier's ``authcheckpassword``: which stored forms are
  recognised, in which order, and what counts as a match.  Every comparison is
  constant-time and a malformed stored value is simply "no match".
* :func:`hash_password` and :func:`authpasswd_hash` -- the hashes Courier's
  tools write (``userdbpw``, ``authpasswd``, a password change through the
  userdb module).
* :func:`hmac_secret`, :func:`cram_verify` and :func:`cram_verify_cleartext`
  -- the precomputed HMAC states Courier keeps in ``hmac-*pw`` fields for
  CRAM-MD5, CRAM-SHA1 and CRAM-SHA256, and the check of a client's response.

Passwords may be given as ``str`` (encoded as UTF-8) or ``bytes``.  Courier
handles passwords as C strings, so everything from the first NUL byte on is
ignored, here as there.

The stdlib ``crypt`` module is not used (it is gone in Python 3.13).  The
crypt(3) forms Courier relies on are computed by passlib (DES, ``$1$``, ``$5$``,
``$6$``) and the ``bcrypt`` package (``$2a$``/``$2b$``/``$2y$``).  Any other
crypt(3) form (yescrypt ``$y$``, ``$gy$``, scrypt ``$7$``, BSDi ``_``,
``$sha1$``, ``$md5``, NT ``$3$``, bigcrypt, ``$2x$``) is handed to the system's
libxcrypt through ctypes, which is what Courier's own ``crypt()`` call reaches;
where that library is missing those forms never match.
"""

from __future__ import annotations

import base64
import binascii
import ctypes
import ctypes.util
import functools
import hashlib
import hmac
import math
import secrets
import struct
from collections.abc import Callable
from typing import Final

import bcrypt as _bcrypt
from passlib.hash import des_crypt, sha256_crypt, sha512_crypt

from courierpy.errors import CourierError

__all__ = [
    "CRAM_ALGORITHMS",
    "SCHEMES",
    "PasswordTooLongError",
    "UnknownSchemeError",
    "authpasswd_hash",
    "cram_verify",
    "cram_verify_cleartext",
    "hash_password",
    "hmac_secret",
    "md5_crypt_hash",
    "verify",
]


class UnknownSchemeError(CourierError, ValueError):
    """A hash scheme or HMAC algorithm that we do not know how to produce."""


#: The alphabet of crypt(3) salts (DES and the modular formats).
CRYPT_ALPHABET: Final = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

#: Longest password Courier's tools read from a line (stdio BUFSIZ - 1).
MAX_PASSWORD_LINE: Final = 8191


def _c_string(value: str | bytes) -> bytes:
    """*value* as the C string Courier would see: UTF-8 bytes up to the first NUL."""
    data = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)
    nul = data.find(b"\0")
    return data if nul < 0 else data[:nul]


def _same(a: bytes | str, b: bytes | str) -> bool:
    """Constant-time equality of two strings of bytes (str is UTF-8 encoded)."""
    if isinstance(a, str):
        a = a.encode("utf-8", "surrogateescape")
    if isinstance(b, str):
        b = b.encode("utf-8", "surrogateescape")
    return hmac.compare_digest(a, b)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# ---------------------------------------------------------------------------
# The digest-style hashes ({MD5}, {MD5RAW}, {SHA}, {SHA256}, {SHA512}, {SSHA})

#: Length in bytes of the random salt Courier appends in {SSHA}.
SSHA_SALT_LEN: Final = 4


def _digest_b64(name: str) -> Callable[[bytes], str]:
    return lambda pw: _b64(hashlib.new(name, pw).digest())


def _md5raw(pw: bytes) -> str:
    return hashlib.md5(pw).hexdigest()


def _ssha(pw: bytes, salt: bytes) -> str:
    return _b64(hashlib.sha1(pw + salt).digest() + salt)


#: Braced prefix (upper case) -> function of the password giving the text after it.
_DIGESTS: Final[dict[str, Callable[[bytes], str]]] = {
    "{MD5}": _digest_b64("md5"),
    "{MD5RAW}": _md5raw,
    "{SHA}": _digest_b64("sha1"),
    "{SHA256}": _digest_b64("sha256"),
    "{SHA512}": _digest_b64("sha512"),
}


def _courier_b64decode(text: str) -> bytes | None:
    """Decode base64 as Courier's SASL decoder does; None if it is not base64."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None


def _verify_ssha(pw: bytes, encoded: str) -> bool:
    raw = _courier_b64decode(encoded)
    if raw is None or len(raw) < SSHA_SALT_LEN:
        return False
    # Courier takes the last four bytes as the salt and recomputes the whole
    # value, so {SSHA} values with a longer salt (some LDAP tools write those)
    # never match, there as here.
    return _same(encoded, _ssha(pw, raw[-SSHA_SALT_LEN:]))


# ---------------------------------------------------------------------------
# crypt(3)


_ITOA64: Final = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

#: crypt(3) (libxcrypt) refuses passphrases of this many bytes or more.
CRYPT_MAX_PASSPHRASE: Final = 512


class PasswordTooLongError(CourierError, ValueError):
    """crypt(3) cannot hash a passphrase this long (libxcrypt's limit is 511 bytes)."""


def md5_crypt_hash(pw: bytes, salt: bytes) -> str:
    """Poul-Henning Kamp's MD5-crypt (``$1$``) of *pw* with *salt* (first 8 bytes).

    Written out rather than taken from passlib because Courier's own
    implementation, which its ``$1$`` check uses, has no length limit on the
    password and takes any bytes as salt; passlib refuses both.
    """
    magic = b"$1$"
    salt = salt[:8]
    alternate = hashlib.md5(pw + salt + pw).digest()
    ctx = hashlib.md5(pw + magic + salt)
    for left in range(len(pw), 0, -16):
        ctx.update(alternate[: min(16, left)])
    n = len(pw)
    while n:
        ctx.update(b"\0" if n & 1 else pw[:1])
        n >>= 1
    digest = ctx.digest()
    for i in range(1000):
        step = hashlib.md5(pw if i & 1 else digest)
        if i % 3:
            step.update(salt)
        if i % 7:
            step.update(pw)
        step.update(digest if i & 1 else pw)
        digest = step.digest()
    out = bytearray()
    for a, b, c in ((0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)):
        v = (digest[a] << 16) | (digest[b] << 8) | digest[c]
        for _ in range(4):
            out.append(_ITOA64[v & 63])
            v >>= 6
    v = digest[11]
    for _ in range(2):
        out.append(_ITOA64[v & 63])
        v >>= 6
    return (magic + salt + b"$" + bytes(out)).decode("utf-8", "surrogateescape")


def _crypt_md5(pw: bytes, stored: str) -> bool:
    """``$1$``: recompute with the stored salt (at most 8 bytes, up to ``$``)."""
    raw = stored.encode("utf-8", "surrogateescape")
    salt = raw[3:].split(b"$", 1)[0][:8]
    if len(pw) < CRYPT_MAX_PASSPHRASE and salt.isascii():
        text_salt = salt.decode("ascii")
        if all(c in CRYPT_ALPHABET for c in text_salt):
            # The same algorithm in C: four times faster than md5_crypt_hash,
            # for every salt and length libxcrypt accepts.
            fast = _libxcrypt(pw, "$1$" + text_salt)
            if fast is not None:
                return _same(fast, stored)
    return _same(md5_crypt_hash(pw, salt), stored)


def _crypt_bcrypt(pw: bytes, stored: str) -> bool:
    try:
        # libxcrypt, like every bcrypt, only looks at the first 72 bytes.
        return _bcrypt.checkpw(pw[:72], stored.encode("ascii"))
    except (ValueError, TypeError, UnicodeEncodeError):
        return False


def _passlib_check(handler: object) -> Callable[[bytes, str], bool]:
    def check(pw: bytes, stored: str) -> bool:
        try:
            return bool(handler.verify(pw, stored))  # type: ignore[attr-defined]
        except (ValueError, TypeError):
            return False

    return check


#: The rounds libxcrypt writes back unchanged; others are clamped, so never match.
_SHA_CRYPT_ROUNDS: Final = range(1000, 1_000_000_000)


def _sha_crypt_rounds_ok(stored: str) -> bool:
    """False if a ``rounds=`` field would come back from crypt(3) written differently."""
    field = stored[3:].split("$", 1)[0]
    if not field.startswith("rounds="):
        return True
    digits = field[7:]
    return digits.isdigit() and str(int(digits)) == digits and int(digits) in _SHA_CRYPT_ROUNDS


def _is_des(stored: str) -> bool:
    return len(stored) == 13 and all(c in CRYPT_ALPHABET for c in stored)


def _libxcrypt(pw: bytes, setting: str) -> str | None:
    """The system crypt(3) through ctypes (thread-safe ``crypt_rn``), or None."""
    lib = _load_libcrypt()
    if lib is None:
        return None
    try:
        setting_b = setting.encode("ascii")
    except UnicodeEncodeError:
        return None
    data = ctypes.create_string_buffer(_CRYPT_DATA_SIZE)
    result = lib.crypt_rn(pw, setting_b, data, _CRYPT_DATA_SIZE)
    if not result:
        return None
    out = ctypes.cast(result, ctypes.c_char_p).value
    if not out or out.startswith(b"*"):
        return None
    return out.decode("ascii", "replace")


#: sizeof(struct crypt_data) in libxcrypt (32768); a larger buffer is harmless.
_CRYPT_DATA_SIZE: Final = 32768


@functools.cache
def _load_libcrypt() -> ctypes.CDLL | None:
    """The system libcrypt (libxcrypt), loaded on first use; None if absent."""
    name = ctypes.util.find_library("crypt") or "libcrypt.so.1"
    try:
        lib = ctypes.CDLL(name)
        fn = lib.crypt_rn
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_void_p
    fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
    return lib


def _verify_crypt(pw: bytes, stored: str) -> bool:
    """``strcmp(stored, crypt(pw, stored)) == 0``, as Courier's last resort."""
    if not stored or len(pw) >= CRYPT_MAX_PASSPHRASE:
        return False
    if stored.startswith("$1$"):
        # libxcrypt, unlike Courier's own MD5-crypt, refuses salts outside its alphabet.
        salt = stored[3:].split("$", 1)[0][:8]
        return all(c in CRYPT_ALPHABET for c in salt) and _crypt_md5(pw, stored)
    if stored.startswith(("$5$", "$6$")):
        if not _sha_crypt_rounds_ok(stored):
            return False
        handler = sha256_crypt if stored[1] == "5" else sha512_crypt
        return _passlib_check(handler)(pw, stored)
    if stored.startswith(("$2a$", "$2b$", "$2y$")):
        return _crypt_bcrypt(pw, stored)
    if _is_des(stored):
        return _passlib_check(des_crypt)(pw, stored)
    if stored[0] in "$_" or len(stored) > 13:
        computed = _libxcrypt(pw, stored)
        return computed is not None and _same(computed, stored)
    return False


# ---------------------------------------------------------------------------
# verify


def verify(password: str | bytes, stored: str | bytes) -> bool:
    """True if *password* matches the *stored* hash, by Courier's rules.

    In order: ``$1$`` (case-sensitive), ``{MD5}``, ``{MD5RAW}``; ``{SHA}``,
    ``{SHA256}``, ``{SHA512}``, ``{SSHA}`` (braced prefixes in any case); a
    ``{CRYPT}`` prefix is dropped; everything else is crypt(3).  A stored
    cleartext password therefore does not match.  Never raises.
    """
    try:
        if isinstance(stored, bytes | bytearray):
            stored = bytes(stored).decode("utf-8", "surrogateescape")
        if not isinstance(stored, str):
            return False
        pw = _c_string(password)
        nul = stored.find("\0")
        if nul >= 0:
            stored = stored[:nul]
        upper = stored[:8].upper()
        if stored.startswith("$1$"):
            return _crypt_md5(pw, stored)
        for prefix in ("{MD5}", "{MD5RAW}", "{SHA}", "{SHA256}", "{SHA512}"):
            if upper.startswith(prefix):
                return _same(stored[len(prefix) :], _DIGESTS[prefix](pw))
        if upper.startswith("{SSHA}"):
            return _verify_ssha(pw, stored[6:])
        if upper.startswith("{CRYPT}"):
            stored = stored[7:]
        return _verify_crypt(pw, stored)
    except Exception:  # noqa: BLE001 - a bad stored value must never break a login
        return False


# ---------------------------------------------------------------------------
# Producing hashes


def _random_salt(length: int) -> str:
    return "".join(secrets.choice(CRYPT_ALPHABET) for _ in range(length))


def _crypt3_input(pw: bytes) -> bytes:
    if len(pw) >= CRYPT_MAX_PASSPHRASE:
        raise PasswordTooLongError(
            f"crypt(3) takes at most {CRYPT_MAX_PASSPHRASE - 1} bytes of password"
        )
    return pw


def _des(pw: bytes) -> str:
    return des_crypt.using(salt=_random_salt(2)).hash(_crypt3_input(pw))


def _md5crypt(pw: bytes, salt_len: int = 8) -> str:
    return md5_crypt_hash(pw, _random_salt(salt_len).encode("ascii"))


def _bcrypt_hash(pw: bytes, cost: int = 12) -> str:
    return _bcrypt.hashpw(_crypt3_input(pw)[:72], _bcrypt.gensalt(cost)).decode("ascii")


def _sha_crypt(handler: object) -> Callable[..., str]:
    def produce(pw: bytes, rounds: int | None = None) -> str:
        h = handler.using(rounds=rounds) if rounds else handler  # type: ignore[attr-defined]
        return h.hash(_crypt3_input(pw))

    return produce


def _digest_scheme(prefix: str) -> Callable[[bytes], str]:
    return lambda pw: prefix + _DIGESTS[prefix](pw)


def _ssha_new(pw: bytes) -> str:
    return "{SSHA}" + _ssha(pw, secrets.token_bytes(SSHA_SALT_LEN))


#: Schemes :func:`hash_password` produces, by name.  The braced names are what
#: the stored value starts with; the others are crypt(3) forms.
_PRODUCERS: Final[dict[str, Callable[[bytes], str]]] = {
    "des": _des,  # userdbpw (no option): traditional DES crypt, 2-char salt
    "md5-crypt": _md5crypt,  # userdbpw -md5, password changes: $1$, 8-char salt
    "md5-crypt-5": lambda pw: _md5crypt(pw, 5),  # authpasswd (no method): 5-char salt
    "sha256-crypt": _sha_crypt(sha256_crypt),
    "sha512-crypt": _sha_crypt(sha512_crypt),
    "bcrypt": _bcrypt_hash,
    "{MD5}": _digest_scheme("{MD5}"),
    "{MD5RAW}": _digest_scheme("{MD5RAW}"),
    "{SHA}": _digest_scheme("{SHA}"),
    "{SHA256}": _digest_scheme("{SHA256}"),
    "{SHA512}": _digest_scheme("{SHA512}"),
    "{SSHA}": _ssha_new,
}

#: Every scheme name :func:`hash_password` accepts besides authpasswd methods.
SCHEMES: Final = tuple(_PRODUCERS)


def authpasswd_scheme(method: str | None) -> str:
    """The scheme ``authpasswd [method]`` uses, by Courier's rules.

    No method gives MD5-crypt with a 5-character salt.  Otherwise the method
    (its first 15 characters) is wrapped in braces and compared, ignoring
    case, with the start of each known prefix -- ``{MD5}`` and ``{SHA}`` on 5
    characters, ``{MD5RAW}`` on its first 5 (so ``md5r...`` means MD5RAW),
    ``{SSHA}`` on 6, ``{SHA256}``/``{SHA512}`` on 8 -- and anything else
    (``crypt``, ``sha1``, a typo) falls back to ``{SSHA}``.
    """
    if method is None:
        return "md5-crypt-5"
    hint = "{" + method[:15] + "}"
    folded = hint.upper()
    found = None
    for prefix, n in (
        ("{MD5}", 5),
        ("{MD5RAW}", 5),
        ("{SHA}", 5),
        ("{SSHA}", 6),
        ("{SHA256}", 8),
        ("{SHA512}", 8),
    ):
        if folded[:n] == prefix[:n]:
            found = prefix  # later matches win, as in Courier
    return found or "{SSHA}"


def authpasswd_hash(password: str | bytes, method: str | None = None) -> str:
    """The hash ``authpasswd [method]`` prints for *password*."""
    return _PRODUCERS[authpasswd_scheme(method)](_c_string(password))


def hash_password(
    password: str | bytes, scheme: str | None = None, *, rounds: int | None = None
) -> str:
    """Hash *password* for storage.

    *scheme* is one of :data:`SCHEMES` (``des``, ``md5-crypt``,
    ``md5-crypt-5``, ``sha256-crypt``, ``sha512-crypt``, ``bcrypt``,
    ``{MD5}``, ``{MD5RAW}``, ``{SHA}``, ``{SHA256}``, ``{SHA512}``,
    ``{SSHA}``); any other value, or None, is taken as an ``authpasswd``
    method: ``md5``, ``md5raw``, ``sha``, ``ssha``, ``sha256``, ``sha512``;
    None gives MD5-crypt with a 5-character salt; ``crypt``, ``sha1`` and
    unknown methods give ``{SSHA}`` (see :func:`authpasswd_scheme`).

    *rounds* sets the cost of ``sha256-crypt``/``sha512-crypt`` (rounds) and
    ``bcrypt`` (log2 cost); other schemes have none and ignore it.

    The crypt(3) schemes (``des``, ``sha*-crypt``, ``bcrypt``) raise
    :class:`PasswordTooLongError` for a password of 512 bytes or more, which
    libxcrypt refuses (Courier's ``userdbpw`` then prints crypt's failure
    token ``*0``).
    """
    if rounds is not None and scheme in ("sha256-crypt", "sha512-crypt", "bcrypt"):
        return _PRODUCERS[scheme](_c_string(password), rounds)  # type: ignore[call-arg]
    producer = _PRODUCERS.get(scheme) if scheme is not None else None
    if producer is None:
        return authpasswd_hash(password, scheme)
    return producer(_c_string(password))


# ---------------------------------------------------------------------------
# HMAC intermediate states for CRAM-*
#
# Courier stores, in hex, the chaining state of the hash after the single
# block ``key XOR opad`` followed by the state after ``key XOR ipad`` (keys
# longer than the 64-byte block are hashed first).  hashlib does not expose
# chaining states, so the three compression functions are written out below.

_M32: Final = 0xFFFFFFFF


def _rotl(x: int, n: int) -> int:
    return ((x << n) | (x >> (32 - n))) & _M32


def _rotr(x: int, n: int) -> int:
    return ((x >> n) | (x << (32 - n))) & _M32


_MD5_S: Final = tuple(
    [7, 12, 17, 22] * 4 + [5, 9, 14, 20] * 4 + [4, 11, 16, 23] * 4 + [6, 10, 15, 21] * 4
)
_MD5_K: Final = tuple(int(abs(math.sin(i + 1)) * 2**32) & _M32 for i in range(64))
_MD5_IV: Final = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476)


def _md5_compress(state: tuple[int, ...], block: bytes) -> tuple[int, ...]:
    m = struct.unpack("<16I", block)
    a, b, c, d = state
    for i in range(64):
        if i < 16:
            f = (b & c) | (~b & d)
            g = i
        elif i < 32:
            f = (d & b) | (~d & c)
            g = (5 * i + 1) % 16
        elif i < 48:
            f = b ^ c ^ d
            g = (3 * i + 5) % 16
        else:
            f = c ^ (b | (~d & _M32))
            g = (7 * i) % 16
        f = (f + a + _MD5_K[i] + m[g]) & _M32
        a, d, c = d, c, b
        b = (b + _rotl(f, _MD5_S[i])) & _M32
    return tuple((x + y) & _M32 for x, y in zip(state, (a, b, c, d), strict=True))


_SHA1_IV: Final = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0)


def _sha1_compress(state: tuple[int, ...], block: bytes) -> tuple[int, ...]:
    w = list(struct.unpack(">16I", block))
    for i in range(16, 80):
        w.append(_rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1))
    a, b, c, d, e = state
    for i in range(80):
        if i < 20:
            f, k = (b & c) | (~b & d), 0x5A827999
        elif i < 40:
            f, k = b ^ c ^ d, 0x6ED9EBA1
        elif i < 60:
            f, k = (b & c) | (b & d) | (c & d), 0x8F1BBCDC
        else:
            f, k = b ^ c ^ d, 0xCA62C1D6
        t = (_rotl(a, 5) + (f & _M32) + e + k + w[i]) & _M32
        a, b, c, d, e = t, a, _rotl(b, 30), c, d
    return tuple((x + y) & _M32 for x, y in zip(state, (a, b, c, d, e), strict=True))


_SHA256_K: Final = (
    0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4, 0xAB1C5ED5,
    0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE, 0x9BDC06A7, 0xC19BF174,
    0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F, 0x4A7484AA, 0x5CB0A9DC, 0x76F988DA,
    0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7, 0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967,
    0x27B70A85, 0x2E1B2138, 0x4D2C6DFC, 0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85,
    0xA2BFE8A1, 0xA81A664B, 0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070,
    0x19A4C116, 0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
    0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7, 0xC67178F2,
)  # fmt: skip
_SHA256_IV: Final = (
    0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
)  # fmt: skip


def _sha256_compress(state: tuple[int, ...], block: bytes) -> tuple[int, ...]:
    w = list(struct.unpack(">16I", block))
    for i in range(16, 64):
        s0 = _rotr(w[i - 15], 7) ^ _rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)
        s1 = _rotr(w[i - 2], 17) ^ _rotr(w[i - 2], 19) ^ (w[i - 2] >> 10)
        w.append((w[i - 16] + s0 + w[i - 7] + s1) & _M32)
    a, b, c, d, e, f, g, h = state
    for i in range(64):
        t1 = (
            h
            + (_rotr(e, 6) ^ _rotr(e, 11) ^ _rotr(e, 25))
            + ((e & f) ^ (~e & g))
            + _SHA256_K[i]
            + w[i]
        ) & _M32
        t2 = ((_rotr(a, 2) ^ _rotr(a, 13) ^ _rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) & _M32
        a, b, c, d, e, f, g, h = (t1 + t2) & _M32, a, b, c, (d + t1) & _M32, e, f, g
    return tuple((x + y) & _M32 for x, y in zip(state, (a, b, c, d, e, f, g, h), strict=True))


class _HashSpec:
    """What the HMAC code needs to know of one hash function."""

    __slots__ = ("compress", "digest_len", "endian", "iv", "name")

    def __init__(
        self,
        name: str,
        iv: tuple[int, ...],
        compress: Callable[[tuple[int, ...], bytes], tuple[int, ...]],
        endian: str,
    ) -> None:
        self.name = name
        self.iv = iv
        self.compress = compress
        self.endian = endian
        self.digest_len = 4 * len(iv)

    def pack(self, state: tuple[int, ...]) -> bytes:
        return struct.pack(f"{self.endian}{len(state)}I", *state)

    def unpack(self, raw: bytes) -> tuple[int, ...]:
        return struct.unpack(f"{self.endian}{len(raw) // 4}I", raw)

    def finish(self, state: tuple[int, ...], data: bytes, prior: int) -> bytes:
        """The digest of *data* continued from *state*, which already absorbed *prior* bytes."""
        bits = 8 * (prior + len(data))
        tail = b"\x80" + b"\0" * ((55 - len(data)) % 64)
        length = struct.pack(f"{self.endian}Q", bits & 0xFFFFFFFFFFFFFFFF)
        msg = data + tail + length
        for off in range(0, len(msg), 64):
            state = self.compress(state, msg[off : off + 64])
        return self.pack(state)


_BLOCK: Final = 64

_HASHES: Final = {
    "md5": _HashSpec("md5", _MD5_IV, _md5_compress, "<"),
    "sha1": _HashSpec("sha1", _SHA1_IV, _sha1_compress, ">"),
    "sha256": _HashSpec("sha256", _SHA256_IV, _sha256_compress, ">"),
}

#: HMAC hash names Courier knows for CRAM-* and ``userdbpw -hmac-*``.
CRAM_ALGORITHMS: Final = tuple(_HASHES)


def _spec(algo: str) -> _HashSpec:
    try:
        return _HASHES[algo]
    except KeyError:
        raise UnknownSchemeError(f"unknown HMAC hash: {algo!r}") from None


def _hmac_states(key: bytes, spec: _HashSpec) -> bytes:
    if len(key) > _BLOCK:
        key = hashlib.new(spec.name, key).digest()
    key = key.ljust(_BLOCK, b"\0")
    outer = spec.compress(spec.iv, bytes(k ^ 0x5C for k in key))
    inner = spec.compress(spec.iv, bytes(k ^ 0x36 for k in key))
    return spec.pack(outer) + spec.pack(inner)


def hmac_secret(password: str | bytes, algo: str) -> str:
    """The ``hmac-<algo>pw`` value Courier stores: hex of outer state || inner state.

    *algo* is ``md5``, ``sha1`` or ``sha256``; the result has 64, 80 or 128
    hex digits (what ``userdbpw -hmac-<algo>`` prints).
    """
    return _hmac_states(_c_string(password), _spec(algo)).hex()


def _response_bytes(response_hex: str | bytes, spec: _HashSpec) -> bytes | None:
    if isinstance(response_hex, bytes):
        try:
            response_hex = response_hex.decode("ascii")
        except UnicodeDecodeError:
            return None
    if len(response_hex) != 2 * spec.digest_len:
        return None
    try:
        return bytes.fromhex(response_hex)
    except ValueError:
        return None


def _expected(challenge: bytes, states: bytes, spec: _HashSpec) -> bytes:
    n = spec.digest_len
    outer = spec.unpack(states[:n])
    inner = spec.unpack(states[n:])
    challenge = _c_string(challenge)
    inner_digest = spec.finish(inner, challenge, _BLOCK)
    return spec.finish(outer, inner_digest, _BLOCK)


def cram_verify(challenge: bytes, response_hex: str | bytes, secret_hex: str, algo: str) -> bool:
    """True if *response_hex* is HMAC-<algo>(password, *challenge*) for the stored secret.

    *secret_hex* is an ``hmac-<algo>pw`` value (see :func:`hmac_secret`);
    hex digits of either case are accepted in both, as Courier does.  A
    malformed secret or response is no match; never raises for bad data.
    """
    spec = _spec(algo)
    try:
        if len(secret_hex) != 4 * spec.digest_len:
            return False
        states = bytes.fromhex(secret_hex)
    except (ValueError, TypeError):
        return False
    response = _response_bytes(response_hex, spec)
    if response is None:
        return False
    return hmac.compare_digest(_expected(challenge, states, spec), response)


def cram_verify_cleartext(
    challenge: bytes, response_hex: str | bytes, password: str | bytes, algo: str
) -> bool:
    """:func:`cram_verify` for a backend that stores the cleartext password."""
    spec = _spec(algo)
    response = _response_bytes(response_hex, spec)
    if response is None:
        return False
    states = _hmac_states(_c_string(password), spec)
    return hmac.compare_digest(_expected(challenge, states, spec), response)
