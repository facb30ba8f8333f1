"""The risk assessment and recommendations matrix as data, and the decision function."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from patterns.advisor import (
    ACTORS,
    KEY_EXPOSURE,
    PATTERNS,
    RECOMMENDATIONS_MATRIX,
    Compliance,
    DataSensitivity,
    Infrastructure,
    KeyOwner,
    Level,
    Platform,
    RiskAssessment,
    UserBase,
    recommend,
)
from patterns.catalog import NOTEBOOKS

REPO = Path(__file__).resolve().parents[1]


def test_the_guides_matrix_is_complete_and_points_at_known_patterns() -> None:
    use_cases = [row.use_case for row in RECOMMENDATIONS_MATRIX]
    assert use_cases == [
        "Internal tools",
        "Public applications",
        "Prototyping",
        "Enterprise",
        "Development",
        "Mobile apps",
    ]
    for row in RECOMMENDATIONS_MATRIX:
        assert row.pattern_id in PATTERNS


def test_every_pattern_has_trade_offs_and_a_notebook_in_the_catalog() -> None:
    catalogued = {nb.filename for nb in NOTEBOOKS}
    for profile in PATTERNS.values():
        assert profile.pros
        assert profile.cons
        assert profile.notebook in catalogued


def test_threat_model_covers_every_pattern_and_actor() -> None:
    assert set(KEY_EXPOSURE) == set(PATTERNS)
    for row in KEY_EXPOSURE.values():
        assert len(row) == len(ACTORS)
    assert KEY_EXPOSURE["direct"][0] == "yes"  # XSS reads a key held by the page
    assert KEY_EXPOSURE["bff"][0].startswith("no")


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({"user_base": "just-me", "infrastructure": "client-only"}, "session-keys"),
        ({"user_base": "team", "infrastructure": "client-only"}, "encrypted-storage"),
        ({"user_base": "team", "data_sensitivity": "internal"}, "encrypted-storage"),
        ({"user_base": "public"}, "bff"),
        ({"user_base": "team", "platform": "mobile"}, "bff"),
        ({"user_base": "enterprise"}, "byok-kms"),
        ({"user_base": "team", "compliance": ["hipaa"]}, "byok-kms"),
        ({"user_base": "public", "data_sensitivity": "regulated"}, "byok-kms"),
        ({"user_base": "team", "key_owner": "organisation"}, "token-proxy"),
        ({"user_base": "public", "key_owner": "organisation"}, "bff"),
        ({"user_base": "public", "infrastructure": "client-only"}, "session-keys"),
    ],
)
def test_recommendations(answers: dict[str, object], expected: str) -> None:
    result = recommend(RiskAssessment.from_answers(**answers))  # type: ignore[arg-type]
    assert result.pattern.id == expected
    assert result.reasons
    assert all(other.id != expected for other in result.also_consider)


def test_the_guides_use_cases_get_the_guides_answers() -> None:
    cases = {
        "Internal tools": RiskAssessment(user_base=UserBase.TEAM),
        "Public applications": RiskAssessment(user_base=UserBase.PUBLIC),
        "Prototyping": RiskAssessment(user_base=UserBase.JUST_ME),
        "Enterprise": RiskAssessment(user_base=UserBase.ENTERPRISE),
        "Development": RiskAssessment(user_base=UserBase.TEAM, key_owner=KeyOwner.ORGANISATION),
        "Mobile apps": RiskAssessment(user_base=UserBase.PUBLIC, platform=Platform.MOBILE),
    }
    for row in RECOMMENDATIONS_MATRIX:
        assert recommend(cases[row.use_case]).pattern.id == row.pattern_id, row.use_case


def test_an_organisation_key_never_goes_to_a_client() -> None:
    client_side = {"direct", "encrypted-storage", "session-keys"}
    for combo in itertools.product(DataSensitivity, UserBase, Infrastructure, Platform):
        sensitivity, users, infrastructure, platform = combo
        assessment = RiskAssessment(
            sensitivity, users, frozenset(), infrastructure, KeyOwner.ORGANISATION, platform
        )
        result = recommend(assessment)
        assert result.pattern.id not in client_side
        if combo[2] is Infrastructure.CLIENT_ONLY:
            assert any("cannot hide an organisation key" in w for w in result.warnings)


def test_client_only_high_stakes_gets_a_warning() -> None:
    result = recommend(
        RiskAssessment(
            user_base=UserBase.PUBLIC,
            infrastructure=Infrastructure.CLIENT_ONLY,
            compliance=frozenset({Compliance.SOC2}),
        )
    )
    assert result.pattern.id == "session-keys"
    assert len(result.warnings) == 2


def test_every_assessment_gets_an_answer() -> None:
    compliance_sets = [frozenset(), frozenset({Compliance.GDPR}), frozenset(Compliance)]
    for combo in itertools.product(
        DataSensitivity, UserBase, compliance_sets, Infrastructure, KeyOwner, Platform
    ):
        result = recommend(RiskAssessment(*combo))
        assert result.pattern.id in PATTERNS
        assert result.reasons


def test_gdpr_adds_a_data_warning() -> None:
    result = recommend(RiskAssessment(compliance=frozenset({Compliance.GDPR})))
    assert any("GDPR" in warning for warning in result.warnings)


def test_reports_link_to_notebooks() -> None:
    result = recommend(RiskAssessment(user_base=UserBase.PUBLIC))
    markdown = result.as_markdown()
    assert "(05-backend-for-frontend.ipynb)" in markdown
    assert result.as_text().startswith("Recommended: Backend-for-frontend")


def test_levels_print_like_the_guide() -> None:
    assert str(Level.VERY_HIGH) == "Very High"
    assert Level.HIGH > Level.MEDIUM


def test_invalid_answers_are_rejected() -> None:
    with pytest.raises(ValueError, match="not a valid"):
        RiskAssessment.from_answers(user_base="everyone")


def test_catalog_matches_the_notebooks_on_disk() -> None:
    for notebook in NOTEBOOKS:
        exists = (REPO / notebook.path).exists()
        assert notebook.ready == exists, f"{notebook.filename}: ready={notebook.ready}"
    assert [nb.number for nb in NOTEBOOKS] == sorted(nb.number for nb in NOTEBOOKS)


def test_questionnaire_widget_follows_the_decision_function() -> None:
    from patterns.widgets.advisor import Questionnaire

    quiz = Questionnaire()
    assert quiz.recommendation == recommend(RiskAssessment())
    result = quiz.set(user_base="public", compliance=["soc2"])
    assert result.pattern.id == "byok-kms"
    assert quiz.assessment.compliance == frozenset({Compliance.SOC2})
    with pytest.raises(ValueError, match="unknown question"):
        quiz.set(colour="blue")
