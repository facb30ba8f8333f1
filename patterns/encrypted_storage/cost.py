"""The trade-off in numbers: what an unlock costs the user, and what guessing costs an attacker.

An attacker who copies an envelope (a stolen laptop, a synced browser profile, a backup) can
try passwords offline, as fast as their hardware runs the KDF. The only defences are the
password's strength and the KDF's cost per guess; this module turns both into times.

The GPU rates are published hashcat benchmarks, cited with source and date in
:data:`PUBLISHED_RATES`. They are scaled to other parameters by the cost ratio (linear in
PBKDF2 iterations and in scrypt's N*r*p), which if anything flatters the attacker for scrypt,
whose memory use limits GPU parallelism further as N grows. For Argon2id we found no
benchmark we could verify for these parameters, so its rate is an input.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from patterns.encrypted_storage.kdf import (
    Argon2idParams,
    KdfParams,
    Pbkdf2Params,
    ScryptParams,
    derive_key,
)

__all__ = [
    "PASSWORD_SPACES",
    "PUBLISHED_RATES",
    "PasswordSpace",
    "PublishedRate",
    "Tradeoff",
    "assess",
    "attacker_guesses_per_second",
    "crack_curve",
    "describe_params",
    "expected_crack_seconds",
    "format_duration",
    "measure_unlock_seconds",
    "unlock_seconds_on_device",
]


@dataclass(frozen=True, slots=True)
class PublishedRate:
    """One published benchmark: guesses per second of one GPU at the stated parameters."""

    kdf: str
    guesses_per_second: float
    reference: KdfParams
    gpu: str
    source: str
    date: str


#: hashcat 6.2.6 on one NVIDIA GeForce RTX 4090 (Sam Croley, "Chick3nman"), published
#: October 2022 at https://gist.github.com/Chick3nman/32e662a5bb63bc4f51b847bb422222fd
#: mode 10900 PBKDF2-HMAC-SHA256 at 999 iterations: 8865.7 kH/s;
#: mode 8900 scrypt (hashcat's test hash: N=16384, r=8, p=1): 7126 H/s.
PUBLISHED_RATES: Final[dict[str, PublishedRate]] = {
    "pbkdf2-sha256": PublishedRate(
        kdf="pbkdf2-sha256",
        guesses_per_second=8_865_700.0,
        reference=Pbkdf2Params(iterations=999),
        gpu="NVIDIA GeForce RTX 4090",
        source="hashcat 6.2.6 benchmark, mode 10900 (gist.github.com/Chick3nman/"
        "32e662a5bb63bc4f51b847bb422222fd)",
        date="October 2022",
    ),
    "scrypt": PublishedRate(
        kdf="scrypt",
        guesses_per_second=7_126.0,
        reference=ScryptParams(n=16_384, r=8, p=1),
        gpu="NVIDIA GeForce RTX 4090",
        source="hashcat 6.2.6 benchmark, mode 8900 (gist.github.com/Chick3nman/"
        "32e662a5bb63bc4f51b847bb422222fd)",
        date="October 2022",
    ),
}


def _work(params: KdfParams) -> float:
    if isinstance(params, Pbkdf2Params):
        return float(params.iterations)
    if isinstance(params, ScryptParams):
        return float(params.n * params.r * params.p)
    return float(params.memory_kib * params.iterations)


def attacker_guesses_per_second(
    params: KdfParams, *, gpus: int = 1, rate_override: float | None = None
) -> float | None:
    """Guesses per second for ``gpus`` GPUs against ``params``.

    ``rate_override`` is a per-GPU rate at ``params`` themselves (use it for Argon2id, or
    for hardware of your own); without it the published rate is scaled. None when no
    published rate exists and no override is given.
    """
    if rate_override is not None:
        return rate_override * gpus
    published = PUBLISHED_RATES.get(params.name)
    if published is None or isinstance(params, Argon2idParams):
        return None
    return published.guesses_per_second * _work(published.reference) / _work(params) * gpus


def expected_crack_seconds(password_bits: float, guesses_per_second: float) -> float:
    """Average time to find a password drawn uniformly from 2**bits: half the space."""
    return float(2.0 ** (password_bits - 1)) / guesses_per_second


@dataclass(frozen=True, slots=True)
class PasswordSpace:
    """A way of choosing passwords, and the entropy it gives when chosen *at random*."""

    label: str
    bits: float


def _bits(alphabet: int, length: int) -> float:
    return round(length * math.log2(alphabet), 1)


#: Entropy of randomly generated passwords (a human-chosen password is far weaker than its
#: length suggests: "Summer2024!" is in every cracking word list).
PASSWORD_SPACES: Final[tuple[PasswordSpace, ...]] = (
    PasswordSpace("a password from the top 1 million of a breach list", round(math.log2(1e6), 1)),
    PasswordSpace("8 random lowercase letters", _bits(26, 8)),
    PasswordSpace("8 random printable ASCII characters", _bits(95, 8)),
    PasswordSpace("4 random diceware words", _bits(7776, 4)),
    PasswordSpace("12 random printable ASCII characters", _bits(95, 12)),
    PasswordSpace("6 random diceware words", _bits(7776, 6)),
)

_UNITS: Final = (
    ("years", 365.25 * 86400),
    ("days", 86400.0),
    ("hours", 3600.0),
    ("minutes", 60.0),
    ("seconds", 1.0),
)


def format_duration(seconds: float) -> str:
    """A human reading of a (possibly astronomical) duration, e.g. ``3.2 days``."""
    if seconds < 1:
        return "under a second"
    for unit, size in _UNITS:
        if seconds >= size:
            value = seconds / size
            if unit == "years" and value >= 1e6:
                return f"{value:.1e} years"
            return f"{value:,.1f} {unit}"
    return f"{seconds:.1f} seconds"  # pragma: no cover


def measure_unlock_seconds(
    params: KdfParams, *, timer: Callable[[], float] = time.perf_counter
) -> float:
    """Time one derivation with ``params`` on this machine (one unlock, not a loop)."""
    started = timer()
    derive_key(params, b"correct horse battery staple", os.urandom(16))
    return timer() - started


def unlock_seconds_on_device(params: Pbkdf2Params, iterations_per_second: float) -> float:
    """Unlock time for PBKDF2 on a device whose PBKDF2-HMAC-SHA256 speed is known."""
    return params.iterations / iterations_per_second


def describe_params(params: KdfParams) -> str:
    """A short human label, e.g. ``PBKDF2-HMAC-SHA256, 600,000 iterations``."""
    if isinstance(params, Pbkdf2Params):
        return f"PBKDF2-HMAC-SHA256, {params.iterations:,} iterations"
    if isinstance(params, ScryptParams):
        mib = params.memory_bytes // (1024 * 1024)
        exponent = params.n.bit_length() - 1
        return f"scrypt N=2^{exponent}, r={params.r}, p={params.p} ({mib} MiB)"
    return f"Argon2id {params.memory_kib // 1024} MiB, t={params.iterations}, p={params.lanes}"


@dataclass(frozen=True, slots=True)
class Tradeoff:
    """One point of the trade-off: the user's unlock time against the attacker's search."""

    params: KdfParams
    space: PasswordSpace
    gpus: int
    guesses_per_second: float | None
    rate_source: str
    unlock_seconds: float | None = None

    @property
    def crack_seconds(self) -> float | None:
        """Average time for the attacker to find the password, or None without a rate."""
        if self.guesses_per_second is None:
            return None
        return expected_crack_seconds(self.space.bits, self.guesses_per_second)

    def as_text(self) -> str:
        """The trade-off in four lines (times measured here use the ``N.NN s`` form)."""
        unlock = (
            f"{self.unlock_seconds:.2f} s (measured once on this machine)"
            if self.unlock_seconds is not None
            else "not measured"
        )
        lines = [f"KDF: {describe_params(self.params)}", f"unlock: {unlock}"]
        if self.guesses_per_second is None:
            lines.append(f"attacker: no published rate for {self.params.name}; enter one")
        else:
            lines.append(
                f"attacker: {self.gpus:,} GPU(s), {self.guesses_per_second:,.0f} guesses per "
                f"second ({self.rate_source})"
            )
            seconds = self.crack_seconds
            assert seconds is not None
            lines.append(
                f"password: {self.space.label} ({self.space.bits} bits): found on average in "
                f"{format_duration(seconds)}"
            )
        return "\n".join(lines)


def assess(
    params: KdfParams,
    space: PasswordSpace,
    *,
    gpus: int = 1,
    rate_override: float | None = None,
    unlock_seconds: float | None = None,
) -> Tradeoff:
    """Combine KDF parameters, a password space and an attacker into a :class:`Tradeoff`."""
    rate = attacker_guesses_per_second(params, gpus=gpus, rate_override=rate_override)
    if rate_override is not None:
        source = "your figure"
    elif params.name in PUBLISHED_RATES:
        published = PUBLISHED_RATES[params.name]
        source = f"{published.gpu}, {published.source.split(' (')[0]}, {published.date}, scaled"
    else:
        source = "none"
    return Tradeoff(params, space, gpus, rate, source, unlock_seconds)


def crack_curve(
    params: KdfParams,
    bits: tuple[float, ...],
    *,
    gpus: int = 1,
    rate_override: float | None = None,
) -> list[tuple[float, float]]:
    """(bits, average crack seconds) points for a plot; empty without a rate."""
    rate = attacker_guesses_per_second(params, gpus=gpus, rate_override=rate_override)
    if rate is None:
        return []
    return [(b, expected_crack_seconds(b, rate)) for b in bits]
