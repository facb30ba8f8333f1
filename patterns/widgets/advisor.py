"""The start-here questionnaire: answer the guide's risk questions, get a pattern.

A thin view over :func:`patterns.advisor.recommend`: every answer change rebuilds a
:class:`~patterns.advisor.RiskAssessment` and shows the recommendation in an HTML widget,
whose links open the pattern's notebook in JupyterLab. (An ``Output`` widget would be the
obvious choice, but its captured displays confuse nbval's output comparison.)
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
from IPython.display import display

from patterns.advisor import (
    Compliance,
    DataSensitivity,
    Infrastructure,
    KeyOwner,
    Platform,
    Recommendation,
    RiskAssessment,
    UserBase,
    recommend,
)

__all__ = ["Questionnaire"]

_QUESTIONS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "data_sensitivity": (
        "What data will the prompts carry?",
        [
            ("Public or demo content", DataSensitivity.PUBLIC),
            ("Internal, nothing personal", DataSensitivity.INTERNAL),
            ("Confidential (customers' data)", DataSensitivity.CONFIDENTIAL),
            ("Regulated (health, payments)", DataSensitivity.REGULATED),
        ],
    ),
    "user_base": (
        "Who uses the app?",
        [
            ("Just me / a prototype", UserBase.JUST_ME),
            ("My team (internal tool)", UserBase.TEAM),
            ("The public", UserBase.PUBLIC),
            ("Enterprise customers", UserBase.ENTERPRISE),
        ],
    ),
    "infrastructure": (
        "What can you run?",
        [
            ("Nothing server-side", Infrastructure.CLIENT_ONLY),
            ("Serverless functions", Infrastructure.SERVERLESS),
            ("Servers and a database", Infrastructure.FULL_STACK),
        ],
    ),
    "key_owner": (
        "Whose API key pays?",
        [("Each user's own (BYOK)", KeyOwner.USER), ("Our organisation's", KeyOwner.ORGANISATION)],
    ),
    "platform": (
        "Where does the client run?",
        [("A web page", Platform.WEB), ("A mobile app", Platform.MOBILE)],
    ),
}


class Questionnaire:
    """Dropdowns for the risk questions, checkboxes for compliance, and the live answer.

    ``Questionnaire().set(user_base="public")`` changes answers from code (the notebook uses
    this so its saved output shows a real recommendation); :attr:`recommendation` is the
    current answer.
    """

    def __init__(self, assessment: RiskAssessment | None = None) -> None:
        start = assessment or RiskAssessment()
        style = {"description_width": "15em"}
        layout = widgets.Layout(width="34em")
        self._dropdowns = {
            name: widgets.Dropdown(
                options=options,
                value=getattr(start, name),
                description=label,
                style=style,
                layout=layout,
            )
            for name, (label, options) in _QUESTIONS.items()
        }
        self._compliance = {
            item: widgets.Checkbox(
                value=item in start.compliance,
                description=item.name,
                indent=False,
                layout=widgets.Layout(width="7em"),
            )
            for item in Compliance
        }
        self._answer = widgets.HTML()
        for control in [*self._dropdowns.values(), *self._compliance.values()]:
            control.observe(self._refresh, names="value")
        label = widgets.Label("Compliance needs?", layout=widgets.Layout(width="15em"))
        compliance_row = widgets.HBox([label, *self._compliance.values()])
        self.view = widgets.VBox([*self._dropdowns.values(), compliance_row, self._answer])
        self._refresh()

    @property
    def assessment(self) -> RiskAssessment:
        """The answers as they stand now."""
        values: dict[str, Any] = {name: box.value for name, box in self._dropdowns.items()}
        chosen = frozenset(item for item, box in self._compliance.items() if box.value)
        return RiskAssessment(compliance=chosen, **values)

    @property
    def recommendation(self) -> Recommendation:
        return recommend(self.assessment)

    def set(self, *, compliance: list[str] | None = None, **answers: str) -> Recommendation:
        """Change answers by value (e.g. ``user_base="public"``); return the new answer."""
        for name, value in answers.items():
            if name not in self._dropdowns:
                raise ValueError(f"unknown question {name!r}; one of {sorted(self._dropdowns)}")
            self._dropdowns[name].value = type(getattr(self.assessment, name))(value)
        if compliance is not None:
            wanted = {Compliance(c) for c in compliance}
            for item, box in self._compliance.items():
                box.value = item in wanted
        return self.recommendation

    def _refresh(self, _change: object = None) -> None:
        self._answer.value = self.recommendation.as_html()

    def _ipython_display_(self) -> None:
        display(self.view)  # type: ignore[no-untyped-call]
