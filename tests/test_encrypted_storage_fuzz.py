"""Property: changing any single byte of an envelope always gives the one DecryptionError.

Envelopes here use the test-only low-cost policy (1,000 PBKDF2 iterations, scrypt N=2^10,
Argon2id 64 KiB), whose limits accept those parameters explicitly, so thousands of attempts
take seconds instead of hours; the parsing and checking code is the same as with defaults.
"""

from __future__ import annotations

from typing import Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patterns.encrypted_storage import DECRYPTION_FAILED, decrypt_api_key, encrypt_api_key
from patterns.errors import DecryptionError
from tests.test_encrypted_storage import FAST_POLICY, KEY, PASSWORD

ASSOCIATED: Final = "user:alice"
SAMPLES: Final = {
    kdf: encrypt_api_key(
        KEY, PASSWORD, kdf=kdf, associated_data=ASSOCIATED, policy=FAST_POLICY
    ).encode()
    for kdf in ("pbkdf2-sha256", "scrypt", "argon2id")
}


def assert_refused(data: bytes) -> None:
    with pytest.raises(DecryptionError) as caught:
        decrypt_api_key(data, PASSWORD, associated_data=ASSOCIATED, policy=FAST_POLICY)
    assert str(caught.value) == DECRYPTION_FAILED


@pytest.mark.parametrize("kdf", sorted(SAMPLES))
def test_samples_open_unmodified(kdf: str) -> None:
    opened = decrypt_api_key(SAMPLES[kdf], PASSWORD, associated_data=ASSOCIATED, policy=FAST_POLICY)
    assert opened == KEY.reveal()


@pytest.mark.parametrize("kdf", sorted(SAMPLES))
@pytest.mark.parametrize("mask", [0x01, 0x20, 0x80])
def test_every_byte_flipped(kdf: str, mask: int) -> None:
    """Exhaustive over positions: every byte, with a low, a case and a high bit flipped."""
    sample = SAMPLES[kdf]
    for position in range(len(sample)):
        flipped = bytearray(sample)
        flipped[position] ^= mask
        assert_refused(bytes(flipped))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), kdf=st.sampled_from(sorted(SAMPLES)), mask=st.integers(1, 255))
def test_any_byte_any_flip(data: st.DataObject, kdf: str, mask: int) -> None:
    sample = SAMPLES[kdf]
    position = data.draw(st.integers(0, len(sample) - 1), label="position")
    flipped = bytearray(sample)
    flipped[position] ^= mask
    assert_refused(bytes(flipped))


@settings(max_examples=200, deadline=None)
@given(
    kdf=st.sampled_from(sorted(SAMPLES)),
    cut=st.integers(0, 400),
    tail=st.binary(max_size=8),
)
def test_truncated_or_extended(kdf: str, cut: int, tail: bytes) -> None:
    sample = SAMPLES[kdf]
    candidate = sample[: min(cut, len(sample) - 1)] + tail
    if candidate.strip() == sample:  # the tail re-created the original (or added whitespace)
        return
    assert_refused(candidate)
