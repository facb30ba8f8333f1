"""The questions asked before choosing a pattern, and their answers as one value.

The guide's four questions (data sensitivity, user base, compliance, infrastructure) plus two
it leaves implicit (whose key it is, web or mobile), as enums so that a form, a widget or a
config file can only give an answer the decision knows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "Compliance",
    "DataSensitivity",
    "Infrastructure",
    "KeyOwner",
    "Platform",
    "RiskAssessment",
    "UserBase",
]


class DataSensitivity(StrEnum):
    PUBLIC = "public"  # demo content, nothing about people
    INTERNAL = "internal"  # company-internal, not personal
    CONFIDENTIAL = "confidential"  # customers' data, trade secrets
    REGULATED = "regulated"  # health, payment or other regulated records


class UserBase(StrEnum):
    JUST_ME = "just-me"  # a personal tool or a prototype
    TEAM = "team"  # an internal tool for known colleagues
    PUBLIC = "public"  # anyone on the internet can sign up
    ENTERPRISE = "enterprise"  # business customers with their own security teams


class Compliance(StrEnum):
    GDPR = "gdpr"
    HIPAA = "hipaa"
    SOC2 = "soc2"


class Infrastructure(StrEnum):
    CLIENT_ONLY = "client-only"  # a static site or a notebook: nothing runs server-side
    SERVERLESS = "serverless"  # functions at the edge or in the cloud, no long-lived server
    FULL_STACK = "full-stack"  # servers, a database, room for Redis or a KMS


class KeyOwner(StrEnum):
    USER = "user"  # bring your own key (BYOK): each user pays with their own key
    ORGANISATION = "organisation"  # one key of the company behind the app


class Platform(StrEnum):
    WEB = "web"
    MOBILE = "mobile"


@dataclass(frozen=True, slots=True)
class RiskAssessment:
    """The answers to the guide's four questions, plus whose key it is and the platform."""

    data_sensitivity: DataSensitivity = DataSensitivity.INTERNAL
    user_base: UserBase = UserBase.TEAM
    compliance: frozenset[Compliance] = field(default_factory=frozenset)
    infrastructure: Infrastructure = Infrastructure.FULL_STACK
    key_owner: KeyOwner = KeyOwner.USER
    platform: Platform = Platform.WEB

    @classmethod
    def from_answers(
        cls,
        *,
        data_sensitivity: str = "internal",
        user_base: str = "team",
        compliance: Iterable[str] = (),
        infrastructure: str = "full-stack",
        key_owner: str = "user",
        platform: str = "web",
    ) -> RiskAssessment:
        """Build an assessment from plain strings (a form, a widget, a config file)."""
        return cls(
            DataSensitivity(data_sensitivity),
            UserBase(user_base),
            frozenset(Compliance(c) for c in compliance),
            Infrastructure(infrastructure),
            KeyOwner(key_owner),
            Platform(platform),
        )
