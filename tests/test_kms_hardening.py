"""Hardening found by review: shared audit logs, hostile key files, a thread-safe cache."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from patterns.errors import KmsError
from patterns.kms import AuditLog, CachingKms, LocalKms, seal, unseal, verify_audit_log

CONTEXT = {"tenant": "acme", "user": "u-1"}


def _record(log: AuditLog, n: int) -> None:
    log.record(
        actor=f"writer-{n}",
        operation="decrypt",
        backend="local",
        key_id="k",
        key_version=1,
        context=CONTEXT,
        outcome="ok",
    )


def test_two_writers_on_one_audit_log_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    first, second = AuditLog(path), AuditLog(path)
    for n in range(10):
        _record(first if n % 2 else second, n)
    report = verify_audit_log(path)
    assert report.ok, report
    assert report.entries == 10
    assert AuditLog(path).head == report.head  # and the file can still be opened


def test_concurrent_writers_in_threads(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    logs = [AuditLog(path) for _ in range(4)]

    def write(log: AuditLog) -> None:
        for i in range(25):
            _record(log, i)

    threads = [threading.Thread(target=write, args=(log,)) for log in logs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    report = verify_audit_log(path)
    assert report.ok, report
    assert report.entries == 100


def test_audit_log_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _record(AuditLog(path), 1)
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "kdf",
    [
        {"name": "scrypt", "n": 2**30, "r": 8, "p": 1},  # 1 TiB of memory
        {"name": "scrypt", "n": 3 * 2**14, "r": 8, "p": 1},  # not a power of two
        {"name": "scrypt", "n": 2**14, "r": 64, "p": 16},
    ],
)
def test_a_planted_key_file_cannot_demand_huge_scrypt_costs(
    tmp_path: Path, kdf: dict[str, object]
) -> None:
    path = tmp_path / "keys.json"
    LocalKms.from_passphrase(path, "correct horse battery staple", scrypt_n=2**14)
    document = json.loads(path.read_text())
    document["kdf"] = {**document["kdf"], **kdf}
    path.write_text(json.dumps(document))
    started = time.monotonic()
    with pytest.raises(KmsError, match="outside safe bounds"):
        LocalKms.from_passphrase(path, "correct horse battery staple")
    assert time.monotonic() - started < 1


def test_key_file_writes_are_private_and_complete(tmp_path: Path) -> None:
    kms = LocalKms(tmp_path / "keys.json", master_key=os.urandom(32))
    kms.create_key("tenant")
    assert (tmp_path / "keys.json").stat().st_mode & 0o777 == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".localkms-")]


def test_cache_is_safe_under_threads(tmp_path: Path) -> None:
    local = LocalKms(tmp_path / "keys.json", master_key=os.urandom(32))
    key_id = local.create_key("tenant")
    cache = CachingKms(local, max_age=0.001, max_uses=3)
    sealed = [seal(f"secret-{i}", cache, key_id, CONTEXT) for i in range(4)]
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for i in range(200):
                assert unseal(sealed[i % 4], cache, CONTEXT) == f"secret-{i % 4}"
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []


def test_a_non_ascii_hash_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _record(AuditLog(path), 1)
    entry = json.loads(path.read_text())
    entry["hash"] = "é" * 64
    path.write_text(json.dumps(entry) + "\n")
    report = verify_audit_log(path)
    assert not report.ok
