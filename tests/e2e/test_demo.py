"""The README's first command, as ``make demo`` runs it (functions in awslambdaric processes)."""

from __future__ import annotations

import io
import uuid

import pytest

from local.demo import run_demo


@pytest.mark.slow
def test_the_demo_accounts_for_every_record_and_exits_zero() -> None:
    out = io.StringIO()
    tag = uuid.uuid4().hex[:6]

    code = run_demo(out=out, prefix=f"demo-{tag}", log_prefix=f"/app/demo-{tag}")

    report = out.getvalue()
    assert code == 0, report
    assert "requests refused for their shape: 0" in report
    assert "python -m awslambdaric" in report
    assert "everything accounted for" in report
    assert "WRONG" not in report
    assert "MISMATCH" not in report
    # The functions reach their checkpoint tables in moto: no read or write failed.
    assert "Delivery checkpoint (DynamoDB" in report
    assert "; problems 0" in report
    # the group the forwarder creates, made as NEW_LOG_GROUP_* asks
    created = report[report.index("Log groups the forwarder created") :]
    assert "retention 30 days, class INFREQUENT_ACCESS" in created.split("\n\n")[0]
    assert "created-by=forwarder, team=audit" in created.split("\n\n")[0]
    # a KPL aggregate, and a batch given up to S3 with its data
    assert "1 KPL aggregate of 24 user records" in report
    assert "(S3, aws/lambda/)" in report
