"""Redaction everywhere: a logger with the filter installed never prints a key, whether it
arrives in the message, a %-argument, an ``extra=`` field, an exception's message, its
chained cause, its notes, an exception group or the stack info; and the notebook cleaner
strips keys, widget state and (on request) outputs before a notebook is shared."""

from __future__ import annotations

import io
import json
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from patterns.__main__ import main
from patterns.keys import canary_key, describe_secret
from patterns.scanning import RedactingFilter, scan_paths
from patterns.scanning.notebooks import clean_notebook, clean_notebook_file
from patterns.scanning.notebooks import main as clean_main
from tests.test_scanning import _notebook, real_shaped

CANARY = canary_key().reveal()


class JsonFormatter(logging.Formatter):
    """A structured formatter that dumps ``extra=`` fields, as log shippers do."""

    def format(self, record: logging.LogRecord) -> str:
        base = {"message": record.getMessage(), "context": getattr(record, "context", None)}
        return json.dumps(base) + ("\n" + record.exc_text if record.exc_text else "")


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO, io.StringIO]]:
    logger = logging.getLogger("tests.lifecycle.redaction")
    logger.propagate = False
    plain, structured = io.StringIO(), io.StringIO()
    handlers = [logging.StreamHandler(plain), logging.StreamHandler(structured)]
    handlers[0].setFormatter(logging.Formatter("%(levelname)s %(message)s %(user_key)s"))
    handlers[1].setFormatter(JsonFormatter())
    for handler in handlers:
        handler.addFilter(RedactingFilter())
        logger.addHandler(handler)
    try:
        yield logger, plain, structured
    finally:
        for handler in handlers:
            logger.removeHandler(handler)


def test_every_place_a_key_can_enter_a_log_record(captured) -> None:
    logger, plain, structured = captured
    secret = real_shaped()
    extra = {"user_key": secret, "context": {"headers": [("x-api-key", CANARY)], "n": 3}}
    logger.warning("message %s", secret, extra=extra)
    logger.warning(f"f-string {secret}", extra=extra)
    try:
        try:
            raise KeyError(secret)
        except KeyError as inner:
            raise RuntimeError("upstream refused the key") from inner
    except RuntimeError as outer:
        outer.add_note(f"while calling with {CANARY}")
        logger.exception("chained", extra=extra)
    try:
        raise ExceptionGroup("two calls failed", [ValueError(secret), OSError(CANARY)])
    except ExceptionGroup:
        logger.error("group", exc_info=True, extra=extra)
    logger.warning("with stack", stack_info=True, extra={**extra, "user_key": secret})
    text = plain.getvalue() + structured.getvalue()
    assert secret not in text
    assert CANARY not in text
    assert f"[REDACTED {describe_secret(secret)}]" in text
    assert "KeyError" in text
    assert "The above exception was the direct cause" in text
    assert "while calling with [REDACTED" in text
    assert "ExceptionGroup: two calls failed" in text
    assert "Stack (most recent call last)" in text
    first = json.loads(structured.getvalue().splitlines()[0])
    assert first["context"]["n"] == 3  # structure kept for JSON formatters
    assert first["context"]["headers"][0][1].startswith("[REDACTED")


def test_named_tuples_and_objects_in_extra_are_left_alone(captured) -> None:
    logger, plain, _ = captured
    record_args = os.stat_result((0,) * 10)
    logger.warning("ok", extra={"user_key": 42, "stat": record_args})
    assert "WARNING ok 42" in plain.getvalue()


# -- clean-notebook -----------------------------------------------------------------------


def _leaky(tmp_path: Path, secret: str) -> Path:
    document = json.loads(_notebook(cell_source=f"key = '{secret}'", widget_value=secret))
    document["cells"][0]["outputs"] = [
        {"name": "stdout", "output_type": "stream", "text": [f"x-api-key: {CANARY}\n"]},
        {
            "output_type": "display_data",
            "metadata": {},
            "data": {
                "application/vnd.jupyter.widget-view+json": {"model_id": "m1", "version_major": 2},
                "text/plain": ["Password(value='…')"],
            },
        },
        {
            "output_type": "display_data",
            "metadata": {},
            "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "m2"}},
        },
    ]
    document["cells"].append({"cell_type": "markdown", "id": "m", "metadata": {}, "source": "# x"})
    path = tmp_path / "leaky.ipynb"
    path.write_text(json.dumps(document, indent=1))
    path.chmod(0o640)
    return path


def test_clean_notebook_redacts_keys_and_widget_state(tmp_path: Path, capsys) -> None:
    secret = real_shaped()
    path = _leaky(tmp_path, secret)
    assert scan_paths([path])[0]
    assert main(["clean-notebook", str(path)]) == 0
    out = capsys.readouterr().out
    assert "redacted" in out
    assert "widget state removed" in out
    assert "2 widget view(s) removed" in out
    text = path.read_text()
    assert secret not in text
    assert CANARY not in text
    findings, _ = scan_paths([path])
    assert [f for f in findings if not f.fake] == []
    document = json.loads(text)
    assert "widgets" not in document["metadata"]
    cell = document["cells"][0]
    assert cell["source"] == [f"key = '[REDACTED {describe_secret(secret)}]'"]
    assert cell["outputs"][0]["text"] == [f"x-api-key: [REDACTED {describe_secret(CANARY)}]\n"]
    assert len(cell["outputs"]) == 2
    assert cell["outputs"][1]["data"] == {"text/plain": ["Password(value='…')"]}
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # permissions kept
    assert "outputs" not in document["cells"][1]
    # Idempotent: a second run has nothing to do and writes nothing.
    before = path.stat().st_mtime_ns
    assert main(["clean-notebook", "--check", str(path)]) == 0
    assert main(["clean-notebook", str(path)]) == 0
    assert path.stat().st_mtime_ns == before
    assert capsys.readouterr().out == ""


def test_strip_outputs_and_check_mode(tmp_path: Path, capsys) -> None:
    path = tmp_path / "plain.ipynb"
    path.write_text(_notebook(output="42\n"))
    original = path.read_text()
    assert main(["clean-notebook", "--check", "--strip-outputs", str(path)]) == 1
    assert "would be" in capsys.readouterr().out
    assert path.read_text() == original
    assert clean_main(["--strip-outputs", str(path)]) == 0
    cell = json.loads(path.read_text())["cells"][0]
    assert (cell["outputs"], cell["execution_count"]) == ([], None)


def test_a_file_that_is_not_a_notebook_is_left_untouched(tmp_path: Path, capsys) -> None:
    broken = tmp_path / "broken.ipynb"
    broken.write_text('{"cells": [')
    other = tmp_path / "other.ipynb"
    other.write_text('{"no": "cells"}')
    assert main(["clean-notebook", str(broken), str(other)]) == 2
    err = capsys.readouterr().err
    assert "not valid JSON" in err
    assert "not a Jupyter notebook" in err
    assert broken.read_text() == '{"cells": ['
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.ipynb", "other.ipynb"]


def test_escaped_keys_are_found_in_the_decoded_json() -> None:
    secret = real_shaped()
    document = json.loads(_notebook(output="x"))
    document["cells"][0]["outputs"][0]["text"] = [secret]
    escaped = json.dumps(document, ensure_ascii=True).replace(secret[:3], "\\u0073k-")
    cleaned, report = clean_notebook(json.loads(escaped))
    assert report.secrets_redacted == 1
    assert secret not in json.dumps(cleaned)


def test_the_repository_notebooks_are_already_clean() -> None:
    """The committed notebooks hold no widget state and no key: the cleaner agrees."""
    notebooks = sorted(Path(__file__).resolve().parents[1].glob("notebooks/*.ipynb"))
    assert notebooks
    for path in notebooks:
        report = clean_notebook_file(path, check=True)
        assert not report.widget_state_removed, path
