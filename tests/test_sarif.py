"""`scan --format sarif`: a SARIF 2.1.0 log that code-hosting platforms accept.

No copy of the official SARIF schema ships in any installed package (checked: only
cfn-lint's formatter names its URL), so this test embeds the part of the official
``sarif-schema-2.1.0.json`` (OASIS, errata01) that our output uses: the same property names,
required fields, enums and ``additionalProperties: false`` rules, validated with
``jsonschema`` (Draft 4, as the official schema declares). Anything we emit outside this
subset fails the test rather than passing unchecked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from patterns.__main__ import main
from patterns.keys import demo_key, fingerprint
from patterns.scanning import RULES, Finding, scan_paths, to_sarif
from tests.test_scanning import _notebook, real_shaped
from tests.test_scanning_git import commit, git


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {**properties, "properties": {"$ref": "#/definitions/propertyBag"}},
    }
    if required:
        schema["required"] = required
    return schema


_STRING = {"type": "string"}
_INDEX = {"type": "integer", "minimum": -1}
_MESSAGE_REF = {"$ref": "#/definitions/message"}
_MULTIFORMAT_REF = {"$ref": "#/definitions/multiformatMessageString"}

# Property names from the official schema's definitions (run, toolComponent,
# reportingDescriptor, result, location, physicalLocation, region, artifactLocation, message,
# multiformatMessageString, reportingConfiguration, propertyBag). Only properties of these
# objects that our output may use are listed; additionalProperties stays false.
SARIF_SUBSET: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "runs"],
    "properties": {
        "$schema": {"type": "string", "format": "uri"},
        "version": {"enum": ["2.1.0"], "type": "string"},
        "runs": {"type": ["array", "null"], "items": {"$ref": "#/definitions/run"}},
    },
    "definitions": {
        "propertyBag": {
            "type": "object",
            "properties": {
                "tags": {"type": "array", "uniqueItems": True, "items": {"type": "string"}}
            },
            "additionalProperties": True,
        },
        "message": {
            **_object({"text": _STRING, "markdown": _STRING, "id": _STRING}),
            "anyOf": [{"required": ["text"]}, {"required": ["id"]}],
        },
        "multiformatMessageString": _object({"text": _STRING, "markdown": _STRING}, ["text"]),
        "artifactLocation": _object(
            {
                "uri": {"type": "string", "format": "uri-reference"},
                "uriBaseId": _STRING,
                "index": _INDEX,
                "description": _MESSAGE_REF,
            }
        ),
        "region": _object(
            {
                "startLine": {"type": "integer", "minimum": 1},
                "startColumn": {"type": "integer", "minimum": 1},
                "endLine": {"type": "integer", "minimum": 1},
                "endColumn": {"type": "integer", "minimum": 1},
                "message": _MESSAGE_REF,
            }
        ),
        "physicalLocation": {
            **_object(
                {
                    "artifactLocation": {"$ref": "#/definitions/artifactLocation"},
                    "region": {"$ref": "#/definitions/region"},
                    "contextRegion": {"$ref": "#/definitions/region"},
                }
            ),
            "anyOf": [{"required": ["address"]}, {"required": ["artifactLocation"]}],
        },
        "location": _object(
            {
                "id": _INDEX,
                "physicalLocation": {"$ref": "#/definitions/physicalLocation"},
                "message": _MESSAGE_REF,
            }
        ),
        "reportingConfiguration": _object(
            {
                "enabled": {"type": "boolean"},
                "level": {"enum": ["none", "note", "warning", "error"]},
                "rank": {"type": "number", "minimum": -1, "maximum": 100},
            }
        ),
        "reportingDescriptor": _object(
            {
                "id": _STRING,
                "name": _STRING,
                "shortDescription": _MULTIFORMAT_REF,
                "fullDescription": _MULTIFORMAT_REF,
                "defaultConfiguration": {"$ref": "#/definitions/reportingConfiguration"},
                "helpUri": {"type": "string", "format": "uri"},
                "help": _MULTIFORMAT_REF,
            },
            ["id"],
        ),
        "toolComponent": _object(
            {
                "name": _STRING,
                "version": _STRING,
                "semanticVersion": _STRING,
                "informationUri": {"type": "string", "format": "uri"},
                "rules": {
                    "type": "array",
                    "uniqueItems": True,
                    "items": {"$ref": "#/definitions/reportingDescriptor"},
                },
            },
            ["name"],
        ),
        "tool": _object({"driver": {"$ref": "#/definitions/toolComponent"}}, ["driver"]),
        "result": _object(
            {
                "ruleId": _STRING,
                "ruleIndex": _INDEX,
                "kind": {
                    "enum": ["notApplicable", "pass", "fail", "review", "open", "informational"]
                },
                "level": {"enum": ["none", "note", "warning", "error"]},
                "message": _MESSAGE_REF,
                "locations": {"type": "array", "items": {"$ref": "#/definitions/location"}},
                "partialFingerprints": {"type": "object", "additionalProperties": _STRING},
                "fingerprints": {"type": "object", "additionalProperties": _STRING},
            },
            ["message"],
        ),
        "run": _object(
            {
                "tool": {"$ref": "#/definitions/tool"},
                "results": {"type": ["array", "null"], "items": {"$ref": "#/definitions/result"}},
                "originalUriBaseIds": {
                    "type": "object",
                    "additionalProperties": {"$ref": "#/definitions/artifactLocation"},
                },
                "columnKind": {"enum": ["utf16CodeUnits", "unicodeCodePoints"]},
            },
            ["tool"],
        ),
    },
}


def validate(log: dict[str, Any]) -> None:
    jsonschema.Draft4Validator.check_schema(SARIF_SUBSET)
    validator = jsonschema.Draft4Validator(
        SARIF_SUBSET, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    for result in run["results"]:  # what the schema cannot say: ruleIndex points at ruleId
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


def test_the_embedded_subset_rejects_what_the_official_schema_rejects() -> None:
    log = to_sarif([])
    validate(log)
    for broken in (
        {**log, "version": "2.0.0"},
        {k: v for k, v in log.items() if k != "runs"},
        {**log, "extra": 1},
        {**log, "runs": [{"results": []}]},
        {**log, "runs": [{"tool": {"driver": {"name": "x"}}, "results": [{"ruleId": "x"}]}]},
    ):
        with pytest.raises(AssertionError):
            validate(broken)


def test_sarif_for_a_working_tree(tmp_path: Path, capsys) -> None:
    secret, fake = real_shaped(), demo_key("sarif").reveal()
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "settings.py").write_text(f"# x\n\nKEY = '{secret}'\n")
    (tmp_path / "leak.ipynb").write_text(_notebook(widget_value=secret))
    (tmp_path / "demo.py").write_text(f"KEY = '{fake}'\n")
    assert main(["scan", "--format", "sarif", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert secret not in out
    assert fake not in out
    log = json.loads(out)
    validate(log)
    run = log["runs"][0]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == tmp_path.resolve().as_uri() + "/"
    results = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]: r for r in run["results"]
    }
    assert set(results) == {"config/settings.py", "leak.ipynb"}
    settings = results["config/settings.py"]
    assert settings["ruleId"] == "anthropic-api-key"
    assert settings["level"] == "error"
    assert settings["locations"][0]["physicalLocation"]["region"] == {"startLine": 3}
    assert settings["partialFingerprints"] == {"secretHash/v1": fingerprint(secret)}
    assert results["leak.ipynb"]["locations"][0]["physicalLocation"]["region"]["startLine"] > 1
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == [r.id for r in RULES]


def test_fakes_are_notes_when_included(tmp_path: Path) -> None:
    (tmp_path / "demo.py").write_text(f"KEY = '{demo_key('sarif').reveal()}'\n")
    findings, _ = scan_paths([tmp_path])
    log = to_sarif(findings, root=tmp_path)
    validate(log)
    assert [r["level"] for r in log["runs"][0]["results"]] == ["note"]


def test_sarif_for_history_names_the_commit(tmp_path: Path, capsys) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    secret = real_shaped()
    added = commit(repo, "oops", {"deploy/env.sh": f"export ANTHROPIC_API_KEY={secret}\n"})
    commit(repo, "fix", {"deploy/env.sh": None})
    assert main(["scan", "--git", "--format", "sarif", str(repo)]) == 1
    out = capsys.readouterr().out
    assert secret not in out
    log = json.loads(out)
    validate(log)
    (result,) = log["runs"][0]["results"]
    assert result["properties"] == {"commit": added}
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "deploy/env.sh"
    assert added[:12] in result["message"]["text"]


def test_a_key_seen_only_after_json_decoding_has_no_line(tmp_path: Path) -> None:
    secret = real_shaped()
    escaped = "".join(f"\\u{ord(c):04x}" for c in secret[:6]) + secret[6:]
    (tmp_path / "e.ipynb").write_text(_notebook(output="x").replace('"x"', f'"{escaped}"'))
    findings, _ = scan_paths([tmp_path])
    log = to_sarif(findings, root=tmp_path)
    validate(log)
    (result,) = log["runs"][0]["results"]
    assert "region" not in result["locations"][0]["physicalLocation"]
    assert "notebook field cells[0].outputs[0].text[0]" in result["message"]["text"]
    assert secret not in json.dumps(log)


def test_paths_outside_the_root_become_file_uris(tmp_path: Path) -> None:
    finding = Finding(
        "/elsewhere/x.txt", "1", "anthropic-api-key", "sk-ant-api03-…AA (sha256:0)", False
    )
    log = to_sarif([finding], root=tmp_path)
    validate(log)
    uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"][
        "uri"
    ]
    assert uri == "file:///elsewhere/x.txt"
