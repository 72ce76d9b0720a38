"""cdk-nag (AwsSolutions, as a CDK validation plugin): no unacknowledged finding in any variant,
and every acknowledgment is one of a known few, each with its written reason."""

from __future__ import annotations

import re

import pytest

from tests.infra.conftest import VARIANTS, cdk_context

LOG_GROUP_ARN = r"arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
#: The findings a variant may acknowledge; anything else must be fixed, not acknowledged.
ACKNOWLEDGEABLE = [
    # The allowed log-group patterns (and their streams) in the forwarding statement.
    re.compile(rf"^AwsSolutions-IAM5\[Resource::{LOG_GROUP_ARN}[^\]]+\]$"),
    # X-Ray's PutTraceSegments / PutTelemetryRecords, which have no resource type.
    re.compile(r"^AwsSolutions-IAM5\[Resource::\*\]$"),
    # Queues that are themselves the dead-letter end (Kinesis DLQ / on-failure, invalid records).
    re.compile(r"^AwsSolutions-SQS3$"),
    # The large dead letters' keys, under the failure store's dead-letters/ prefix.
    re.compile(
        r"^AwsSolutions-IAM5\[Resource::<FailureStoreBucket[0-9A-F]{8}\.Arn>/dead-letters/\*\]$"
    ),
    # The Kinesis on-failure records' keys, which Lambda names, under aws/lambda/.
    re.compile(
        r"^AwsSolutions-IAM5\[Resource::<FailureStoreBucket[0-9A-F]{8}\.Arn>/aws/lambda/\*\]$"
    ),
    # The failure store keeps no server access logs of its own.
    re.compile(r"^AwsSolutions-S1$"),
]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_no_unacknowledged_findings(synth, variant):
    report = synth(**VARIANTS[variant]).report
    (nag,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []
    for other in report["pluginReports"]:
        assert other["violations"] == [], other["pluginName"]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_acknowledgment_is_known_and_explained(synth, variant):
    report = synth(**VARIANTS[variant]).report
    (nag,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    for suppressed in nag.get("suppressedViolations", []):
        rule = suppressed["ruleName"]
        assert any(p.match(rule) for p in ACKNOWLEDGEABLE), f"unexpected acknowledgment {rule}"
        assert len(suppressed["reason"]) > 80, f"{rule}: the reason must explain itself"
        for construct in suppressed["violatingConstructs"]:
            path = construct["constructPath"]
            if rule.startswith("AwsSolutions-IAM5"):
                assert path.endswith("/Forwarder/Role/DefaultPolicy/Resource"), path
            elif rule == "AwsSolutions-S1":
                assert path.endswith("/FailureStore/Bucket/Resource"), path
            else:
                assert re.search(r"/(DeadLetterQueue|OnFailureQueue|InvalidRecordsQueue)/", path)
                assert "/Sqs/DeadLetterQueue/" not in path, "a redrive DLQ needs no acknowledgment"


def test_runtime_passes_l1_without_acknowledgment(synth):
    report = synth(**VARIANTS["kinesis"]).report
    rules = {s["ruleName"] for p in report["pluginReports"] for s in p["suppressedViolations"]}
    assert not any(r.startswith("AwsSolutions-L1") for r in rules)


def test_a_finding_fails_the_synth(tmp_path):
    """The plugin is really registered: an unencrypted, TLS-optional queue stops the synth."""
    import aws_cdk as cdk
    from aws_cdk import aws_sqs as sqs

    from infra.stack import build_app

    app, stack = build_app(cdk.App(context=cdk_context(), outdir=str(tmp_path)))
    sqs.Queue(stack, "CarelessQueue", encryption=sqs.QueueEncryption.UNENCRYPTED)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = (tmp_path / "validation-report.json").read_text()
    assert "AwsSolutions-SQS4" in report
    assert "CarelessQueue" in report
