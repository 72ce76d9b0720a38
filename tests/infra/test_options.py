"""The CDK app judges the function's options by the function's own table, and sets them in the
construct's environment from it."""

from __future__ import annotations

import dataclasses

import pytest

from forwarder.settings import OPTIONS, ConfigurationError, Settings
from infra.blueprint import shared_options
from infra.config import CONTEXT_OPTIONS, ConfigError, ForwarderConfig
from infra.forwarder import ForwarderFunctionProps
from tests.unit.test_options import BAD_TEXT

PROPS_FIELDS = {f.name: f for f in dataclasses.fields(ForwarderFunctionProps)}


def test_every_function_option_set_from_context_is_a_props_field_with_the_same_default():
    for key, option in CONTEXT_OPTIONS.items():
        if option.field is None or option.field == "invalid_records":
            continue  # Powertools' own, and the per-source policy (a construct argument)
        assert option.field in PROPS_FIELDS, key
        default = PROPS_FIELDS[option.field].default
        if default is not dataclasses.MISSING:
            expected = option.parse(option.kind.from_context(option.context[key]))
            assert default == expected, key


#: Every context key of the table but free text (which nothing refuses).
JUDGED = [k for k, o in CONTEXT_OPTIONS.items() if getattr(o.kind, "check", True) is not None]


@pytest.mark.parametrize("key", JUDGED)
def test_a_value_the_function_refuses_is_refused_at_synth_under_its_key(key):
    option = CONTEXT_OPTIONS[key]
    text = BAD_TEXT[type(option.kind).__name__]
    enable = {"kinesisEnabled": True} if key.startswith("kinesis") else {}
    with pytest.raises(ConfigError) as synth:
        ForwarderConfig.from_context({key: text, **enable})
    assert f"  - {key}: " in str(synth.value)
    if option.field is not None:  # read by the function itself, not only by Powertools
        with pytest.raises(ConfigurationError):
            Settings.from_env({option.variable: text})


def test_the_options_cover_every_variable_the_construct_sets():
    variables = {o.variable for o in OPTIONS}
    props = ForwarderFunctionProps(allowed_log_groups=("/app/*",))
    assert set(shared_options(props)) <= variables
