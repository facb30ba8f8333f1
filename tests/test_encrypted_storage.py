"""Pattern 1, Python side: round trips, every failure to open, bounds, migration, no leaks."""

from __future__ import annotations

import json
import time
import traceback
import unicodedata
from collections.abc import Callable

import pytest

from patterns.encrypted_storage import (
    DECRYPTION_FAILED,
    DEFAULT_POLICY,
    Argon2idParams,
    Limits,
    Pbkdf2Params,
    Policy,
    ScryptParams,
    change_password,
    decrypt_api_key,
    encrypt_api_key,
    inspect_envelope,
    needs_upgrade,
    reencrypt,
)
from patterns.encrypted_storage import envelope as envelope_module
from patterns.errors import ConfigurationError, DecryptionError, InvalidKeyError
from patterns.keys import canary_key, demo_key

#: Test-only low-cost policy: the same code paths as the defaults, a thousandth of the work.
#: Its limits accept these cheap parameters explicitly; the default limits would refuse them.
FAST_POLICY = Policy(
    pbkdf2=Pbkdf2Params(iterations=1_000),
    scrypt=ScryptParams(n=2**10, r=8, p=1),
    argon2id=Argon2idParams(memory_kib=64, iterations=1, lanes=1),
    limits=Limits(
        pbkdf2_iterations=(1_000, 2_000_000),
        scrypt_n=(2**10, 2**18),
        argon2_memory_kib=(64, 256 * 1024),
    ),
)
PASSWORD = "correct horse battery staple"
KEY = demo_key("encrypted-storage-tests")


def seal(kdf: str = "pbkdf2-sha256", **options: object) -> str:
    return encrypt_api_key(KEY, PASSWORD, kdf=kdf, policy=FAST_POLICY, **options)  # type: ignore[arg-type]


def assert_opaque_failure(envelope: str | bytes, password: str = PASSWORD, **options: object):
    with pytest.raises(DecryptionError) as caught:
        decrypt_api_key(envelope, password, policy=FAST_POLICY, **options)  # type: ignore[arg-type]
    assert str(caught.value) == DECRYPTION_FAILED
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    return caught.value


@pytest.mark.parametrize("kdf", ["pbkdf2-sha256", "scrypt", "argon2id"])
def test_round_trip_for_each_kdf(kdf: str) -> None:
    envelope = seal(kdf)
    assert decrypt_api_key(envelope, PASSWORD, policy=FAST_POLICY) == KEY.reveal()
    assert json.loads(envelope)["kdf"]["name"] == kdf


def test_default_policy_round_trip_uses_owasp_parameters() -> None:
    envelope = encrypt_api_key(KEY, PASSWORD)
    document = json.loads(envelope)
    assert document["kdf"] == {"name": "pbkdf2-sha256", "iterations": 600_000}
    assert document["version"] == 1
    assert document["cipher"] == "aes-256-gcm"
    assert decrypt_api_key(envelope, PASSWORD) == KEY.reveal()
    assert DEFAULT_POLICY.scrypt == ScryptParams(n=2**17, r=8, p=1)
    assert DEFAULT_POLICY.argon2id == Argon2idParams(memory_kib=19 * 1024, iterations=2, lanes=1)


def test_fresh_salt_and_iv_every_time() -> None:
    first, second = (inspect_envelope(seal(), FAST_POLICY) for _ in range(2))
    assert len(first.salt) == 16
    assert len(first.iv) == 12
    assert first.salt != second.salt
    assert first.iv != second.iv
    assert first.ciphertext != second.ciphertext


def test_accepts_str_api_key_and_bytes_envelope() -> None:
    envelope = encrypt_api_key(KEY.reveal(), PASSWORD, policy=FAST_POLICY)
    assert decrypt_api_key(envelope.encode(), PASSWORD, policy=FAST_POLICY) == KEY.reveal()


def test_password_is_nfc_normalised() -> None:
    composed = "Pässwörter sind schwer"
    envelope = encrypt_api_key(KEY, composed, policy=FAST_POLICY)
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    assert decrypt_api_key(envelope, decomposed, policy=FAST_POLICY) == KEY.reveal()


def test_wrong_password() -> None:
    assert_opaque_failure(seal(), "correct horse battery stapler")


def test_associated_data_binds_envelope_to_a_user() -> None:
    envelope = seal(associated_data="user:alice")
    assert (
        decrypt_api_key(envelope, PASSWORD, associated_data="user:alice", policy=FAST_POLICY)
        == KEY.reveal()
    )
    assert_opaque_failure(envelope, associated_data="user:mallory")
    assert_opaque_failure(envelope)  # missing associated data
    assert_opaque_failure(seal(), associated_data="user:alice")  # unexpected associated data


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("salt", "AAAAAAAAAAAAAAAAAAAAAA"),
        ("iv", "AAAAAAAAAAAAAAAA"),
        ("version", 2),
        ("version", "1"),
        ("version", True),
        ("format", "something-else"),
        ("cipher", "aes-128-gcm"),
        ("kdf", {"name": "pbkdf2-sha512", "iterations": 1000}),
        ("kdf", {"name": "md5"}),
        ("kdf", {"name": "pbkdf2-sha256", "iterations": 1000.0}),
        ("kdf", {"name": "pbkdf2-sha256", "iterations": "1000"}),
        ("kdf", {"name": "pbkdf2-sha256", "iterations": 1001}),
        ("kdf", {"name": "pbkdf2-sha256", "iterations": 1000, "extra": 1}),
        ("kdf", {"iterations": 1000, "name": "pbkdf2-sha256"}),
        ("kdf", []),
        ("ciphertext", ""),
        ("ciphertext", "AAAA"),
        ("salt", "AAAAAAAAAAAAAAAAAAAAAB"),  # non-canonical base64url (unused bits set)
        ("salt", "AAAAAAAAAAAAAAAAAAAAAA=="),  # padding is not allowed
        ("iv", "AAAAAAAAAAAAAAAA+/"),
    ],
)
def test_any_modified_field(field: str, value: object) -> None:
    document = json.loads(seal())
    document[field] = value
    assert_opaque_failure(json.dumps(document, separators=(",", ":")))


def test_unknown_and_missing_fields() -> None:
    document = json.loads(seal())
    extra = dict(document, note="hello")
    assert_opaque_failure(json.dumps(extra, separators=(",", ":")))
    for field in document:
        missing = {k: v for k, v in document.items() if k != field}
        assert_opaque_failure(json.dumps(missing, separators=(",", ":")))


def test_non_canonical_json_is_refused() -> None:
    envelope = seal()
    document = json.loads(envelope)
    assert_opaque_failure(json.dumps(document))  # spaces after separators
    assert_opaque_failure(json.dumps(dict(reversed(document.items())), separators=(",", ":")))
    duplicated = envelope[:-1] + ',"version":1}'
    assert_opaque_failure(duplicated)
    # surrounding whitespace (a trailing newline from a file) is fine
    assert decrypt_api_key(f"  {envelope}\n", PASSWORD, policy=FAST_POLICY) == KEY.reveal()


@pytest.mark.parametrize(
    "text",
    ["", "null", "[]", "{}", "not json", '{"format":', "\x00", "{" * 5000, "x" * 100_000],
)
def test_malformed_input(text: str) -> None:
    assert_opaque_failure(text)


def test_truncated_envelopes() -> None:
    envelope = seal()
    for cut in range(0, len(envelope), 7):
        assert_opaque_failure(envelope[:cut])


def test_invalid_utf8_and_wrong_types() -> None:
    assert_opaque_failure(b"\xff\xfe" + seal().encode())
    assert_opaque_failure(12345)  # type: ignore[arg-type]
    assert_opaque_failure(None)  # type: ignore[arg-type]


def _hostile(params: object) -> str:
    info = inspect_envelope(seal(), FAST_POLICY)
    return envelope_module._serialize(params, info.salt, info.iv, info.ciphertext)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "params",
    [
        Pbkdf2Params(iterations=1_000_000_000),
        ScryptParams(n=2**30, r=8, p=1),
        ScryptParams(n=2**18, r=16, p=1),  # each within range, 512 MiB together
        ScryptParams(n=2**14, r=8, p=10_000),
        Argon2idParams(memory_kib=64 * 1024 * 1024, iterations=2, lanes=1),
        Argon2idParams(memory_kib=19 * 1024, iterations=1_000_000, lanes=1),
        Argon2idParams(memory_kib=19 * 1024, iterations=2, lanes=255),
        Pbkdf2Params(iterations=0),
        ScryptParams(n=3000, r=8, p=1),
    ],
)
def test_hostile_parameters_are_refused_before_any_work(
    params: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(*args: object) -> bytes:
        raise AssertionError("derive_key must not run for out-of-bounds parameters")

    envelope = _hostile(params)
    monkeypatch.setattr(envelope_module, "derive_key", forbidden)
    started = time.perf_counter()
    assert_opaque_failure(envelope)
    with pytest.raises(DecryptionError):
        decrypt_api_key(envelope, PASSWORD)  # default limits too
    with pytest.raises(DecryptionError):
        needs_upgrade(envelope)
    assert time.perf_counter() - started < 1.0


def test_default_limits_refuse_the_test_policy_cheap_parameters() -> None:
    with pytest.raises(DecryptionError):
        decrypt_api_key(seal(), PASSWORD)


def test_legacy_100k_envelope_opens_needs_upgrade_and_migrates() -> None:
    legacy_policy = Policy(pbkdf2=Pbkdf2Params(iterations=100_000))
    legacy = encrypt_api_key(KEY, PASSWORD, policy=legacy_policy)
    assert needs_upgrade(legacy)
    assert decrypt_api_key(legacy, PASSWORD) == KEY.reveal()
    migrated = reencrypt(legacy, PASSWORD)
    assert not needs_upgrade(migrated)
    assert inspect_envelope(migrated).kdf == Pbkdf2Params(600_000)
    assert decrypt_api_key(migrated, PASSWORD) == KEY.reveal()


def test_needs_upgrade_follows_the_policy_for_each_kdf() -> None:
    stronger = Policy(
        pbkdf2=Pbkdf2Params(iterations=2_000),
        scrypt=ScryptParams(n=2**11, r=8, p=1),
        argon2id=Argon2idParams(memory_kib=128, iterations=1, lanes=1),
        limits=FAST_POLICY.limits,
    )
    for kdf in ("pbkdf2-sha256", "scrypt", "argon2id"):
        envelope = seal(kdf)
        assert not needs_upgrade(envelope, FAST_POLICY)
        assert needs_upgrade(envelope, stronger)
        migrated = reencrypt(envelope, PASSWORD, policy=stronger)
        assert not needs_upgrade(migrated, stronger)
        assert inspect_envelope(migrated, stronger).kdf.name == kdf


def test_change_password_and_switch_kdf() -> None:
    envelope = seal(associated_data="user:alice")
    changed = change_password(
        envelope,
        PASSWORD,
        "a completely different passphrase",
        associated_data="user:alice",
        kdf="argon2id",
        policy=FAST_POLICY,
    )
    assert inspect_envelope(changed, FAST_POLICY).kdf.name == "argon2id"
    assert (
        decrypt_api_key(
            changed,
            "a completely different passphrase",
            associated_data="user:alice",
            policy=FAST_POLICY,
        )
        == KEY.reveal()
    )
    assert_opaque_failure(changed, associated_data="user:alice")  # old password
    with pytest.raises(DecryptionError):
        change_password(envelope, "wrong password!", "new passphrase", policy=FAST_POLICY)


def test_password_policy_and_key_validation() -> None:
    with pytest.raises(ConfigurationError) as caught:
        encrypt_api_key(KEY, "tiny-pw", policy=FAST_POLICY)
    assert "tiny-pw" not in str(caught.value)
    with pytest.raises(InvalidKeyError):
        encrypt_api_key("", PASSWORD, policy=FAST_POLICY)
    with pytest.raises(InvalidKeyError):
        encrypt_api_key("sk-ant api03 with spaces", PASSWORD, policy=FAST_POLICY)
    with pytest.raises(ConfigurationError):
        encrypt_api_key(KEY, PASSWORD, kdf="bcrypt", policy=FAST_POLICY)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        encrypt_api_key(KEY, PASSWORD, associated_data=42, policy=FAST_POLICY)  # type: ignore[arg-type]
    assert_opaque_failure(seal(associated_data="42"), associated_data=42)


def test_policy_must_respect_its_own_limits() -> None:
    with pytest.raises(ConfigurationError):
        Policy(pbkdf2=Pbkdf2Params(iterations=1_000))  # below the default floor
    with pytest.raises(ConfigurationError):
        Policy(scrypt=ScryptParams(n=3000, r=8, p=1))
    with pytest.raises(ConfigurationError):
        Policy(min_password_length=0)


def test_canary_key_never_leaks() -> None:
    canary = canary_key()
    secret_password = "CANARY-password-" + canary.fingerprint
    envelope = encrypt_api_key(canary, secret_password, policy=FAST_POLICY)
    assert canary.reveal() not in envelope
    assert secret_password not in envelope
    failures: list[BaseException] = []
    attempts: list[Callable[[], object]] = [
        lambda: decrypt_api_key(envelope, "wrong " + secret_password, policy=FAST_POLICY),
        lambda: decrypt_api_key(envelope[:-5], secret_password, policy=FAST_POLICY),
        lambda: decrypt_api_key(canary.reveal(), secret_password, policy=FAST_POLICY),
        lambda: encrypt_api_key(canary, "short", policy=FAST_POLICY),
        lambda: encrypt_api_key(canary.reveal() + " x", secret_password, policy=FAST_POLICY),
    ]
    for attempt in attempts:
        with pytest.raises(Exception) as caught:  # noqa: PT011 - several types on purpose
            attempt()
        failures.append(caught.value)
    for failure in failures:
        rendered = "".join(traceback.format_exception(failure)) + repr(failure)
        assert canary.reveal() not in rendered
        assert secret_password not in rendered
    assert canary.reveal() not in repr(inspect_envelope(envelope, FAST_POLICY))
