"""Interop with Web Crypto in a real browser (headless system Chromium via Playwright).

patterns/web/ is served over http://127.0.0.1 (a secure context, so crypto.subtle exists) by
a Starlette StaticFiles app in a BackgroundServer. Python-made envelopes open in the browser,
browser-made envelopes open in Python, the documented vectors open in both, and tampering or
a wrong password fails cleanly on both sides.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from patterns.encrypted_storage import (
    DECRYPTION_FAILED,
    decrypt_api_key,
    encrypt_api_key,
    inspect_envelope,
)
from patterns.errors import DecryptionError
from patterns.keys import canary_key
from patterns.serving import BackgroundServer
from tests.test_encrypted_storage import FAST_POLICY, KEY, PASSWORD
from tests.test_encrypted_storage_vectors import VECTORS

WEB_DIR: Final = Path(__file__).resolve().parents[1] / "patterns" / "web"
FAST_LIMITS: Final = {"minIterations": 1_000, "maxIterations": 2_000_000}


@pytest.fixture(scope="module")
def page(browser: Any) -> Iterator[Any]:
    app = Starlette(routes=[Mount("/", app=StaticFiles(directory=WEB_DIR))])
    with BackgroundServer(app) as server:
        context = browser.new_context()
        tab = context.new_page()
        console: list[str] = []
        tab.on("console", lambda message: console.append(message.text))
        tab.goto(f"{server.url}/encrypted-storage-test.html")
        tab.wait_for_function("window.encryptedStorageReady === true", timeout=15_000)
        assert tab.evaluate("window.isSecureContext")
        assert tab.text_content("#status") == "ready"
        yield tab
        context.close()
        assert not any("CANARY" in line for line in console)


def call(page: Any, name: str, *args: Any) -> dict[str, Any]:
    """Call an export of encrypted-storage.js; returns {ok, value} or {ok, name, message}."""
    result: dict[str, Any] = page.evaluate(
        "([name, args]) => window.attempt(name, args)", [name, list(args)]
    )
    return result


def test_python_envelope_opens_in_the_browser(page: Any) -> None:
    envelope = encrypt_api_key(KEY, PASSWORD)  # default 600,000 iterations
    result = call(page, "decryptApiKey", envelope, PASSWORD)
    assert result == {"ok": True, "value": KEY.reveal()}


def test_browser_envelope_opens_in_python(page: Any) -> None:
    result = call(page, "encryptApiKey", KEY.reveal(), PASSWORD)
    assert result["ok"], result
    envelope = result["value"]
    info = inspect_envelope(envelope)
    assert info.kdf.to_json() == {"name": "pbkdf2-sha256", "iterations": 600_000}
    assert len(info.salt) == 16
    assert len(info.iv) == 12
    assert decrypt_api_key(envelope, PASSWORD) == KEY.reveal()


def test_associated_data_both_ways(page: Any) -> None:
    options = {"associatedData": "user:alice", "iterations": 1_000, "limits": FAST_LIMITS}
    made_in_browser = call(page, "encryptApiKey", KEY.reveal(), PASSWORD, options)["value"]
    assert (
        decrypt_api_key(made_in_browser, PASSWORD, associated_data="user:alice", policy=FAST_POLICY)
        == KEY.reveal()
    )
    with pytest.raises(DecryptionError):
        decrypt_api_key(made_in_browser, PASSWORD, associated_data="user:bob", policy=FAST_POLICY)
    made_in_python = encrypt_api_key(
        KEY, PASSWORD, associated_data="user:alice", policy=FAST_POLICY
    )
    ok = call(page, "decryptApiKey", made_in_python, PASSWORD, options)
    assert ok == {"ok": True, "value": KEY.reveal()}
    wrong = call(
        page, "decryptApiKey", made_in_python, PASSWORD, dict(options, associatedData="user:bob")
    )
    assert wrong == {"ok": False, "name": "DecryptionError", "message": DECRYPTION_FAILED}


@pytest.mark.parametrize(
    "vector", [v for v in VECTORS if v["kdf"]["name"] == "pbkdf2-sha256"], ids=lambda v: v["name"]
)
def test_documented_vectors_open_in_the_browser(page: Any, vector: dict[str, Any]) -> None:
    options = {"associatedData": vector["associated_data"]} if vector["associated_data"] else {}
    result = call(page, "decryptApiKey", vector["envelope"], vector["password"], options)
    assert result == {"ok": True, "value": vector["plaintext"]}
    upgrade = call(page, "needsUpgrade", vector["envelope"])
    assert upgrade["value"] is (vector["kdf"]["iterations"] < 600_000)


def test_server_only_kdfs_get_their_own_clear_message(page: Any) -> None:
    for vector in VECTORS:
        if vector["kdf"]["name"] == "pbkdf2-sha256":
            continue
        result = call(page, "decryptApiKey", vector["envelope"], vector["password"])
        assert result["ok"] is False
        assert result["name"] == "DecryptionError"
        assert "open it on the server" in result["message"]


def test_wrong_password_fails_cleanly_in_javascript(page: Any) -> None:
    envelope = encrypt_api_key(KEY, PASSWORD, policy=FAST_POLICY)
    result = call(page, "decryptApiKey", envelope, "not the password", {"limits": FAST_LIMITS})
    assert result == {"ok": False, "name": "DecryptionError", "message": DECRYPTION_FAILED}


def _tampered_variants(envelope: str) -> list[str]:
    document = json.loads(envelope)
    variants = []
    for position in range(0, len(envelope), 3):  # every third byte: keeps the test quick
        flipped = bytearray(envelope.encode())
        flipped[position] ^= 0x01
        variants.append(flipped.decode("latin-1"))
    for field, value in [
        ("kdf", {"name": "pbkdf2-sha256", "iterations": 1_000_000_000}),
        ("version", 2),
        ("salt", document["salt"][:-1] + "B"),
    ]:
        variants.append(json.dumps(dict(document, **{field: value}), separators=(",", ":")))
    variants.append(envelope[:-10])
    variants.append(envelope[:-1] + ',"version":1}')  # duplicate field: no parser differential
    variants.append(json.dumps(document))  # not canonical
    return variants


def test_tampering_fails_in_javascript(page: Any) -> None:
    envelope = encrypt_api_key(KEY, PASSWORD, policy=FAST_POLICY)
    variants = _tampered_variants(envelope)
    results = page.evaluate(
        """async ([variants, password, limits]) => {
            const out = [];
            for (const v of variants) {
                out.push(await window.attempt("decryptApiKey", [v, password, {limits}]));
            }
            return out;
        }""",
        [variants, PASSWORD, FAST_LIMITS],
    )
    assert len(results) == len(variants)
    for variant, result in zip(variants, results, strict=True):
        assert result == {"ok": False, "name": "DecryptionError", "message": DECRYPTION_FAILED}, (
            variant
        )


def test_tampering_fails_in_python_for_browser_envelopes(page: Any) -> None:
    options = {"iterations": 1_000, "limits": FAST_LIMITS}
    envelope = call(page, "encryptApiKey", KEY.reveal(), PASSWORD, options)["value"]
    for variant in _tampered_variants(envelope):
        with pytest.raises(DecryptionError):
            decrypt_api_key(variant, PASSWORD, policy=FAST_POLICY)


def test_hostile_iterations_refused_quickly_in_javascript(page: Any) -> None:
    envelope = json.loads(encrypt_api_key(KEY, PASSWORD, policy=FAST_POLICY))
    envelope["kdf"]["iterations"] = 1_000_000_000
    hostile = json.dumps(envelope, separators=(",", ":"))
    elapsed = page.evaluate(
        """async ([text]) => {
            const started = performance.now();
            const result = await window.attempt("decryptApiKey", [text, "whatever password"]);
            return [result.ok, performance.now() - started];
        }""",
        [hostile],
    )
    assert elapsed[0] is False
    assert elapsed[1] < 500


def test_browser_input_validation(page: Any) -> None:
    short = call(page, "encryptApiKey", KEY.reveal(), "short")
    assert short["ok"] is False
    assert short["name"] == "RangeError"
    weak = call(page, "encryptApiKey", KEY.reveal(), PASSWORD, {"iterations": 100})
    assert weak["ok"] is False
    assert weak["name"] == "RangeError"
    empty = call(page, "encryptApiKey", "", PASSWORD)
    assert empty["ok"] is False
    assert empty["name"] == "TypeError"


def test_canary_key_round_trip_leaks_nothing_into_the_envelope(page: Any) -> None:
    canary = canary_key()
    options = {"iterations": 1_000, "limits": FAST_LIMITS}
    envelope = call(page, "encryptApiKey", canary.reveal(), PASSWORD, options)["value"]
    assert canary.reveal() not in envelope
    assert decrypt_api_key(envelope, PASSWORD, policy=FAST_POLICY) == canary.reveal()
    failure = call(page, "decryptApiKey", envelope, "wrong password", {"limits": FAST_LIMITS})
    assert canary.reveal() not in json.dumps(failure)


GUIDE_SHAPE: Final = """async ([apiKey, password]) => {
  // The source guide's function, reduced to its shape: the salt is created inline, inside
  // the deriveKey call, and then returned by a name that was never declared.
  const encoder = new TextEncoder();
  const material = await crypto.subtle.importKey(
    "raw", encoder.encode(password), { name: "PBKDF2" }, false, ["deriveKey"]);
  const aesKey = await crypto.subtle.deriveKey(
    { name: "PBKDF2", salt: crypto.getRandomValues(new Uint8Array(16)), iterations: 100000,
      hash: "SHA-256" },
    material, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const encrypted = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, aesKey,
    encoder.encode(apiKey));
  try {
    return { encrypted, iv, salt };
  } catch (error) {
    return { error: `${error.name}: ${error.message}` };
  }
}"""


def test_the_guide_function_throws_after_losing_its_salt(page: Any) -> None:
    """Documents the bug notebook 02 teaches: the guide's code cannot return its salt."""
    result = page.evaluate(GUIDE_SHAPE, [KEY.reveal(), PASSWORD])
    assert result == {"error": "ReferenceError: salt is not defined"}
