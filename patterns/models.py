"""The one default model, and the catalog of model ids the local stand-in knows.

Model ids retire. The source guide hard-codes ``claude-3-haiku-20240307`` and
``claude-3-sonnet-20240229`` in its examples; both are retired, so its code now fails with a
404. This module is the single place the suite names a model: :data:`DEFAULT_MODEL` (override
it with the ``PATTERNS_MODEL`` environment variable) and :data:`CATALOG`, which the stand-in
serves from ``GET /v1/models`` and uses to accept or reject ``model`` in a request.

The ids and their lifecycle come from the installed ``anthropic`` SDK (``types/model.py`` lists
the current ids; ``_data/deprecated_models.py`` the deprecated ones with their end-of-life
dates). Release dates and token limits are stand-in values, not the real API's: a date the
id does not carry is the epoch, which is what the real ``ModelInfo`` uses for "unknown".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

__all__ = [
    "CATALOG",
    "DEFAULT_MODEL",
    "FALLBACK_MODEL",
    "MODEL_ENVIRONMENT_VARIABLE",
    "Lifecycle",
    "ModelEntry",
    "default_model",
    "find_model",
]

Lifecycle = Literal["active", "deprecated", "retired"]

#: The environment variable that overrides the default model everywhere in the suite.
MODEL_ENVIRONMENT_VARIABLE: Final = "PATTERNS_MODEL"

#: The default when the variable is unset: the smallest active model (cheap for demos).
FALLBACK_MODEL: Final = "claude-haiku-4-5"

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_STAND_IN_MAX_INPUT: Final = 200_000
_STAND_IN_MAX_OUTPUT: Final = 64_000


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One model as ``GET /v1/models`` describes it (the fields of the SDK's ``ModelInfo``)."""

    id: str
    display_name: str
    lifecycle: Lifecycle = "active"
    created_at: datetime = _EPOCH
    deprecated_at: datetime | None = None
    retires_at: datetime | None = None
    max_input_tokens: int = _STAND_IN_MAX_INPUT
    max_tokens: int = _STAND_IN_MAX_OUTPUT

    @property
    def usable(self) -> bool:
        """Whether a Messages request may name this model (retired ones answer 404)."""
        return self.lifecycle != "retired"

    @property
    def line(self) -> str | None:
        """The model line (``haiku``, ``sonnet``, ...) read from the catalog entry."""
        for line in ("haiku", "sonnet", "opus", "fable", "mythos"):
            if f"-{line}" in self.id:
                return line
        return None

    def to_api(self) -> dict[str, object]:
        """The JSON object the Models API returns for this model."""

        def stamp(moment: datetime | None) -> str | None:
            return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")

        return {
            "type": "model",
            "id": self.id,
            "display_name": self.display_name,
            "created_at": stamp(self.created_at),
            "lifecycle": self.lifecycle,
            "deprecated_at": stamp(self.deprecated_at),
            "retires_at": stamp(self.retires_at),
            "line": self.line,
            "max_input_tokens": self.max_input_tokens,
            "max_tokens": self.max_tokens,
        }


def _day(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)


def _entry(model_id: str, name: str, **fields: object) -> ModelEntry:
    """An entry whose release date is read from a dated id (``...-20251001``)."""
    suffix = model_id.rsplit("-", 1)[-1]
    if len(suffix) == 8 and suffix.isdigit() and "created_at" not in fields:
        fields["created_at"] = _day(f"{suffix[:4]}-{suffix[4:6]}-{suffix[6:]}")
    return ModelEntry(model_id, name, **fields)  # type: ignore[arg-type]


# Deprecation data as the SDK ships it (end-of-life dates in _data/deprecated_models.py).
_MYTHOS_PREVIEW_EOL: Final = _day("2026-06-30")
_OPUS_45_EOL: Final = _day("2027-01-22")
_SONNET_45_EOL: Final = _day("2026-11-30")

#: Newest first, like the real Models API. Retired ids are listed so that the stand-in can
#: answer them the way the real API does (404) and the notebooks can show why.
CATALOG: Final[tuple[ModelEntry, ...]] = (
    _entry("claude-fable-5-2", "Claude Fable 5.2"),
    _entry("claude-mythos-5-2", "Claude Mythos 5.2"),
    _entry("claude-haiku-5-5", "Claude Haiku 5.5"),
    _entry("claude-sonnet-5-5", "Claude Sonnet 5.5"),
    _entry("claude-fable-5-1", "Claude Fable 5.1"),
    _entry("claude-opus-5-5", "Claude Opus 5.5"),
    _entry("claude-mythos-5-1", "Claude Mythos 5.1"),
    _entry("claude-sonnet-5", "Claude Sonnet 5"),
    _entry("claude-fable-5", "Claude Fable 5"),
    _entry("claude-mythos-5", "Claude Mythos 5"),
    _entry("claude-opus-5", "Claude Opus 5"),
    _entry("claude-opus-4-8", "Claude Opus 4.8"),
    _entry("claude-opus-4-7", "Claude Opus 4.7"),
    _entry(
        "claude-mythos-preview",
        "Claude Mythos Preview",
        lifecycle="deprecated",
        retires_at=_MYTHOS_PREVIEW_EOL,
    ),
    _entry("claude-opus-4-6", "Claude Opus 4.6"),
    _entry("claude-sonnet-4-6", "Claude Sonnet 4.6"),
    _entry("claude-haiku-4-5", "Claude Haiku 4.5"),
    _entry("claude-haiku-4-5-20251001", "Claude Haiku 4.5"),
    _entry("claude-opus-4-5", "Claude Opus 4.5", lifecycle="deprecated", retires_at=_OPUS_45_EOL),
    _entry(
        "claude-opus-4-5-20251101",
        "Claude Opus 4.5",
        lifecycle="deprecated",
        retires_at=_OPUS_45_EOL,
    ),
    _entry(
        "claude-sonnet-4-5", "Claude Sonnet 4.5", lifecycle="deprecated", retires_at=_SONNET_45_EOL
    ),
    _entry(
        "claude-sonnet-4-5-20250929",
        "Claude Sonnet 4.5",
        lifecycle="deprecated",
        retires_at=_SONNET_45_EOL,
    ),
    # The source guide's ids: no longer in the SDK's model list, and retired.
    _entry("claude-3-sonnet-20240229", "Claude Sonnet 3", lifecycle="retired"),
    _entry("claude-3-haiku-20240307", "Claude Haiku 3", lifecycle="retired"),
)

_BY_ID: Final = {entry.id: entry for entry in CATALOG}


def find_model(model_id: str) -> ModelEntry | None:
    """Return the catalog entry for ``model_id``, or None when the id is unknown."""
    return _BY_ID.get(model_id)


def default_model() -> str:
    """The model to use now: ``$PATTERNS_MODEL`` if set, else :data:`FALLBACK_MODEL`.

    Read at call time, so a notebook can change the variable without re-importing.
    """
    return os.environ.get(MODEL_ENVIRONMENT_VARIABLE, "").strip() or FALLBACK_MODEL


#: The default model, fixed when the package is imported (use :func:`default_model` to
#: follow later changes of the environment variable).
DEFAULT_MODEL: Final = default_model()
