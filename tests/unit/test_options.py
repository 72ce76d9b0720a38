"""The option table is the one definition of each function option: Settings, cdk.json, the CDK
app's validation, the construct's environment and the README all agree with it."""

from __future__ import annotations

import dataclasses

import pytest

from forwarder.settings import OPTIONS, ConfigurationError, Option, Settings
from local.readme import README, render

WITH_FIELD = [o for o in OPTIONS if o.field is not None]

#: A text each kind of option refuses.
BAD_TEXT = {
    "Flag": "maybe",
    "Whole": "99999999",
    "Choice": "bogus",
    "Patterns": "/app/[ab]",
    "Template": "{nope}",
    "Text": "bad name: * with spaces",
    "Days": "10",
    "Tags": '{"aws:owner": "platform"}',
}


def test_every_option_with_a_field_is_a_settings_field_with_the_same_default():
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    for option in WITH_FIELD:
        assert option.field in fields, option.variable
        assert getattr(Settings(), option.field) == option.default, option.variable


def test_the_readme_tables_are_rendered_from_the_table():
    text = README.read_text(encoding="utf-8")
    assert render(text) == text, "run: .venv/bin/python -m local.readme"


def test_every_context_key_of_the_table_is_documented():
    text = README.read_text(encoding="utf-8")
    for option in OPTIONS:
        for key in option.context:
            assert f"| `{key}` |" in text, key


def _refusable() -> list[tuple[Option, str]]:
    cases = []
    for option in OPTIONS:
        kind = type(option.kind).__name__
        if option.field is None or (kind == "Text" and option.kind.check is None):  # type: ignore[attr-defined]
            continue  # Powertools reads it itself, or it is free text
        cases.append((option, BAD_TEXT[kind]))
    return cases


@pytest.mark.parametrize(("option", "text"), _refusable(), ids=lambda v: getattr(v, "variable", v))
def test_a_value_is_refused_at_cold_start_by_the_rule_of_its_kind(option, text):
    with pytest.raises(ConfigurationError) as error:
        Settings.from_env({option.variable: text})
    assert str(error.value).startswith(f"{option.variable}: ")
