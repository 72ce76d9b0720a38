"""Settings.from_env: the documented defaults, and a ConfigurationError naming the variable for
every bad value."""

from __future__ import annotations

import pytest

from forwarder.settings import (
    DEFAULT_METRICS_NAMESPACE,
    ConfigurationError,
    InvalidRecordPolicy,
    Settings,
)

QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/dead-letters"


def test_defaults_from_an_empty_environment():
    settings = Settings.from_env({})
    assert settings.default_log_group is None
    assert settings.default_log_stream is None
    assert settings.allowed_log_groups == ("*",)
    assert settings.create_log_streams is True
    assert settings.create_log_groups is False
    assert settings.invalid_records is InvalidRecordPolicy.FAIL
    assert settings.dead_letter_queue_url is None
    assert settings.max_concurrent_requests == 8
    assert settings.subscription_log_group == "{logGroup}"
    assert settings.subscription_log_stream == "{logStream}"
    assert settings.time_reserve_ms == 3000
    assert settings.retry_mode == "standard"
    assert settings.max_attempts == 5
    assert settings.metrics_namespace == DEFAULT_METRICS_NAMESPACE == "CloudWatchLogsForwarder"
    assert settings == Settings()


def test_blank_values_mean_the_default():
    names = (
        "DEFAULT_LOG_GROUP",
        "DEFAULT_LOG_STREAM",
        "CREATE_LOG_STREAMS",
        "CREATE_LOG_GROUPS",
        "DEAD_LETTER_QUEUE_URL",
        "DEAD_LETTER_BUCKET",
        "MAX_CONCURRENT_REQUESTS",
        "SUBSCRIPTION_LOG_GROUP",
        "SUBSCRIPTION_LOG_STREAM",
        "TIME_RESERVE_MS",
        "AWS_RETRY_MODE",
        "AWS_MAX_ATTEMPTS",
    )
    blank = dict.fromkeys(names, "  ")
    assert Settings.from_env(blank) == Settings.from_env({})


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"INVALID_RECORDS": "bogus"}, "INVALID_RECORDS"),
        ({"INVALID_RECORDS": "deadletter"}, "INVALID_RECORDS"),
        ({"MAX_CONCURRENT_REQUESTS": "0"}, "MAX_CONCURRENT_REQUESTS"),
        ({"MAX_CONCURRENT_REQUESTS": "abc"}, "MAX_CONCURRENT_REQUESTS"),
        ({"MAX_CONCURRENT_REQUESTS": "65"}, "MAX_CONCURRENT_REQUESTS"),
        ({"MAX_CONCURRENT_REQUESTS": "-1"}, "MAX_CONCURRENT_REQUESTS"),
        ({"MAX_CONCURRENT_REQUESTS": "2.5"}, "MAX_CONCURRENT_REQUESTS"),
        ({"TIME_RESERVE_MS": "-1"}, "TIME_RESERVE_MS"),
        ({"TIME_RESERVE_MS": "lots"}, "TIME_RESERVE_MS"),
        ({"CREATE_LOG_STREAMS": "maybe"}, "CREATE_LOG_STREAMS"),
        ({"CREATE_LOG_GROUPS": "2"}, "CREATE_LOG_GROUPS"),
        ({"ALLOWED_LOG_GROUPS": "/app/[ab]"}, "ALLOWED_LOG_GROUPS"),
        ({"ALLOWED_LOG_GROUPS": "/app/*,/ops/["}, "ALLOWED_LOG_GROUPS"),
        ({"ALLOWED_LOG_GROUPS": ""}, "ALLOWED_LOG_GROUPS"),
        ({"ALLOWED_LOG_GROUPS": " , ,"}, "ALLOWED_LOG_GROUPS"),
        ({"ALLOWED_LOG_GROUPS": "/app one/*"}, "ALLOWED_LOG_GROUPS"),
        ({"ALLOWED_LOG_GROUPS": "/" + "a" * 512}, "ALLOWED_LOG_GROUPS"),
        ({"SUBSCRIPTION_LOG_GROUP": "/r/{unknown}"}, "SUBSCRIPTION_LOG_GROUP"),
        ({"SUBSCRIPTION_LOG_GROUP": "/r/{logGroup"}, "SUBSCRIPTION_LOG_GROUP"),
        ({"SUBSCRIPTION_LOG_GROUP": "/r/logGroup}"}, "SUBSCRIPTION_LOG_GROUP"),
        ({"SUBSCRIPTION_LOG_GROUP": "/r/{}"}, "SUBSCRIPTION_LOG_GROUP"),
        ({"SUBSCRIPTION_LOG_GROUP": "/r/{logGroup.upper}"}, "SUBSCRIPTION_LOG_GROUP"),
        ({"SUBSCRIPTION_LOG_STREAM": "{logstream}"}, "SUBSCRIPTION_LOG_STREAM"),
        ({"SUBSCRIPTION_LOG_STREAM": "{owner"}, "SUBSCRIPTION_LOG_STREAM"),
        ({"DEFAULT_LOG_GROUP": "/default"}, "DEFAULT_LOG_STREAM"),
        ({"DEFAULT_LOG_STREAM": "fallback"}, "DEFAULT_LOG_GROUP"),
        ({"DEFAULT_LOG_GROUP": "/my group", "DEFAULT_LOG_STREAM": "s"}, "DEFAULT_LOG_GROUP"),
        ({"DEFAULT_LOG_GROUP": "/g:x", "DEFAULT_LOG_STREAM": "s"}, "DEFAULT_LOG_GROUP"),
        ({"DEFAULT_LOG_GROUP": "/" + "g" * 512, "DEFAULT_LOG_STREAM": "s"}, "DEFAULT_LOG_GROUP"),
        ({"DEFAULT_LOG_GROUP": "/g", "DEFAULT_LOG_STREAM": "a:b"}, "DEFAULT_LOG_STREAM"),
        ({"DEFAULT_LOG_GROUP": "/g", "DEFAULT_LOG_STREAM": "a*"}, "DEFAULT_LOG_STREAM"),
        ({"INVALID_RECORDS": "dead-letter"}, "DEAD_LETTER_QUEUE_URL"),
        ({"INVALID_RECORDS": "dead-letter", "DEAD_LETTER_QUEUE_URL": " "}, "DEAD_LETTER_QUEUE_URL"),
        *(
            (
                {
                    "INVALID_RECORDS": "dead-letter",
                    "DEAD_LETTER_QUEUE_URL": "https://sqs.example/1/dlq",
                    "DEAD_LETTER_BUCKET": name,
                },
                "DEAD_LETTER_BUCKET",
            )
            for name in ("Failures", "fa", "a..b", "-failures", "failures-", "f" * 64, "s3://x")
        ),
        ({"AWS_RETRY_MODE": "sometimes"}, "AWS_RETRY_MODE"),
        ({"AWS_MAX_ATTEMPTS": "0"}, "AWS_MAX_ATTEMPTS"),
        ({"AWS_MAX_ATTEMPTS": "many"}, "AWS_MAX_ATTEMPTS"),
    ],
)
def test_bad_values_raise_an_error_naming_the_variable(env, variable):
    with pytest.raises(ConfigurationError) as error:
        Settings.from_env(env)
    assert variable in str(error.value)
    assert isinstance(error.value, ValueError)


@pytest.mark.parametrize(
    ("variable", "template"),
    [
        ("SUBSCRIPTION_LOG_GROUP", "/replicated {logGroup}"),  # a space is never in a group name
        ("SUBSCRIPTION_LOG_GROUP", "/replicated:{logGroup}"),
        ("SUBSCRIPTION_LOG_STREAM", "{logStream}:copy"),  # ':' is never in a stream name
        ("SUBSCRIPTION_LOG_GROUP", "{logGroup!x}"),  # an unknown conversion
        ("SUBSCRIPTION_LOG_GROUP", "{logGroup:d}"),  # a format spec a string refuses
        ("SUBSCRIPTION_LOG_STREAM", "{logStream!r}"),  # a conversion that still makes a name
        ("SUBSCRIPTION_LOG_GROUP", "{logGroup:.4}"),  # a format spec that still makes a name
    ],
)
def test_subscription_templates_that_can_never_work_are_refused_at_start(variable, template):
    """Every subscription record would be invalid (or make decode raise): fail at start."""
    with pytest.raises(ConfigurationError) as error:
        Settings.from_env({variable: template})
    assert variable in str(error.value)


def test_a_default_group_outside_the_allow_list_is_refused_at_start():
    env = {
        "DEFAULT_LOG_GROUP": "/other/raw",
        "DEFAULT_LOG_STREAM": "raw",
        "ALLOWED_LOG_GROUPS": "/app/*,/ops/*",
    }
    with pytest.raises(ConfigurationError) as error:
        Settings.from_env(env)
    assert "DEFAULT_LOG_GROUP" in str(error.value)
    assert "ALLOWED_LOG_GROUPS" in str(error.value)
    assert Settings.from_env(env | {"DEFAULT_LOG_GROUP": "/ops/raw"}).default_log_group


def test_creating_groups_without_creating_streams_is_refused_at_start():
    with pytest.raises(ConfigurationError) as error:
        Settings.from_env({"CREATE_LOG_GROUPS": "true", "CREATE_LOG_STREAMS": "false"})
    assert "CREATE_LOG_STREAMS" in str(error.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        (" yes ", True),
        ("1", True),
        ("on", True),
        ("false", False),
        ("No", False),
        ("0", False),
        ("off", False),
    ],
)
def test_booleans(text, expected):
    settings = Settings.from_env({"CREATE_LOG_STREAMS": text, "CREATE_LOG_GROUPS": text})
    assert settings.create_log_streams is expected
    assert settings.create_log_groups is expected


def test_good_values_parse():
    settings = Settings.from_env(
        {
            "DEFAULT_LOG_GROUP": " /default/group_1.x#y ",
            "DEFAULT_LOG_STREAM": "[$LATEST] web 1/é",
            "ALLOWED_LOG_GROUPS": " /app/* , /ops/??,/exact ,/default/*",
            "INVALID_RECORDS": " Dead-Letter ",
            "DEAD_LETTER_QUEUE_URL": QUEUE_URL,
            "MAX_CONCURRENT_REQUESTS": " 64 ",
            "SUBSCRIPTION_LOG_GROUP": "/replicated/{owner}{logGroup}",
            "SUBSCRIPTION_LOG_STREAM": "{logStream}-{owner}",
            "TIME_RESERVE_MS": "0",
            "AWS_RETRY_MODE": "adaptive",
            "AWS_MAX_ATTEMPTS": "10",
            "POWERTOOLS_METRICS_NAMESPACE": "Mine",
        }
    )
    assert settings.default_log_group == "/default/group_1.x#y"
    assert settings.default_log_stream == "[$LATEST] web 1/é"
    assert settings.allowed_log_groups == ("/app/*", "/ops/??", "/exact", "/default/*")
    assert settings.invalid_records is InvalidRecordPolicy.DEAD_LETTER
    assert settings.dead_letter_queue_url == QUEUE_URL
    assert settings.max_concurrent_requests == 64
    assert settings.subscription_log_group == "/replicated/{owner}{logGroup}"
    assert settings.subscription_log_stream == "{logStream}-{owner}"
    assert settings.time_reserve_ms == 0
    assert settings.retry_mode == "adaptive"
    assert settings.max_attempts == 10
    assert settings.metrics_namespace == "Mine"


@pytest.mark.parametrize("value", ["1", "64"])
def test_max_concurrent_requests_bounds_are_inclusive(value):
    assert Settings.from_env({"MAX_CONCURRENT_REQUESTS": value}).max_concurrent_requests == int(
        value
    )


@pytest.mark.parametrize("policy", ["fail", "drop", "FAIL", " drop "])
def test_policies_without_a_queue(policy):
    settings = Settings.from_env({"INVALID_RECORDS": policy})
    assert settings.invalid_records.value == policy.strip().lower()


def test_settings_are_frozen():
    settings = Settings.from_env({})
    with pytest.raises(AttributeError):
        settings.max_concurrent_requests = 1  # type: ignore[misc]


def test_a_dead_letter_bucket_is_read_with_the_dead_letter_policy():
    env = {
        "INVALID_RECORDS": "dead-letter",
        "DEAD_LETTER_QUEUE_URL": "https://sqs.example/1/dlq",
        "DEAD_LETTER_BUCKET": "forwarder-failures.eu-1",
    }
    assert Settings.from_env(env).dead_letter_bucket == "forwarder-failures.eu-1"
    assert Settings.from_env({}).dead_letter_bucket is None
    # unused under another policy, as the queue's URL is: switching the policy alone works
    assert Settings.from_env(env | {"INVALID_RECORDS": "fail"}).invalid_records.value == "fail"
