"""Choosing a pattern: the guide's risk assessment and recommendations matrix, as data.

The source guide asks four questions before any implementation (data sensitivity, user base,
compliance needs, infrastructure constraints) and gives a matrix of use cases. Here both are
data, and :func:`recommend` turns a filled-in :class:`RiskAssessment` into a pattern with the
reasons for it, warnings, and the alternatives worth a look. Two questions the guide leaves
implicit are asked too, because they change the answer: whose key it is (the user's own, or
the organisation's) and whether the client is a web page or a mobile app.

The decision never recommends shipping an organisation's key to a client: no encryption
hides a key from the machine that must use it.

The catalogue of patterns is in :mod:`~patterns.advisor.profiles`, the guide's tables in
:mod:`~patterns.advisor.matrix`, the questions in :mod:`~patterns.advisor.assessment` and the
rules in :mod:`~patterns.advisor.decision`; every name is importable from here.
"""

from __future__ import annotations

from patterns.advisor.assessment import (
    Compliance,
    DataSensitivity,
    Infrastructure,
    KeyOwner,
    Platform,
    RiskAssessment,
    UserBase,
)
from patterns.advisor.decision import Recommendation, recommend
from patterns.advisor.matrix import ACTORS, KEY_EXPOSURE, RECOMMENDATIONS_MATRIX, MatrixRow
from patterns.advisor.profiles import PATTERNS, Level, PatternProfile

__all__ = [
    "ACTORS",
    "KEY_EXPOSURE",
    "PATTERNS",
    "RECOMMENDATIONS_MATRIX",
    "Compliance",
    "DataSensitivity",
    "Infrastructure",
    "KeyOwner",
    "Level",
    "MatrixRow",
    "PatternProfile",
    "Platform",
    "Recommendation",
    "RiskAssessment",
    "UserBase",
    "recommend",
]
