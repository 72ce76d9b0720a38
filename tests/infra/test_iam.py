"""Least privilege: no wildcard actions, no write on ``*``, logs writes only to allowed groups."""

from __future__ import annotations

import pytest

from infra.config import ForwarderConfig
from tests.infra.conftest import VARIANTS, cdk_context

#: The only writes that may name ``Resource: "*"``: X-Ray's telemetry calls (made by the Lambda
#: service for active tracing) have no resource type in the service authorization reference.
WRITE_ON_STAR_ALLOWED = frozenset({"xray:PutTraceSegments", "xray:PutTelemetryRecords"})
READ_VERBS = ("Get", "List", "Describe")


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def render(value) -> str:
    """A resource as text: Fn::Join flattened, references as <Ref> / <Logical.Attr>."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(render(p) for p in parts)
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    raise AssertionError(f"unexpected intrinsic in a policy resource: {value}")


def wildcard_problems(statements: list[dict]) -> list[str]:
    problems = []
    for s in statements:
        if "NotAction" in s or "NotResource" in s:
            problems.append(f"NotAction/NotResource: {s}")
        if s.get("Effect") != "Allow":
            continue
        actions = as_list(s.get("Action", []))
        resources = [render(r) for r in as_list(s.get("Resource", []))]
        problems += [f"wildcard action {a}" for a in actions if "*" in a or "?" in a]
        if "*" in resources:
            for action in actions:
                verb = action.split(":", 1)[-1]
                if not verb.startswith(READ_VERBS) and action not in WRITE_ON_STAR_ALLOWED:
                    problems.append(f"write action {action} on Resource '*'")
        for resource in resources:
            if resource.startswith("arn:") and "*" in resource.split(":")[3:5]:
                problems.append(f"resource {resource} spans regions or accounts")
    return problems


def test_the_check_catches_what_it_should():
    bad = [
        {"Effect": "Allow", "Action": "logs:*", "Resource": "arn:aws:logs:r:1:log-group:x"},
        {"Effect": "Allow", "Action": ["logs:PutLogEvents"], "Resource": "*"},
        {"Effect": "Allow", "Action": "sqs:Send*", "Resource": "arn:aws:sqs:r:1:q"},
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
        {"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "arn:aws:logs:*:*:*"},
    ]
    assert wildcard_problems(bad) == [
        "wildcard action logs:*",
        "write action logs:PutLogEvents on Resource '*'",
        "wildcard action sqs:Send*",
        f"NotAction/NotResource: {bad[3]}",
        "resource arn:aws:logs:*:*:* spans regions or accounts",
    ]
    fine = [
        {"Effect": "Allow", "Action": "xray:PutTraceSegments", "Resource": "*"},
        {"Effect": "Allow", "Action": "kinesis:DescribeStream", "Resource": "*"},
    ]
    assert wildcard_problems(fine) == []


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_no_wildcard_actions_and_no_writes_on_star(synth, variant):
    s = synth(**VARIANTS[variant])
    statements = s.policy_statements()
    assert statements
    assert wildcard_problems(statements) == []


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_logs_writes_go_only_to_allowed_groups_and_own_log_group(synth, variant):
    s = synth(**VARIANTS[variant])
    config = ForwarderConfig.from_context(cdk_context(**VARIANTS[variant]))
    prefix = "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
    allowed = set()
    for pattern in config.function.allowed_log_groups:
        allowed |= {prefix + pattern, prefix + pattern + ":log-stream:*"}
    own_groups = {f"<{k}.Arn>" for k in s.resources("AWS::Logs::LogGroup")}
    for statement in s.policy_statements():
        actions = as_list(statement["Action"])
        if not any(a.startswith("logs:") for a in actions):
            continue
        assert all(a.startswith("logs:") for a in actions), statement
        resources = {render(r) for r in as_list(statement["Resource"])}
        assert resources <= allowed | own_groups, statement
        if resources & own_groups:
            assert sorted(actions) == ["logs:CreateLogStream", "logs:PutLogEvents"]
        else:
            assert resources == allowed
            expected = {"logs:PutLogEvents"}
            if config.function.create_log_streams:
                expected.add("logs:CreateLogStream")
            function = config.function
            if function.create_log_groups:
                expected.add("logs:CreateLogGroup")
                if function.new_log_group_retention_days is not None:
                    expected.add("logs:PutRetentionPolicy")
                if function.new_log_group_tags:
                    expected.add("logs:TagResource")
                if function.new_log_group_deletion_protection:
                    expected.add("logs:PutLogGroupDeletionProtection")
            assert set(actions) == expected


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_only_the_actions_the_mappings_need(synth, variant):
    s = synth(**VARIANTS[variant])
    actions = {a for st in s.policy_statements() for a in as_list(st["Action"])}
    allowed = {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:CreateLogGroup",
        "logs:PutRetentionPolicy",
        "logs:TagResource",
        "logs:PutLogGroupDeletionProtection",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:SendMessage",
        "kinesis:DescribeStream",
        "kinesis:DescribeStreamSummary",
        "kinesis:GetRecords",
        "kinesis:GetShardIterator",
        "kinesis:ListShards",
        "kinesis:DescribeStreamConsumer",
        "kinesis:SubscribeToShard",
        "kms:Decrypt",
        "s3:PutObject",
        "s3:ListBucket",
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:Query",
    }
    assert actions <= allowed
    for role in s.resources("AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]
        assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
            {
                "Action": "sts:AssumeRole",
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
            }
        ]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_function_reaches_only_its_own_checkpoint_table_and_only_its_item_calls(
    synth, variant
):
    s = synth(**VARIANTS[variant])
    tables = s.resources("AWS::DynamoDB::Table")
    dynamodb = [
        st
        for st in s.policy_statements()
        if any(a.startswith("dynamodb:") for a in as_list(st["Action"]))
    ]
    # One table and one statement per function, each on a different table.
    assert len(dynamodb) == len(tables) == len(s.resources("AWS::Lambda::Function"))
    reached = set()
    for statement in dynamodb:
        assert statement["Sid"] == "DeliveryCheckpoint"
        assert sorted(statement["Action"]) == [
            "dynamodb:BatchGetItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:Query",
        ]
        (table,) = statement["Resource"]["Fn::GetAtt"][:1]
        assert statement["Resource"] == {"Fn::GetAtt": [table, "Arn"]}
        reached.add(table)
    assert reached == set(tables)


def test_no_checkpoint_no_table_and_no_dynamodb_permission(synth):
    s = synth(deliveryCheckpoint=False, kinesisEnabled=True)
    assert s.resources("AWS::DynamoDB::Table") == {}
    actions = {a for st in s.policy_statements() for a in as_list(st["Action"])}
    assert not {a for a in actions if a.startswith("dynamodb:")}
