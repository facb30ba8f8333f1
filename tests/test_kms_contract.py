"""The shared contract suite: the same tests against LocalKms, a real OpenBao dev server
(transit, through hvac) and moto's AWS KMS server (over HTTP, through boto3).

Where moto does not enforce a key state that real AWS KMS enforces (a disabled key, a key
pending deletion still decrypts in moto 5.x), the test checks the state KMS reports and says
so; real KMS answers DisabledException / KMSInvalidStateException, which AwsKms maps to
KmsError (tested in test_kms_backends.py).
"""

from __future__ import annotations

import base64
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from patterns.errors import DecryptionError, KmsError, PatternError
from patterns.keys import canary_key
from patterns.kms import (
    AuditedKms,
    AuditLog,
    AwsKms,
    Kms,
    LocalKms,
    VaultTransitKms,
    describe_sealed,
    read_audit_log,
    rewrap,
    seal,
    unseal,
    unseal_api_key,
    verify_audit_log,
)
from tests.kms_servers import APP_POLICY, BaoServer, MotoServer, moto_kms_server, openbao_dev_server

CONTEXT = {"tenant": "acme", "user": "u-42"}
_names = itertools.count(1)


@pytest.fixture(scope="session")
def openbao() -> Iterator[BaoServer]:
    with openbao_dev_server() as server:
        yield server


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    with moto_kms_server() as server:
        yield server


@dataclass
class Backend:
    name: str
    kms: Kms
    enforces_key_state: bool
    has_versions: bool
    shreds: bool


@pytest.fixture(params=["local", "openbao", "moto"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        kms: Kms = LocalKms(tmp_path / "keys.json", master_key=os.urandom(32))
        return Backend("local", kms, enforces_key_state=True, has_versions=True, shreds=True)
    if request.param == "openbao":
        server: BaoServer = request.getfixturevalue("openbao")
        kms = VaultTransitKms.connect(
            server.url, server.app_token, admin_token=server.admin_token, app_policy=APP_POLICY
        )
        return Backend("openbao", kms, enforces_key_state=True, has_versions=True, shreds=True)
    aws: MotoServer = request.getfixturevalue("moto")
    return Backend(
        "moto", AwsKms(aws.client()), enforces_key_state=False, has_versions=False, shreds=False
    )


def new_key(backend: Backend) -> str:
    return backend.kms.create_key(f"contract-{os.getpid()}-{next(_names)}")


def flip_last(text: str) -> str:
    return text[:-2] + ("A" if text[-2] != "A" else "B") + text[-1]


def tamper_wrapped(sealed: str) -> str:
    prefix, wrapped, body = sealed.split(".")
    raw = bytearray(base64.urlsafe_b64decode(wrapped + "=" * (-len(wrapped) % 4)))
    raw[-1] ^= 0x01
    new = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    return f"{prefix}.{new}.{body}"


def assert_no_leak(text: str, secret: str) -> None:
    assert secret not in text
    assert secret[14:40] not in text


def test_round_trip_and_nothing_secret_in_the_sealed_value(backend: Backend) -> None:
    key_id = new_key(backend)
    canary = canary_key()
    sealed = seal(canary, backend.kms, key_id, CONTEXT)
    assert sealed.startswith("kms1.")
    assert_no_leak(sealed, canary.reveal())
    assert unseal_api_key(sealed, backend.kms, CONTEXT) == canary
    assert unseal(sealed, backend.kms, dict(reversed(CONTEXT.items()))) == canary.reveal()
    assert describe_sealed(sealed).key_id == key_id


def test_every_seal_uses_a_fresh_data_key(backend: Backend) -> None:
    key_id = new_key(backend)
    first = backend.kms.generate_data_key(key_id, CONTEXT)
    second = backend.kms.generate_data_key(key_id, CONTEXT)
    assert first.plaintext != second.plaintext
    assert len(first.plaintext) == 32
    assert "hidden" in repr(first)
    assert base64.b64encode(first.plaintext).decode() not in repr(first)
    assert backend.kms.decrypt_data_key(first.wrapped, CONTEXT) == first.plaintext


@pytest.mark.parametrize(
    "other",
    [
        {"tenant": "evil", "user": "u-42"},
        {"tenant": "acme", "user": "u-43"},
        {"tenant": "acme"},
        {**CONTEXT, "purpose": "x"},
    ],
)
def test_wrong_context_fails_at_both_layers(backend: Backend, other: dict[str, str]) -> None:
    key_id = new_key(backend)
    canary = canary_key()
    sealed = seal(canary, backend.kms, key_id, CONTEXT)
    with pytest.raises(DecryptionError) as caught:
        unseal(sealed, backend.kms, other)
    assert_no_leak(str(caught.value), canary.reveal())
    data_key = backend.kms.generate_data_key(key_id, CONTEXT)
    with pytest.raises(DecryptionError):
        backend.kms.decrypt_data_key(data_key.wrapped, other)


@pytest.mark.parametrize("where", ["ciphertext", "wrapped", "truncated"])
def test_tampering_is_detected(backend: Backend, where: str) -> None:
    key_id = new_key(backend)
    canary = canary_key()
    sealed = seal(canary, backend.kms, key_id, CONTEXT)
    bad = {
        "ciphertext": flip_last(sealed),
        "wrapped": tamper_wrapped(sealed),
        "truncated": sealed[:-10],
    }[where]
    with pytest.raises(DecryptionError) as caught:
        unseal(bad, backend.kms, CONTEXT)
    assert_no_leak(str(caught.value), canary.reveal())


def test_rotate_then_rewrap_keeps_the_secret_and_moves_the_version(backend: Backend) -> None:
    key_id = new_key(backend)
    canary = canary_key()
    sealed = seal(canary, backend.kms, key_id, CONTEXT)
    before = backend.kms.key_info(key_id).latest_version
    after = backend.kms.rotate_key(key_id)
    assert after is not None
    assert before is not None
    assert after == before + 1
    assert unseal(sealed, backend.kms, CONTEXT) == canary.reveal()  # old versions still decrypt
    moved = rewrap(sealed, backend.kms, CONTEXT)
    assert moved.split(".")[2] == sealed.split(".")[2]  # the secret's ciphertext is untouched
    assert moved != sealed
    if backend.has_versions:
        assert describe_sealed(sealed).version == before
        assert describe_sealed(moved).version == after
    assert unseal(moved, backend.kms, CONTEXT) == canary.reveal()
    with pytest.raises(DecryptionError):
        rewrap(sealed, backend.kms, {"tenant": "evil", "user": "u-42"})


def test_disable_refuses_every_use_until_enabled(backend: Backend) -> None:
    key_id = new_key(backend)
    canary = canary_key()
    sealed = [seal(canary, backend.kms, key_id, CONTEXT) for _ in range(3)]
    backend.kms.disable_key(key_id)
    assert backend.kms.key_info(key_id).enabled is False
    if not backend.enforces_key_state:
        pytest.skip(
            "moto reports the key as Disabled but still serves it; real AWS KMS answers "
            "DisabledException, which AwsKms maps to KmsError (see test_kms_backends.py)"
        )
    for value in sealed:
        with pytest.raises(KmsError) as caught:
            unseal(value, backend.kms, CONTEXT)
        assert_no_leak(str(caught.value), canary.reveal())
    with pytest.raises(KmsError):
        seal(canary, backend.kms, key_id, CONTEXT)
    with pytest.raises(KmsError):
        rewrap(sealed[0], backend.kms, CONTEXT)
    backend.kms.enable_key(key_id)
    assert backend.kms.key_info(key_id).enabled is True
    assert all(unseal(value, backend.kms, CONTEXT) == canary.reveal() for value in sealed)


def test_destroying_the_key_shreds_every_secret(backend: Backend) -> None:
    key_id = new_key(backend)
    canaries = [canary_key() for _ in range(3)]
    sealed = [seal(canary, backend.kms, key_id, CONTEXT) for canary in canaries]
    backend.kms.rotate_key(key_id)
    sealed.append(seal(canaries[0], backend.kms, key_id, CONTEXT))
    backend.kms.destroy_key(key_id)
    if not backend.shreds:
        assert backend.kms.key_info(key_id).enabled is False  # PendingDeletion
        pytest.skip(
            "AWS KMS deletes a key at the earliest 7 days after ScheduleKeyDeletion and refuses "
            "it meanwhile (KMSInvalidStateException); moto records the state but still serves it"
        )
    for value in sealed:
        with pytest.raises(KmsError) as caught:
            unseal(value, backend.kms, CONTEXT)
        for canary in canaries:
            assert_no_leak(str(caught.value), canary.reveal())
    with pytest.raises(KmsError):
        backend.kms.enable_key(key_id)


def test_unknown_key_is_a_clear_kms_error(backend: Backend) -> None:
    with pytest.raises(KmsError):
        backend.kms.generate_data_key("no-such-key-anywhere", CONTEXT)


def test_audited_backend_logs_every_operation_without_secrets(
    backend: Backend, tmp_path: Path
) -> None:
    log_path = tmp_path / "audit.jsonl"
    audited = AuditedKms(backend.kms, AuditLog(log_path), actor="svc-web")
    key_id = new_key(Backend(backend.name, audited, True, True, True))
    canary = canary_key()
    sealed = seal(canary, audited, key_id, CONTEXT)
    unseal(sealed, audited, CONTEXT)
    with pytest.raises(PatternError):
        unseal(sealed, audited, {"tenant": "evil", "user": "u-42"})
    audited.rotate_key(key_id)
    rewrap(sealed, audited, CONTEXT)
    entries = read_audit_log(log_path)
    operations = [entry["operation"] for entry in entries]
    assert operations == [
        "create_key",
        "generate_data_key",
        "decrypt_data_key",
        "decrypt_data_key",
        "rotate_key",
        "rewrap_data_key",
    ]
    assert [entry["outcome"] for entry in entries][2:4] == ["ok", "denied"]
    assert entries[3]["error"] == "DecryptionError"
    assert entries[1]["context"] == CONTEXT
    assert {entry["actor"] for entry in entries} == {"svc-web"}
    assert {entry["backend"] for entry in entries} == {backend.kms.backend}
    text = log_path.read_text()
    assert_no_leak(text, canary.reveal())
    assert verify_audit_log(log_path).ok
