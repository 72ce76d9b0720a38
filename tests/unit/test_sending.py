"""The CloudWatch Logs edge against a scripted client: what each service answer means."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.hooks import HierarchicalEmitter

from forwarder import sending
from forwarder.model import Destination, LogEvent, PlannedRequest, Rejection
from forwarder.sending import Deadline, LogsSender

REQUEST = PlannedRequest(
    Destination("/app/new", "web-1"), (LogEvent(1_700_000_000_000, "hello", 31, 0, 0),), 31
)
AMPLE_TIME = Deadline(lambda: 60_000, 1_000)


def not_found(operation: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": "ResourceNotFoundException", "Message": "not found"}}, operation
    )


class ScriptedLogs:
    """Answers each call from a script of errors per operation; records the calls made."""

    def __init__(self, **errors: list[ClientError]) -> None:
        self.errors = errors
        self.calls: list[str] = []
        self.meta = SimpleNamespace(events=HierarchicalEmitter())

    def _answer(self, operation: str) -> dict[str, Any]:
        self.calls.append(operation)
        queue = self.errors.get(operation, [])
        if queue:
            raise queue.pop(0)
        return {}

    def put_log_events(self, **_: Any) -> dict[str, Any]:
        return self._answer("put_log_events")

    def create_log_stream(self, **_: Any) -> dict[str, Any]:
        return self._answer("create_log_stream")

    def create_log_group(self, **_: Any) -> dict[str, Any]:
        return self._answer("create_log_group")


def sender(client: ScriptedLogs, *, create_log_groups: bool) -> LogsSender:
    return LogsSender(
        client,
        max_concurrent_requests=2,
        create_log_streams=True,
        create_log_groups=create_log_groups,
    )


def test_a_stream_not_found_just_after_its_group_was_created_is_retryable():
    """Eventual consistency after CreateLogGroup: the new group's stream cannot be created yet."""
    client = ScriptedLogs(
        put_log_events=[not_found("PutLogEvents")],
        create_log_stream=[not_found("CreateLogStream"), not_found("CreateLogStream")],
    )

    (outcome,) = sender(client, create_log_groups=True).send([REQUEST], AMPLE_TIME)

    assert client.calls == [
        "put_log_events",
        "create_log_stream",
        "create_log_group",
        "create_log_stream",
    ]
    assert outcome.failure is Rejection.UNAVAILABLE
    assert outcome.failure.retryable


def test_a_put_not_found_just_after_the_stream_was_created_is_retryable():
    client = ScriptedLogs(put_log_events=[not_found("PutLogEvents"), not_found("PutLogEvents")])

    (outcome,) = sender(client, create_log_groups=False).send([REQUEST], AMPLE_TIME)

    assert client.calls == ["put_log_events", "create_log_stream", "put_log_events"]
    assert outcome.failure is Rejection.UNAVAILABLE


def test_a_missing_group_that_may_not_be_created_is_a_missing_destination():
    client = ScriptedLogs(
        put_log_events=[not_found("PutLogEvents")],
        create_log_stream=[not_found("CreateLogStream")],
    )

    (outcome,) = sender(client, create_log_groups=False).send([REQUEST], AMPLE_TIME)

    assert outcome.failure is Rejection.MISSING_DESTINATION
    assert "CREATE_LOG_GROUPS is false" in outcome.detail


def test_a_created_stream_then_lands():
    client = ScriptedLogs(put_log_events=[not_found("PutLogEvents")])

    (outcome,) = sender(client, create_log_groups=False).send([REQUEST], AMPLE_TIME)

    assert outcome.fully_accepted


def test_the_creation_locks_stay_bounded_across_invocations(monkeypatch):
    monkeypatch.setattr(sending, "_MAX_CREATION_LOCKS", 8)
    logs = sender(ScriptedLogs(), create_log_groups=False)

    for index in range(50):
        logs._lock_for("/app/many", f"stream-{index}")

    assert len(logs._locks) <= 8


def test_a_deadline_leaving_a_share_passes_while_that_share_remains():
    remaining = [10_000]
    deadline = Deadline(lambda: remaining[0], 2_000)
    planning = deadline.leaving(0.5)  # 8 s left beyond the reserve: passes with 4 s left
    assert planning.reserve_ms == 6_000
    remaining[0] = 6_001
    assert planning.allows_request()
    assert deadline.allows_request()
    remaining[0] = 6_000
    assert not planning.allows_request()
    assert deadline.allows_request()
    remaining[0] = 1_000  # past the reserve already: the share of nothing is nothing
    assert deadline.leaving(0.5).reserve_ms == 2_000


@pytest.mark.parametrize(
    ("status", "error", "maybe_carried_out"),
    [
        (500, None, True),
        (502, None, True),
        (504, None, True),
        (503, None, False),  # the service refusing the call
        (400, None, False),
        (None, "read timeout", True),
        (None, "never connected", False),
    ],
)
def test_an_attempt_that_may_have_been_carried_out_marks_its_request(
    status, error, maybe_carried_out
):
    from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

    caught = {
        None: None,
        "read timeout": ReadTimeoutError(endpoint_url="http://logs"),
        "never connected": EndpointConnectionError(endpoint_url="http://logs"),
    }[error]
    response = None if status is None else (SimpleNamespace(status_code=status), {})
    sending._ATTEMPTS.unanswered = False
    sending._note_unanswered_attempt(response=response, caught_exception=caught)
    assert sending._ATTEMPTS.unanswered is maybe_carried_out


# --- a group the sender creates: made as NEW_LOG_GROUP_* says ----------------------------------


def already_exists() -> ClientError:
    return ClientError(
        {"Error": {"Code": "ResourceAlreadyExistsException", "Message": "exists"}},
        "CreateLogGroup",
    )


class GroupLogs(ScriptedLogs):
    """A group that is missing at first; ``lost_answer``: our CreateLogGroup was carried out
    but its answer lost, so botocore's retry meets "already exists"."""

    def __init__(self, *, lost_answer: bool = False, **errors: list[ClientError]) -> None:
        super().__init__(
            put_log_events=[not_found("PutLogEvents")],
            create_log_stream=[not_found("CreateLogStream")],
            **errors,
        )
        self.lost_answer = lost_answer

    def create_log_group(self, **_: Any) -> dict[str, Any]:
        if self.lost_answer:
            sending._ATTEMPTS.unanswered = True  # what the needs-retry hook notes
        return self._answer("create_log_group")

    def put_retention_policy(self, **_: Any) -> dict[str, Any]:
        return self._answer("put_retention_policy")


def group_sender(client: ScriptedLogs) -> LogsSender:
    return LogsSender(
        client,
        max_concurrent_requests=2,
        create_log_streams=True,
        create_log_groups=True,
        new_log_groups=sending.NewLogGroups(retention_days=7),
    )


def test_a_group_another_writer_created_first_is_left_as_it_is():
    client = GroupLogs(create_log_group=[already_exists()])

    (outcome,) = group_sender(client).send([REQUEST], AMPLE_TIME)

    assert outcome.fully_accepted
    assert "put_retention_policy" not in client.calls


def test_a_group_whose_creation_answer_was_lost_is_taken_as_ours_and_gets_its_retention():
    client = GroupLogs(lost_answer=True, create_log_group=[already_exists()])
    forwarder_sender = group_sender(client)

    (outcome,) = forwarder_sender.send([REQUEST], AMPLE_TIME)

    assert outcome.fully_accepted
    assert client.calls.count("put_retention_policy") == 1
    assert not outcome.ambiguous  # the creation's lost answer says nothing of the put
    assert forwarder_sender.take_problems() == []


def test_the_retention_retry_starts_only_while_the_deadline_allows_a_request():
    unavailable = ClientError({"Error": {"Code": "ServiceUnavailable"}}, "PutRetentionPolicy")
    left = [60_000]

    class SlowRetention(GroupLogs):
        def put_retention_policy(self, **arguments: Any) -> dict[str, Any]:
            left[0] = 500  # the failed call took the time left but for the reserve
            return super().put_retention_policy(**arguments)

    client = SlowRetention(put_retention_policy=[unavailable, unavailable])
    forwarder_sender = group_sender(client)

    forwarder_sender.send([REQUEST], Deadline(lambda: left[0], 1_000))

    assert client.calls.count("put_retention_policy") == 1
    (problem,) = forwarder_sender.take_problems()
    assert "retention (7 days) could not be set" in problem
