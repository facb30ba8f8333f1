"""ApiKey never shows the key except through reveal(); checked with canary keys."""

from __future__ import annotations

import copy
import logging
import pickle
import re

import pytest

from patterns.errors import InvalidKeyError, PatternError
from patterns.keys import (
    ApiKey,
    canary_key,
    demo_key,
    describe_secret,
    fingerprint,
    key_from_environment,
    prompt_for_key,
)
from patterns.scanning import find_secrets, is_fake

DISPLAY_RE = re.compile(r"^sk-ant-api03-…[A-Za-z0-9_-]{4} \(sha256:[0-9a-f]{8}\)$")


@pytest.fixture
def canary() -> ApiKey:
    return canary_key()


def test_every_string_view_shows_only_the_fingerprint(canary: ApiKey) -> None:
    secret = canary.reveal()
    views = [repr(canary), str(canary), f"{canary}", f"{canary!r}", f"{canary:>80}"]
    views += ["%s" % canary, "{}".format(canary), format(canary)]  # noqa: UP031, UP032
    views += [str([canary]), str({"key": canary}), repr((canary,))]
    for view in views:
        assert secret not in view
        assert canary.fingerprint in view
    assert DISPLAY_RE.match(str(canary))


def test_display_has_prefix_tail_and_fingerprint(canary: ApiKey) -> None:
    secret = canary.reveal()
    assert str(canary) == f"sk-ant-api03-…{secret[-4:]} ({fingerprint(secret)})"
    assert repr(canary) == f"ApiKey('{canary}')"
    assert canary.kind == "api03"


def test_logging_never_writes_the_key(canary: ApiKey, caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tests.keys")
    with caplog.at_level(logging.DEBUG, logger="tests.keys"):
        logger.info("using %s", canary)
        logger.info("using %r", canary)
        logger.info("payload %s", {"api_key": canary})
    assert canary.reveal() not in caplog.text
    assert caplog.text.count(canary.fingerprint) == 3


def test_exception_messages_and_tracebacks_hide_the_key(canary: ApiKey) -> None:
    with pytest.raises(RuntimeError) as raised:
        raise RuntimeError(f"upstream refused {canary}")
    assert canary.reveal() not in str(raised.value)
    assert canary.reveal() not in raised.getrepr(showlocals=True).__str__()


def test_pickling_is_refused(canary: ApiKey) -> None:
    with pytest.raises(TypeError, match="refuses to be pickled"):
        pickle.dumps(canary)
    with pytest.raises(TypeError):
        pickle.dumps({"nested": [canary]})


def test_copies_are_the_same_object(canary: ApiKey) -> None:
    assert copy.copy(canary) is canary
    assert copy.deepcopy({"k": canary})["k"] is canary


def test_immutable(canary: ApiKey) -> None:
    with pytest.raises(AttributeError):
        canary._value = "x"
    with pytest.raises(AttributeError):
        del canary._value
    assert not hasattr(canary, "__dict__")


def test_equality_and_hashing() -> None:
    a = demo_key("alice")
    assert a == ApiKey(a.reveal())
    assert a == ApiKey(a)
    assert a != demo_key("bob")
    assert a != a.reveal()  # never equal to a plain string: compare ApiKey to ApiKey
    assert len({a, ApiKey(a.reveal()), demo_key("bob")}) == 2


def test_equality_uses_constant_time_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    import hmac

    real = hmac.compare_digest

    def spy(x: bytes, y: bytes) -> bool:
        calls.append((x, y))
        return real(x, y)

    monkeypatch.setattr("patterns.keys.hmac.compare_digest", spy)
    assert demo_key("a") == demo_key("a")
    assert calls


def test_surrounding_whitespace_is_stripped() -> None:
    key = demo_key("paste")
    assert ApiKey(f"  {key.reveal()}\n") == key


@pytest.mark.parametrize(
    "bad", ["", "   ", "sk-ant-api03-with space", "line\nbreak-inside", "tab\there", "ключ"]
)
def test_malformed_values_are_rejected_without_echo(bad: str) -> None:
    with pytest.raises(InvalidKeyError) as raised:
        ApiKey(bad)
    assert isinstance(raised.value, PatternError)
    assert isinstance(raised.value, ValueError)
    if bad.strip():
        assert bad.strip() not in str(raised.value)


def test_non_string_is_rejected() -> None:
    with pytest.raises(InvalidKeyError, match="str, not bytes"):
        ApiKey(b"sk-ant-api03-bytes")  # type: ignore[arg-type]


def test_demo_keys_are_format_valid_marked_and_stable() -> None:
    key = demo_key("alice")
    assert key == demo_key("alice")
    assert key != demo_key("bob")
    assert key.is_fake
    assert "DEMO" in key.reveal()
    assert re.fullmatch(r"sk-ant-api03-DEMO[A-Za-z0-9_-]{89}AA", key.reveal())
    admin = demo_key("ops", kind="admin01")
    assert admin.kind == "admin01"
    matches = find_secrets(key.reveal(), include_fakes=True)
    assert [m.rule.id for m in matches] == ["anthropic-api-key"]
    assert find_secrets(key.reveal()) == []  # allowed: it is marked


def test_canary_keys_are_random_format_valid_and_marked() -> None:
    first, second = canary_key(), canary_key()
    assert first != second
    assert is_fake(first.reveal())
    assert [m.rule.id for m in find_secrets(first.reveal(), include_fakes=True)] == [
        "anthropic-api-key"
    ]


def test_describe_secret_of_short_or_unknown_values_shows_no_tail() -> None:
    assert describe_secret("short-secret") == f"… ({fingerprint('short-secret')})"
    long_unknown = "x" * 40
    assert describe_secret(long_unknown).startswith("…xxxx (sha256:")


def test_key_from_environment(monkeypatch: pytest.MonkeyPatch, canary: ApiKey) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert key_from_environment() is None
    monkeypatch.setenv("ANTHROPIC_API_KEY", canary.reveal() + "\n")
    assert key_from_environment() == canary
    assert prompt_for_key() == canary


def test_prompt_uses_getpass(monkeypatch: pytest.MonkeyPatch, canary: ApiKey) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setattr("patterns.keys.sys.stdin.isatty", lambda: True, raising=False)
    monkeypatch.setattr("patterns.keys.getpass.getpass", lambda prompt: canary.reveal())
    assert prompt_for_key() == canary
    monkeypatch.setattr("patterns.keys.getpass.getpass", lambda prompt: "  ")
    assert prompt_for_key() is None


def test_prompt_returns_none_when_the_front_end_cannot_ask(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setattr("patterns.keys.sys.stdin.isatty", lambda: True, raising=False)

    def cannot_ask(prompt: str) -> str:
        raise NotImplementedError("this frontend does not support input requests")

    monkeypatch.setattr("patterns.keys.getpass.getpass", cannot_ask)
    assert prompt_for_key() is None
