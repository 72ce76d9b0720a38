"""Send: the only code that talks to CloudWatch Logs.

It takes planned requests and returns, per request, what the service accepted and rejected. It
knows nothing about records. Retries of throttling, 5xx and connection errors are botocore's own
(standard retry mode, configured in ``make_logs_client``); what still fails after them is reported
as the request's failure.

PutLogEvents has no idempotency token: an attempt whose answer never came (the connection lost
once the request was on its way, a read timeout) may have been carried out, and botocore's retry
of it lands its events a second time. Such a request is reported ``ambiguous``, whatever its
final answer, so that every possible duplicate is named.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
)

if TYPE_CHECKING:  # the stubs are a dev dependency only, never in the asset
    from mypy_boto3_logs import CloudWatchLogsClient

from forwarder.model import Deadline, PlannedRequest, Rejection, RequestOutcome

_THROTTLING_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "LimitExceededException"}
)


@dataclasses.dataclass(frozen=True, slots=True)
class NewLogGroups:
    """How the sender makes a log group it creates (``NEW_LOG_GROUP_*``); a group that already
    existed is never changed."""

    retention_days: int | None = None
    kms_key_id: str | None = None
    log_group_class: str = "STANDARD"
    tags: tuple[tuple[str, str], ...] = ()
    deletion_protection: bool = False

    def create_arguments(self, group: str) -> dict[str, Any]:
        """CreateLogGroup's arguments: what is not the service's default."""
        arguments: dict[str, Any] = {"logGroupName": group}
        if self.kms_key_id:
            arguments["kmsKeyId"] = self.kms_key_id
        if self.tags:
            arguments["tags"] = dict(self.tags)
        if self.log_group_class != "STANDARD":
            arguments["logGroupClass"] = self.log_group_class
        if self.deletion_protection:
            arguments["deletionProtectionEnabled"] = True
        return arguments


#: PutRetentionPolicy on a group just created: tried this many times, then given up (logged and
#: counted; the group stands, without retention, and no record fails for it).
RETENTION_ATTEMPTS = 2
#: How many per-stream creation locks are kept across invocations before the map is cleared.
_MAX_CREATION_LOCKS = 1024
#: Requests abandoned at a deadline that are followed until they answer (``settle``).
_MAX_ABANDONED = 64
#: Answers after which the request may have been carried out all the same.
_MAYBE_CARRIED_OUT = frozenset({500, 502, 504})
#: Per sending thread: whether an attempt of the current request got no answer.
_ATTEMPTS = threading.local()


def _note_unanswered_attempt(
    response: Any = None, caught_exception: Exception | None = None, **_: Any
) -> None:
    """botocore's ``needs-retry`` hook, called after every attempt (before its retry handler,
    whose decision it leaves alone): an attempt that failed for want of an answer, rather than
    of a connection, or that a server or gateway answered with 500, 502 or 504, may have been
    carried out (a 503 is the service refusing it)."""
    unanswered = caught_exception is not None and not isinstance(caught_exception, _NEVER_SENT)
    status = getattr(response[0], "status_code", 0) if response is not None else 0
    if unanswered or status in _MAYBE_CARRIED_OUT:
        _ATTEMPTS.unanswered = True


def make_logs_client(
    max_concurrent_requests: int, retry_mode: str = "standard", max_attempts: int = 5
) -> CloudWatchLogsClient:
    """A CloudWatch Logs client with botocore's retries (standard or adaptive mode) and
    bounded timeouts.

    Endpoints come from botocore itself (``AWS_ENDPOINT_URL_CLOUDWATCH_LOGS``), never from here.
    """
    mode: Literal["standard", "adaptive"] = "adaptive" if retry_mode == "adaptive" else "standard"
    config = Config(
        retries={"mode": mode, "total_max_attempts": max_attempts},
        connect_timeout=3,
        read_timeout=15,
        max_pool_connections=max_concurrent_requests,
        tcp_keepalive=True,
        # The planner already guarantees every rule botocore would check (and stricter ones);
        # re-validating 10,000 events per request costs about a third of the send CPU.
        parameter_validation=False,
    )
    return boto3.client("logs", config=config)


class LogsSender:
    """Sends planned requests concurrently on a bounded pool and reports their outcomes.

    A missing log stream is created (and a missing log group, when allowed) on the first
    ``ResourceNotFoundException``; creation races are harmless. No sequence token is ever sent.
    """

    def __init__(
        self,
        client: CloudWatchLogsClient,
        *,
        max_concurrent_requests: int,
        create_log_streams: bool,
        create_log_groups: bool,
        new_log_groups: NewLogGroups | None = None,
    ) -> None:
        self._client = client
        for operation in ("PutLogEvents", "CreateLogGroup"):
            client.meta.events.register_first(
                f"needs-retry.cloudwatch-logs.{operation}", _note_unanswered_attempt
            )
        self._pool = ThreadPoolExecutor(max_concurrent_requests, thread_name_prefix="put-logs")
        self._create_streams = create_log_streams
        self._create_groups = create_log_groups
        self._new_groups = new_log_groups or NewLogGroups()
        #: What went wrong making a created group as asked (its retention not set), since the
        #: last ``take_problems``; no record failed for it.
        self._problems: list[str] = []
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()
        #: Requests still in flight when their invocation's deadline came, oldest first.
        self._abandoned: list[tuple[PlannedRequest, Future[RequestOutcome]]] = []

    def send(self, requests: Sequence[PlannedRequest], deadline: Deadline) -> list[RequestOutcome]:
        """Send every request; one outcome per request, in the same order. Never raises.

        Requests that cannot start before the deadline, or have not finished by it, are reported
        ``OUT_OF_TIME`` (one still in flight may land later; its records are retried, so a
        duplicate is possible, a loss is not).
        """
        if not requests:
            return []
        futures = [self._pool.submit(self._send_one, request, deadline) for request in requests]
        wait(futures, timeout=deadline.seconds_left())
        outcomes = []
        for request, future in zip(requests, futures, strict=True):
            if not future.done():
                # Cancelled if it has not started; if it has, it may land all the same.
                started = not future.cancel()
                if started:
                    self._abandoned = [*self._abandoned, (request, future)][-_MAX_ABANDONED:]
                outcomes.append(
                    RequestOutcome(
                        request,
                        Rejection.OUT_OF_TIME,
                        "no answer before the deadline",
                        ambiguous=started,
                    )
                )
            elif future.exception() is not None:
                error = future.exception()
                outcomes.append(
                    RequestOutcome(request, Rejection.UNAVAILABLE, repr(error), ambiguous=True)
                )
            else:
                outcomes.append(future.result())
        return outcomes

    def settle(self, timeout_s: float) -> list[RequestOutcome]:
        """What the requests abandoned at an earlier deadline came to, for those that have
        answered now or within ``timeout_s``; the others are followed still."""
        if not self._abandoned:
            return []
        wait([future for _, future in self._abandoned], timeout=timeout_s)
        answered = [future for _, future in self._abandoned if future.done()]
        self._abandoned = [(r, f) for r, f in self._abandoned if not f.done()]
        return [future.result() for future in answered if future.exception() is None]

    def _send_one(self, request: PlannedRequest, deadline: Deadline) -> RequestOutcome:
        """``_attempt`` the request, ambiguous if one of its attempts got no answer."""
        _ATTEMPTS.unanswered = False
        outcome = self._attempt(request, deadline)
        if _ATTEMPTS.unanswered and not outcome.ambiguous:
            return dataclasses.replace(outcome, ambiguous=True)
        return outcome

    def _attempt(self, request: PlannedRequest, deadline: Deadline) -> RequestOutcome:
        """Put the request; on a missing stream, create it (and its group, when allowed) and
        put once more. Every service error, wherever it arises, is classified by ``_failed``."""
        if not deadline.allows_request():
            return RequestOutcome(request, Rejection.OUT_OF_TIME, "too little time left to send")
        try:
            return self._put(request)
        except ClientError as error:
            if _code(error) != "ResourceNotFoundException":
                return _failed(request, error)
        except BotoCoreError as error:  # connection errors left after botocore's retries
            return _unreachable(request, error)
        try:
            missing = self._create_destination(request, deadline)
            if missing is not None:
                return RequestOutcome(request, Rejection.MISSING_DESTINATION, missing)
            return self._put(request)
        except ClientError as error:
            return _failed(request, error)
        except BotoCoreError as error:
            return _unreachable(request, error)

    def _put(self, request: PlannedRequest) -> RequestOutcome:
        destination = request.destination
        arguments: dict[str, Any] = {
            "logGroupName": destination.log_group,
            "logStreamName": destination.log_stream,
            "logEvents": [{"timestamp": e.timestamp, "message": e.message} for e in request.events],
        }
        if destination.entity is not None:
            arguments["entity"] = destination.entity.to_api()
        try:
            response = self._client.put_log_events(**arguments)
        except ClientError as error:
            code = _code(error)
            if code == "DataAlreadyAcceptedException":
                return RequestOutcome(request)
            if code != "InvalidSequenceTokenException":
                raise
            # Sequence tokens are ignored by the service today; a stale one is retried without.
            response = self._client.put_log_events(**arguments)
        rejected = response.get("rejectedLogEventsInfo") or {}
        entity = response.get("rejectedEntityInfo") or {}
        return RequestOutcome(
            request,
            too_new_start=rejected.get("tooNewLogEventStartIndex"),
            too_old_end=rejected.get("tooOldLogEventEndIndex"),
            expired_end=rejected.get("expiredLogEventEndIndex"),
            entity_rejection=entity.get("errorType"),
        )

    def _create_destination(self, request: PlannedRequest, deadline: Deadline) -> str | None:
        """Create the missing stream (and group, when allowed). Returns why it could not."""
        group, stream = request.destination.log_group, request.destination.log_stream
        if not self._create_streams:
            return f"log stream {group}:{stream} does not exist and CREATE_LOG_STREAMS is false"
        with self._lock_for(group, stream):  # one creator per stream; the others wait, then put
            try:
                self._create_stream(group, stream)
            except ClientError as error:
                if _code(error) != "ResourceNotFoundException":
                    raise
                if not self._create_groups:
                    return f"log group {group} does not exist and CREATE_LOG_GROUPS is false"
                # One creator per group, holding the others of its streams back until it is
                # made as asked (its retention set) before they create their streams in it.
                with self._lock_for(group, ""):
                    if self._create_group(group):
                        self._set_retention(group, deadline)
                self._create_stream(group, stream)
        return None

    def take_problems(self) -> list[str]:
        """What went wrong making created groups as asked, since the last call."""
        with self._locks_guard:
            problems, self._problems = self._problems, []
        return problems

    def _create_group(self, group: str) -> bool:
        """Create the group as ``NEW_LOG_GROUP_*`` says; False if it existed (another writer
        won the race: its settings stand). "Already exists" after an attempt of ours got no
        answer is taken as ours: that attempt may well have created it."""
        unanswered_before = getattr(_ATTEMPTS, "unanswered", False)
        _ATTEMPTS.unanswered = False
        try:
            self._client.create_log_group(**self._new_groups.create_arguments(group))
        except ClientError as error:
            if _code(error) != "ResourceAlreadyExistsException":
                raise
            return bool(_ATTEMPTS.unanswered)
        finally:
            # The flag speaks of the PutLogEvents request this creation serves: restore it.
            _ATTEMPTS.unanswered = unanswered_before
        return True

    def _set_retention(self, group: str, deadline: Deadline) -> None:
        """Set a created group's retention; a failure is noted, never raised: the group
        stands without retention, and its events land all the same. The retry waits for
        nothing and starts only while the deadline allows a request."""
        days = self._new_groups.retention_days
        if days is None:
            return
        error: Exception | str = "too little time left to try again"
        for attempt in range(RETENTION_ATTEMPTS):
            if attempt and not deadline.allows_request():
                break
            try:
                self._client.put_retention_policy(logGroupName=group, retentionInDays=days)
                return
            except (ClientError, BotoCoreError) as problem:
                error = problem
        with self._locks_guard:
            self._problems.append(
                f"log group {group} was created but its retention ({days} days) could not be "
                f"set: {error}"
            )

    def _create_stream(self, group: str, stream: str) -> None:
        self._ignore_existing(
            self._client.create_log_stream, logGroupName=group, logStreamName=stream
        )

    @staticmethod
    def _ignore_existing(call: Callable[..., Any], **arguments: str) -> None:
        try:
            call(**arguments)
        except ClientError as error:
            if _code(error) != "ResourceAlreadyExistsException":
                raise

    def _lock_for(self, group: str, stream: str) -> threading.Lock:
        """One lock per stream, so one thread creates it while the others wait. The map lives
        as long as the execution environment, so it is cleared when full: a stream whose lock
        is forgotten may be created twice at worst, which is harmless."""
        with self._locks_guard:
            if len(self._locks) >= _MAX_CREATION_LOCKS:
                self._locks.clear()
            return self._locks.setdefault((group, stream), threading.Lock())


#: Errors of a request that never left: the connection could not be made.
_NEVER_SENT = (EndpointConnectionError, ConnectTimeoutError)


def _unreachable(request: PlannedRequest, error: BotoCoreError) -> RequestOutcome:
    """A request without an answer. Ambiguous unless it never left, so the service never saw
    it."""
    never_sent = isinstance(error, _NEVER_SENT)
    return RequestOutcome(request, Rejection.UNAVAILABLE, str(error), ambiguous=not never_sent)


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _failed(request: PlannedRequest, error: ClientError) -> RequestOutcome:
    code = _code(error)
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    detail = f"{code}: {error.response.get('Error', {}).get('Message', '')}"
    if code in _THROTTLING_CODES:
        reason = Rejection.THROTTLED
    elif code == "ResourceNotFoundException":
        # A put that finds no stream creates it first (``_send_one``); "not found" after that is
        # the service not showing yet what was just created (or found to exist): retryable.
        reason = Rejection.UNAVAILABLE
        detail = f"log group or stream still not found just after it was created ({detail})"
    elif code in {"AccessDeniedException", "UnrecognizedClientException"}:
        reason = Rejection.ACCESS_DENIED
    elif code == "InvalidParameterException":
        reason = Rejection.REFUSED
    elif status >= 500 or status == 0:
        reason = Rejection.UNAVAILABLE
    else:
        reason = Rejection.UNAVAILABLE if status in {408, 429} else Rejection.REFUSED
    return RequestOutcome(request, reason, detail)
