"""FileStore: the localStorage analogue. Atomic, private, and it refuses plaintext keys."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from patterns.encrypted_storage import FileStore, decrypt_api_key, encrypt_api_key
from patterns.errors import InvalidKeyError, StoreUnavailable
from patterns.keys import canary_key
from tests.test_encrypted_storage import FAST_POLICY, KEY, PASSWORD


def test_round_trip_through_a_new_instance(tmp_path: Path) -> None:
    path = tmp_path / "profile" / "keys.json"
    envelope = encrypt_api_key(KEY, PASSWORD, policy=FAST_POLICY)
    FileStore(path).set("anthropic", envelope)
    reloaded = FileStore(path)
    assert reloaded.keys() == ["anthropic"]
    assert "anthropic" in reloaded
    stored = reloaded.get("anthropic")
    assert stored is not None
    assert decrypt_api_key(stored, PASSWORD, policy=FAST_POLICY) == KEY.reveal()
    assert reloaded.get("missing") is None


def test_modes_are_private(tmp_path: Path) -> None:
    path = tmp_path / "new-dir" / "keys.json"
    store = FileStore(path)
    store.set("a", "1")
    assert store.mode == 0o600
    assert (path.parent.stat().st_mode & 0o777) == 0o700
    path.chmod(0o644)  # someone loosened it: the next write tightens it again
    store.set("b", "2")
    assert store.mode == 0o600


def test_remove_and_clear(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "keys.json")
    store.set("a", "1")
    store.set("b", "2")
    store.remove("a")
    store.remove("never-there")
    assert store.keys() == ["b"]
    store.clear()
    assert store.keys() == []


def test_refuses_plaintext_keys(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "keys.json")
    canary = canary_key()
    with pytest.raises(InvalidKeyError) as caught:
        store.set("anthropic", canary.reveal())
    assert canary.reveal() not in str(caught.value)
    with pytest.raises(InvalidKeyError):
        store.set("anthropic", f'{{"apiKey": "{KEY.reveal()}"}}')  # fake keys too
    assert not (tmp_path / "keys.json").exists()


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_failed_write_leaves_old_content_and_no_temp_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    path = tmp_path / "keys.json"
    store = FileStore(path)
    store.set("anthropic", "old envelope")
    before = path.read_bytes()

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, broken)
    with pytest.raises(StoreUnavailable) as caught:
        store.set("anthropic", "new envelope")
    monkeypatch.undo()
    assert "previous content is unchanged" in str(caught.value)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["keys.json"]


def test_corrupt_or_unreadable_store(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(StoreUnavailable):
        FileStore(path).get("anthropic")
    path.write_text(json.dumps({"a": 1}), encoding="utf-8")
    with pytest.raises(StoreUnavailable):
        FileStore(path).keys()
    directory = tmp_path / "a-directory"
    directory.mkdir()
    with pytest.raises(StoreUnavailable):
        FileStore(directory).get("x")


def test_file_holds_no_plaintext(tmp_path: Path) -> None:
    canary = canary_key()
    store = FileStore(tmp_path / "keys.json")
    store.set("anthropic", encrypt_api_key(canary, PASSWORD, policy=FAST_POLICY))
    assert canary.reveal() not in (tmp_path / "keys.json").read_text(encoding="utf-8")
    assert "FileStore(" in repr(store)
