"""Envelope format, context validation and malformed input, against LocalKms."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patterns.errors import ConfigurationError, DecryptionError
from patterns.keys import canary_key, demo_key
from patterns.kms import LocalKms, canonical_context, describe_sealed, rewrap, seal, unseal
from patterns.kms.protocol import DataKey, KeyRef, frame_wrapped, parse_wrapped

CONTEXT = {"tenant": "acme", "user": "u-1"}


@pytest.fixture
def kms(tmp_path: Path) -> LocalKms:
    local = LocalKms(tmp_path / "keys.json", master_key=os.urandom(32))
    local.create_key("k")
    return local


def test_canonical_context_is_order_independent() -> None:
    assert canonical_context({"b": "2", "a": "1"}) == canonical_context({"a": "1", "b": "2"})
    assert canonical_context({"a": "1"}) == b'{"a":"1"}'


@pytest.mark.parametrize(
    "bad",
    [{}, {"": "x"}, {"a": ""}, {"a": 1}, {f"k{i}": "v" for i in range(17)}, {"a": "x" * 300}],
)
def test_bad_contexts_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        canonical_context(bad)  # type: ignore[arg-type]


def test_a_key_shaped_context_value_is_refused_without_echoing_it(kms: LocalKms) -> None:
    canary = canary_key()
    with pytest.raises(ConfigurationError) as caught:
        seal(demo_key("x"), kms, "k", {"tenant": canary.reveal()})
    assert canary.reveal() not in str(caught.value)


@pytest.mark.parametrize(
    "bad",
    ["", "kms2.abc.def", "kms1.", "kms1.a.b.c", "kms1.!!!.???", "kms1.AAAA.AAAA", "not sealed"],
)
def test_malformed_sealed_values_raise_one_decryption_error(kms: LocalKms, bad: str) -> None:
    with pytest.raises(DecryptionError):
        unseal(bad, kms, CONTEXT)


def test_frame_round_trip_and_malformed_frames() -> None:
    wrapped = frame_wrapped(KeyRef("k", 3), b"native")
    assert parse_wrapped(wrapped) == (KeyRef("k", 3), b"native")
    for bad in [b"", b"pkw1", b"pkw1\x00\x05{bad}x", b"xxxx" + wrapped[4:], wrapped[:-6]]:
        with pytest.raises(DecryptionError):
            parse_wrapped(bad)


def test_data_key_repr_hides_the_plaintext() -> None:
    data_key = DataKey(b"\x01" * 32, b"w" * 10)
    assert "hidden" in repr(data_key)
    assert "\\x01" not in repr(data_key)
    _plaintext, wrapped = data_key
    assert wrapped == b"w" * 10


def test_seal_refuses_empty_and_huge_secrets(kms: LocalKms) -> None:
    with pytest.raises(ConfigurationError):
        seal("", kms, "k", CONTEXT)
    with pytest.raises(ConfigurationError):
        seal("x" * (64 * 1024 + 1), kms, "k", CONTEXT)


def test_describe_sealed_reads_only_the_frame(kms: LocalKms) -> None:
    sealed = seal(demo_key("a"), kms, "k", CONTEXT)
    assert describe_sealed(sealed) == KeyRef("k", 1)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    secret=st.text(min_size=1, max_size=200),
    context=st.dictionaries(
        st.text(st.characters(codec="utf-8"), min_size=1, max_size=10),
        st.text(st.characters(codec="utf-8"), min_size=1, max_size=20),
        min_size=1,
        max_size=4,
    ),
)
def test_round_trip_for_any_secret_and_context(
    kms: LocalKms, secret: str, context: dict[str, str]
) -> None:
    try:
        sealed = seal(secret, kms, "k", context)
    except ConfigurationError:
        return  # e.g. surrogates or an accidental key shape: refused, which is fine
    assert unseal(sealed, kms, context) == secret
    changed = {**context, "extra-item": "x"}
    with pytest.raises(DecryptionError):
        unseal(sealed, kms, changed)


def test_expected_key_id_pins_the_customer_key(kms: LocalKms) -> None:
    kms.create_key("other")
    sealed = seal(demo_key("a"), kms, "k", CONTEXT)
    assert unseal(sealed, kms, CONTEXT, expected_key_id="k") == demo_key("a").reveal()
    with pytest.raises(DecryptionError):
        unseal(sealed, kms, CONTEXT, expected_key_id="other")
    with pytest.raises(DecryptionError):
        rewrap(sealed, kms, CONTEXT, expected_key_id="other")


def test_every_unseal_failure_has_the_same_message(kms: LocalKms) -> None:
    """One opaque message: which check failed (frame, KMS layer, secret layer) never shows."""
    sealed = seal(demo_key("a"), kms, "k", CONTEXT)
    prefix, wrapped, body = sealed.split(".")
    attempts = [
        (sealed, {"tenant": "evil", "user": "u-1"}),  # wrong context: refused by the KMS layer
        (sealed[:-3] + ("A" if sealed[-3] != "A" else "B") + sealed[-2:], CONTEXT),  # secret
        (f"{prefix}.{wrapped[:8]}.{body}", CONTEXT),  # malformed frame
        ("not sealed at all", CONTEXT),
    ]
    messages = set()
    for value, context in attempts:
        with pytest.raises(DecryptionError) as caught:
            unseal(value, kms, context)
        messages.add(str(caught.value))
    assert len(messages) == 1
