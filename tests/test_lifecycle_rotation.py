"""KMS rotate-then-rewrap over a store of sealed secrets, as a function and as
`python -m patterns rotate-kms`: every secret moves to the new version, a rerun does
nothing, damaged or foreign values are reported by name and never clobbered."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from patterns.__main__ import main
from patterns.errors import ConfigurationError
from patterns.keys import ApiKey, canary_key, demo_key
from patterns.kms import (
    AuditedKms,
    AuditLog,
    LocalKms,
    describe_sealed,
    seal,
    unseal_api_key,
    verify_audit_log,
)
from patterns.lifecycle.rotation import rewrap_store, rotate_and_rewrap
from patterns.lifecycle.sealed import MemorySealedStore, SealedDirectory

MASTER = os.urandom(32)


def context(user: str) -> dict[str, str]:
    return {"app": "test", "user": user}


@pytest.fixture
def kms(tmp_path: Path) -> LocalKms:
    return LocalKms(tmp_path / "keys.json", master_key=MASTER)


def fill(
    store: SealedDirectory | MemorySealedStore, kms: LocalKms, key_id: str, n: int = 4
) -> dict[str, ApiKey]:
    keys: dict[str, ApiKey] = {}
    for i in range(n):
        user = f"u{i}"
        keys[user] = demo_key(f"rotation-{i}")
        store.put(user, seal(keys[user], kms, key_id, context(user)), context(user))
    return keys


def test_rotate_and_rewrap_moves_every_secret_and_is_idempotent(tmp_path: Path, kms) -> None:
    key_id = kms.create_key("tenant")
    other = kms.create_key("other-tenant")
    store = SealedDirectory(tmp_path)
    keys = fill(store, kms, key_id)
    store.put("foreign", seal(demo_key("f"), kms, other, context("f")), context("f"))
    report = rotate_and_rewrap(kms, key_id, store)
    assert (report.rotated_to, report.latest, report.rewrapped) == (2, 2, 4)
    assert (report.already_current, report.other_keys, report.complete) == (0, 1, True)
    for user, key in keys.items():
        sealed = store.get(user)
        assert describe_sealed(sealed).version == 2
        assert unseal_api_key(sealed, kms, context(user)) == key
    kms.set_min_decryption_version(key_id, 2)  # safe now: nothing needs version 1
    again = rewrap_store(kms, key_id, store)
    assert (again.rewrapped, again.already_current) == (0, 4)
    assert "rewrapped 0 secret(s) to version 2; 4 already there" in again.lines()[0]
    for file in tmp_path.glob("*.sealed.json"):
        assert oct(file.stat().st_mode & 0o777) == "0o600"
        assert "DEMO" not in file.read_text()


def test_damaged_values_and_concurrent_changes_are_reported_not_clobbered(kms) -> None:
    key_id = kms.create_key("tenant")
    store = MemorySealedStore()
    fill(store, kms, key_id, 2)
    sealed = seal(demo_key("x"), kms, key_id, context("x"))
    store.put("swapped-row", sealed, context("someone-else"))  # the row-swap attack
    store.put("garbage", "kms1.not-a-sealed-value", context("g"))
    kms.rotate_key(key_id)

    class Racing(MemorySealedStore):
        def replace(self, name: str, expected: str, sealed: str) -> bool:
            if name == "u1":
                return False  # the application wrote a new value meanwhile
            return super().replace(name, expected, sealed)

    racing = Racing()
    for name, value, ctx in store.items():
        racing.put(name, value, ctx)
    report = rewrap_store(kms, key_id, racing)
    assert report.rewrapped == 1
    assert report.changed_meanwhile == ["u1"]
    assert sorted(report.failed) == ["garbage", "swapped-row"]
    assert not report.complete
    text = "\n".join(report.lines())
    assert "swapped-row" in text
    assert "run again" in text


def test_sealed_directory_refuses_plaintext_and_bad_names(tmp_path: Path) -> None:
    store = SealedDirectory(tmp_path)
    with pytest.raises(ConfigurationError, match="only sealed values"):
        store.put("u", canary_key().reveal(), context("u"))
    with pytest.raises(ConfigurationError, match="invalid secret name"):
        store.put("../escape", "kms1.x.y", context("u"))
    with pytest.raises(ConfigurationError, match="not a directory"):
        SealedDirectory(tmp_path / "missing")
    (tmp_path / "broken.sealed.json").write_text("{")
    with pytest.raises(ConfigurationError, match="not a sealed-secret file"):
        list(store.items())


def test_rotate_kms_command(tmp_path: Path, capsys, monkeypatch) -> None:
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    audit_path = tmp_path / "audit.jsonl"
    kms = LocalKms(tmp_path / "keys.json", master_key=MASTER)
    key_id = kms.create_key("tenant")
    fill(SealedDirectory(secrets_dir), kms, key_id, 3)
    args = [
        "rotate-kms",
        "--key-id",
        key_id,
        "--secrets",
        str(secrets_dir),
        "--kms-file",
        str(tmp_path / "keys.json"),
    ]
    monkeypatch.delenv("PATTERNS_KMS_MASTER_KEY", raising=False)
    monkeypatch.delenv("PATTERNS_KMS_PASSPHRASE", raising=False)
    assert main(args) == 2
    assert "PATTERNS_KMS_MASTER_KEY" in capsys.readouterr().err
    monkeypatch.setenv("PATTERNS_KMS_MASTER_KEY", base64.urlsafe_b64encode(MASTER).decode())
    assert main([*args, "--audit", str(audit_path)]) == 0
    out = capsys.readouterr().out
    assert f"rotated {key_id} to version 2" in out
    assert "rewrapped 3 secret(s) to version 2" in out
    assert main([*args, "--rewrap-only"]) == 0
    assert "rewrapped 0 secret(s) to version 2; 3 already there" in capsys.readouterr().out
    report = verify_audit_log(audit_path)
    assert report.ok
    operations = [json.loads(line)["operation"] for line in audit_path.read_text().splitlines()]
    assert operations.count("rotate_key") == 1
    assert operations.count("rewrap_data_key") == 3
    monkeypatch.delenv("PATTERNS_VAULT_ADDR", raising=False)
    monkeypatch.delenv("PATTERNS_AWS_KMS_REGION", raising=False)
    assert main(["rotate-kms", "--key-id", key_id, "--secrets", str(secrets_dir)]) == 2
    assert "no KMS configured" in capsys.readouterr().err


def test_audited_kms_records_a_rotation(tmp_path: Path) -> None:
    kms = AuditedKms(
        LocalKms(tmp_path / "k.json", master_key=MASTER), AuditLog(tmp_path / "a.jsonl"), actor="t"
    )
    key_id = kms.create_key("t")
    store = MemorySealedStore()
    fill(store, kms.inner, key_id, 2)  # type: ignore[arg-type]
    assert rotate_and_rewrap(kms, key_id, store).rewrapped == 2
    assert verify_audit_log(tmp_path / "a.jsonl").ok
