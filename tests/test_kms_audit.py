"""The audit log: what it records, that it never holds secrets, and that tampering shows."""

from __future__ import annotations

import json
import os
from itertools import count
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patterns.errors import ConfigurationError, KmsError
from patterns.keys import canary_key
from patterns.kms import AuditedKms, AuditLog, CachingKms, LocalKms, read_audit_log, seal, unseal
from patterns.kms.audit import GENESIS, _line_hash, verify_audit_log

CONTEXT = {"tenant": "acme", "user": "u-1"}


def fake_clock() -> object:
    ticks = count(1_767_225_600)  # 2026-01-01T00:00:00Z, one second per entry
    return lambda: float(next(ticks))


def build(tmp_path: Path, hmac_key: bytes | None = None) -> tuple[AuditedKms, Path, str]:
    log_path = tmp_path / "audit.jsonl"
    log = AuditLog(log_path, hmac_key=hmac_key, clock=fake_clock())  # type: ignore[arg-type]
    audited = AuditedKms(LocalKms(tmp_path / "k.json", master_key=os.urandom(32)), log, actor="web")
    audited.create_key("k")
    canary = canary_key()
    sealed = seal(canary, audited, "k", CONTEXT)
    for _ in range(3):
        unseal(sealed, audited, CONTEXT)
    audited.rotate_key("k")
    audited.disable_key("k")
    with pytest.raises(KmsError):
        unseal(sealed, audited, CONTEXT)
    assert canary.reveal() not in log_path.read_text()
    return audited, log_path, log.head


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_entries_record_who_what_which_version_when_and_outcome(tmp_path: Path) -> None:
    _, path, head = build(tmp_path)
    entries = read_audit_log(path)
    assert [e["seq"] for e in entries] == list(range(1, 9))
    assert entries[0]["time"] == "2026-01-01T00:00:00Z"
    assert entries[0]["prev"] == GENESIS
    generate = entries[1]
    assert (generate["actor"], generate["operation"], generate["key_id"]) == (
        "web",
        "generate_data_key",
        "k",
    )
    assert generate["key_version"] == 1
    assert generate["context"] == CONTEXT
    assert entries[5]["operation"] == "rotate_key"
    assert entries[5]["key_version"] == 2
    assert (entries[7]["outcome"], entries[7]["error"]) == ("denied", "KmsError")
    report = verify_audit_log(path, expected_head=head)
    assert report.ok
    assert str(report) == "audit log OK: 8 entries, chain intact"


def edit(path: Path) -> None:
    rows = lines(path)
    entry = json.loads(rows[2])
    entry["actor"] = "someone-else"
    rows[2] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    path.write_text("\n".join(rows) + "\n")


def delete(path: Path) -> None:
    rows = lines(path)
    del rows[3]
    path.write_text("\n".join(rows) + "\n")


def reorder(path: Path) -> None:
    rows = lines(path)
    rows[2], rows[3] = rows[3], rows[2]
    path.write_text("\n".join(rows) + "\n")


def insert(path: Path) -> None:
    rows = lines(path)
    rows.insert(4, rows[4])
    path.write_text("\n".join(rows) + "\n")


def garble(path: Path) -> None:
    rows = lines(path)
    rows[1] = rows[1][:-5]
    path.write_text("\n".join(rows) + "\n")


@pytest.mark.parametrize(
    ("tamper", "bad_line"), [(edit, 3), (delete, 4), (reorder, 3), (insert, 6), (garble, 2)]
)
def test_tampering_is_detected_at_the_right_line(
    tmp_path: Path, tamper: object, bad_line: int
) -> None:
    _, path, _ = build(tmp_path)
    tamper(path)  # type: ignore[operator]
    report = verify_audit_log(path)
    assert not report.ok
    assert report.first_bad_line == bad_line
    assert "TAMPERED" in str(report)


def test_truncation_is_detected_with_a_saved_head(tmp_path: Path) -> None:
    _, path, head = build(tmp_path)
    path.write_text("\n".join(lines(path)[:-2]) + "\n")
    assert verify_audit_log(path).ok  # a plain chain cannot see a cut-off end ...
    report = verify_audit_log(path, expected_head=head)  # ... a saved head can
    assert not report.ok
    assert "ends early" in report.reason


def test_recomputed_chain_is_caught_only_with_an_hmac_key(tmp_path: Path) -> None:
    key = os.urandom(32)
    _, path, _ = build(tmp_path, hmac_key=key)
    assert verify_audit_log(path, hmac_key=key).ok
    # The attacker edits a line and recomputes every plain SHA-256 link after it.
    rows = [json.loads(row) for row in lines(path)]
    rows[2]["actor"] = "someone-else"
    prev = GENESIS
    for row in rows:
        row["prev"] = prev
        row["hash"] = prev = _line_hash(row, prev, None)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert verify_audit_log(path).ok  # unkeyed check is fooled
    assert not verify_audit_log(path, hmac_key=key).ok  # keyed check is not


def test_appending_to_a_broken_log_is_refused(tmp_path: Path) -> None:
    _, path, _ = build(tmp_path)
    edit(path)
    with pytest.raises(KmsError, match="broken audit log"):
        AuditLog(path)


def test_missing_log_is_reported_broken(tmp_path: Path) -> None:
    assert not verify_audit_log(tmp_path / "nope.jsonl").ok


def test_no_audit_no_key_fail_closed(tmp_path: Path) -> None:
    log_path = tmp_path / "audit.jsonl"
    audited = AuditedKms(
        LocalKms(tmp_path / "k.json", master_key=os.urandom(32)), AuditLog(log_path), actor="web"
    )
    audited.create_key("k")
    log_path.unlink()
    log_path.mkdir()  # now the log cannot be appended to
    with pytest.raises(KmsError, match="cannot write the audit log"):
        audited.generate_data_key("k", CONTEXT)


def test_reopening_continues_the_chain(tmp_path: Path) -> None:
    _, path, _ = build(tmp_path)
    reopened = AuditLog(path)
    reopened.record(
        actor="ops",
        operation="note",
        backend="local",
        key_id="k",
        key_version=None,
        context=None,
        outcome="ok",
    )
    assert verify_audit_log(path).ok
    assert read_audit_log(path)[-1]["seq"] == 9


def test_retiring_versions_is_audited_and_unsupported_backends_say_so(tmp_path: Path) -> None:
    audited, path, _ = build(tmp_path)
    audited.enable_key("k")
    audited.set_min_decryption_version("k", 2)
    assert read_audit_log(path)[-1]["operation"] == "set_min_decryption_version"
    no_versions = AuditedKms(
        CachingKms(
            LocalKms(tmp_path / "k2.json", master_key=os.urandom(32)), max_age=1, max_uses=1
        ),
        AuditLog(tmp_path / "audit2.jsonl"),
        actor="web",
    )
    with pytest.raises(ConfigurationError, match="no minimum decryption version"):
        no_versions.set_min_decryption_version("k", 1)
    assert read_audit_log(tmp_path / "audit2.jsonl")[-1]["outcome"] == "denied"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    line=st.integers(min_value=0, max_value=7),
    field=st.sampled_from(
        [
            "seq",
            "time",
            "actor",
            "operation",
            "backend",
            "key_id",
            "key_version",
            "context",
            "outcome",
            "error",
            "prev",
            "hash",
        ]
    ),
    value=st.one_of(st.text(max_size=8), st.integers(), st.none()),
)
def test_any_single_field_change_is_detected(
    tmp_path_factory: pytest.TempPathFactory, line: int, field: str, value: object
) -> None:
    key = b"k" * 32
    _, path, _ = build(tmp_path_factory.mktemp("audit"), hmac_key=key)
    rows = lines(path)
    entry = json.loads(rows[line])
    if entry[field] == value:
        return  # not a change
    entry[field] = value
    rows[line] = json.dumps(entry)
    path.write_text("\n".join(rows) + "\n")
    report = verify_audit_log(path, hmac_key=key)
    assert not report.ok
    assert report.first_bad_line == line + 1
