"""Password-based key derivation: parameters, bounds and the policy that ties them together.

Every derivation is done by ``cryptography`` (``PBKDF2HMAC``, ``Scrypt``, ``Argon2id``); this
module only decides *which* parameters are acceptable. That decision matters twice:

* when we create an envelope, the parameters come from a :class:`Policy` (OWASP's figures by
  default), so nobody copies a weak iteration count by accident;
* when we open one, the parameters come from the envelope, which an attacker may have
  written. :class:`Limits` are checked *before* any work is done, so a hostile envelope cannot
  ask for a billion iterations or gigabytes of memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal, TypeAlias

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id as _Argon2idKdf
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt as _ScryptKdf

from patterns.errors import ConfigurationError

__all__ = [
    "DEFAULT_POLICY",
    "KDF_NAMES",
    "Argon2idParams",
    "KdfName",
    "KdfParams",
    "Limits",
    "Pbkdf2Params",
    "Policy",
    "ScryptParams",
    "derive_key",
    "params_from_json",
]

KdfName = Literal["pbkdf2-sha256", "scrypt", "argon2id"]
KDF_NAMES: Final[tuple[KdfName, ...]] = ("pbkdf2-sha256", "scrypt", "argon2id")

#: AES-256: the derived key is 32 bytes for every KDF.
KEY_LENGTH: Final = 32


@dataclass(frozen=True, slots=True)
class Pbkdf2Params:
    """PBKDF2-HMAC-SHA256: the only password KDF that Web Crypto offers in every browser."""

    iterations: int = 600_000  # OWASP Password Storage Cheat Sheet

    name: KdfName = field(default="pbkdf2-sha256", init=False)

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "iterations": self.iterations}

    def weaker_than(self, other: Pbkdf2Params) -> bool:
        return self.iterations < other.iterations


@dataclass(frozen=True, slots=True)
class ScryptParams:
    """scrypt: memory-hard, so a GPU cannot run thousands of guesses in parallel cheaply."""

    n: int = 2**17  # OWASP: N=2^17, r=8, p=1 (128 MiB)
    r: int = 8
    p: int = 1

    name: KdfName = field(default="scrypt", init=False)

    @property
    def memory_bytes(self) -> int:
        """scrypt needs 128 * N * r bytes per derivation."""
        return 128 * self.n * self.r

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "n": self.n, "r": self.r, "p": self.p}

    def weaker_than(self, other: ScryptParams) -> bool:
        return self.n < other.n or self.r < other.r or self.p < other.p


@dataclass(frozen=True, slots=True)
class Argon2idParams:
    """Argon2id (RFC 9106, version 0x13): the memory-hard winner of the Password Hashing
    Competition. Not available in Web Crypto, so envelopes using it open only server-side."""

    memory_kib: int = 19 * 1024  # OWASP: m=19 MiB, t=2, p=1
    iterations: int = 2
    lanes: int = 1

    name: KdfName = field(default="argon2id", init=False)

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "memory_kib": self.memory_kib,
            "iterations": self.iterations,
            "lanes": self.lanes,
        }

    def weaker_than(self, other: Argon2idParams) -> bool:
        return self.memory_kib < other.memory_kib or self.iterations < other.iterations


KdfParams: TypeAlias = Pbkdf2Params | ScryptParams | Argon2idParams

_MIB: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Inclusive bounds on parameters we are willing to run.

    The upper bounds stop a hostile envelope from burning CPU and memory (checked before
    deriving); the lower bounds refuse nonsense and envelopes older than anything we ever
    wrote. The default floor for PBKDF2 (100,000) still opens the guide's envelopes, so they
    can be migrated; lower it only for a known legacy data set.
    """

    pbkdf2_iterations: tuple[int, int] = (100_000, 2_000_000)
    scrypt_n: tuple[int, int] = (2**14, 2**18)
    scrypt_r: tuple[int, int] = (8, 16)
    scrypt_p: tuple[int, int] = (1, 4)
    scrypt_max_memory_bytes: int = 256 * _MIB
    argon2_memory_kib: tuple[int, int] = (7 * 1024, 256 * 1024)
    argon2_iterations: tuple[int, int] = (1, 10)
    argon2_lanes: tuple[int, int] = (1, 8)

    def violations(self, params: KdfParams) -> list[str]:
        """Return what is out of bounds in ``params`` (empty when acceptable)."""
        problems: list[str] = []

        def within(label: str, value: int, bounds: tuple[int, int]) -> None:
            low, high = bounds
            if not low <= value <= high:
                problems.append(f"{label}={value} is outside [{low}, {high}]")

        if isinstance(params, Pbkdf2Params):
            within("iterations", params.iterations, self.pbkdf2_iterations)
        elif isinstance(params, ScryptParams):
            within("n", params.n, self.scrypt_n)
            within("r", params.r, self.scrypt_r)
            within("p", params.p, self.scrypt_p)
            if params.memory_bytes > self.scrypt_max_memory_bytes:
                problems.append(f"memory {params.memory_bytes} bytes exceeds the limit")
        else:
            within("memory_kib", params.memory_kib, self.argon2_memory_kib)
            within("iterations", params.iterations, self.argon2_iterations)
            within("lanes", params.lanes, self.argon2_lanes)
        return problems


@dataclass(frozen=True, slots=True)
class Policy:
    """What new envelopes use, and what old ones may use and still be opened.

    ``needs_upgrade`` compares an envelope with the parameters here, so raising a figure in
    the policy is all it takes to start migrating stored envelopes as users unlock them.
    """

    pbkdf2: Pbkdf2Params = field(default_factory=Pbkdf2Params)
    scrypt: ScryptParams = field(default_factory=ScryptParams)
    argon2id: Argon2idParams = field(default_factory=Argon2idParams)
    limits: Limits = field(default_factory=Limits)
    #: NIST SP 800-63B asks for at least 8 characters; a longer passphrase is far better.
    min_password_length: int = 8

    def __post_init__(self) -> None:
        for params in (self.pbkdf2, self.scrypt, self.argon2id):
            validate_shape(params)
            problems = self.limits.violations(params)
            if problems:
                raise ConfigurationError(
                    f"the policy's {params.name} parameters are outside its own limits "
                    f"({'; '.join(problems)}): widen Limits or choose other parameters"
                )
        if self.min_password_length < 1:
            raise ConfigurationError("min_password_length must be at least 1")

    def params_for(self, kdf: str) -> KdfParams:
        """The parameters this policy uses for new envelopes with ``kdf``."""
        if kdf == "pbkdf2-sha256":
            return self.pbkdf2
        if kdf == "scrypt":
            return self.scrypt
        if kdf == "argon2id":
            return self.argon2id
        raise ConfigurationError(f"unknown KDF {kdf!r}: choose one of {', '.join(KDF_NAMES)}")


def _is_int(value: object) -> bool:
    # bool is a subclass of int; JSON true must not pass as 1.
    return isinstance(value, int) and not isinstance(value, bool)


def validate_shape(params: KdfParams) -> None:
    """Reject parameters that no KDF accepts (raises ConfigurationError)."""
    values = [v for k, v in params.to_json().items() if k != "name"]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
        raise ConfigurationError(f"{params.name} parameters must be positive integers")
    if isinstance(params, ScryptParams) and (params.n < 2 or params.n & (params.n - 1)):
        raise ConfigurationError("scrypt n must be a power of two greater than 1")
    if isinstance(params, Argon2idParams) and params.memory_kib < 8 * params.lanes:
        raise ConfigurationError("argon2id memory_kib must be at least 8 * lanes")


_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "pbkdf2-sha256": ("name", "iterations"),
    "scrypt": ("name", "n", "r", "p"),
    "argon2id": ("name", "memory_kib", "iterations", "lanes"),
}


def params_from_json(value: object) -> KdfParams:
    """Parse the ``kdf`` object of an envelope strictly: exact fields, integer values.

    Raises ConfigurationError on anything else; the envelope layer turns that into the one
    opaque DecryptionError.
    """
    if not isinstance(value, dict):
        raise ConfigurationError("kdf must be an object")
    name = value.get("name")
    if not isinstance(name, str) or name not in _FIELDS:
        raise ConfigurationError("unknown KDF")
    if tuple(value) != _FIELDS[name]:
        raise ConfigurationError("unexpected KDF fields")
    numbers = [value[key] for key in _FIELDS[name][1:]]
    if not all(_is_int(n) for n in numbers):
        raise ConfigurationError("KDF parameters must be integers")
    params: KdfParams
    if name == "pbkdf2-sha256":
        params = Pbkdf2Params(iterations=numbers[0])
    elif name == "scrypt":
        params = ScryptParams(n=numbers[0], r=numbers[1], p=numbers[2])
    else:
        params = Argon2idParams(memory_kib=numbers[0], iterations=numbers[1], lanes=numbers[2])
    validate_shape(params)
    return params


def derive_key(params: KdfParams, password: bytes, salt: bytes) -> bytes:
    """Derive the 32-byte AES key. Callers check :class:`Limits` first."""
    if isinstance(params, Pbkdf2Params):
        return PBKDF2HMAC(
            algorithm=hashes.SHA256(), length=KEY_LENGTH, salt=salt, iterations=params.iterations
        ).derive(password)
    if isinstance(params, ScryptParams):
        return _ScryptKdf(salt=salt, length=KEY_LENGTH, n=params.n, r=params.r, p=params.p).derive(
            password
        )
    return _Argon2idKdf(
        salt=salt,
        length=KEY_LENGTH,
        iterations=params.iterations,
        lanes=params.lanes,
        memory_cost=params.memory_kib,
    ).derive(password)


DEFAULT_POLICY: Final = Policy()
