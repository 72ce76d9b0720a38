"""The campaign's ledger: each record gets one fate, and every kind of miscount is caught."""

from __future__ import annotations

import base64
import json

from local.ledger import DeadLetters, Ledger, Outcome, Tracked

KEY = ("/app/g", "s")


def ledger_of(*records: tuple[Tracked, str, str]) -> Ledger:
    ledger = Ledger()
    for record, identifier, shard in records:
        ledger.sent(record, identifier, shard)
    return ledger


def landed(*messages: str) -> dict[tuple[str, str], list[tuple[int, str]]]:
    return {KEY: [(1, m) for m in messages]}


def on_failure(shard: str, first: int, last: int) -> str:
    info = {"shardId": shard, "startSequenceNumber": str(first), "endSequenceNumber": str(last)}
    return json.dumps({"KinesisBatchInfo": info})


def test_every_event_landed_once_is_a_clean_account():
    ledger = ledger_of(
        (Tracked("sqs", "one", ("a",)), "m-1", ""),
        (Tracked("kinesis", b"two", ("b", "c")), "7", "shard-0"),
    )
    account = ledger.account(landed("a", "c", "b"), DeadLetters())
    assert account.ok
    assert account.outcomes == {Outcome.LANDED: 2}
    assert (account.sent, account.events_sent, account.events_landed) == (2, 3, 3)
    assert account.duplicate_events == account.lost == 0


def test_duplicates_are_counted_and_a_missing_event_is_a_loss():
    ledger = ledger_of(
        (Tracked("sqs", "one", ("a", "b")), "m-1", ""),
        (Tracked("sqs", "two", ("c",)), "m-2", ""),
        (Tracked("sqs", "three", ("d",)), "m-3", ""),
    )
    account = ledger.account(landed("a", "a", "a", "c"), DeadLetters())
    assert account.duplicate_events == 2
    assert account.duplicates_by_source == {"sqs": 2}
    assert account.outcomes == {Outcome.PARTLY_LANDED: 1, Outcome.LANDED: 1, Outcome.LOST: 1}
    assert account.lost == 2
    assert not account.ok


def test_dead_letters_are_found_by_payload_in_each_queue():
    raw = b"\xff\xfe not utf-8"
    ledger = ledger_of(
        (Tracked("sqs", '{"too": "old"}', ("a",), poison=True), "m-1", ""),
        (Tracked("sqs", b"gzip bytes", ("b",), poison=True), "m-2", ""),
        (Tracked("kinesis", raw, ("c",), poison=True), "1", "shard-0"),
        (Tracked("kinesis", b'{"bad": 1}', ("d",), poison=True), "2", "shard-0"),
    )
    letters = DeadLetters(
        redriven=['{"too": "old"}', base64.b64encode(b"gzip bytes").decode()],
        function=[
            json.dumps({"payloadEncoding": "base64", "payload": base64.b64encode(raw).decode()}),
            json.dumps({"payloadEncoding": "text", "payload": '{"bad": 1}'}),
        ],
    )
    account = ledger.account({}, letters)
    assert account.ok
    assert account.outcomes == {Outcome.DEAD_LETTERED: 4}
    assert account.dead_lettered_by == {
        "SQS dead-letter queue": 2,
        "function's dead-letter queue": 2,
    }
    assert account.valid_dead_lettered == 0


def test_an_on_failure_range_names_records_of_its_shard_only():
    ledger = ledger_of(
        (Tracked("kinesis", b"landed", ("a",)), "10", "shard-0"),
        (Tracked("kinesis", b"given up", ("b",)), "11", "shard-0"),
        (Tracked("kinesis", b"other shard", ("c",)), "11", "shard-1"),
        (Tracked("kinesis", b"after", ("d",)), "12", "shard-0"),
    )
    account = ledger.account(
        landed("a", "c", "d"), DeadLetters(on_failure=[on_failure("shard-0", 10, 11)])
    )
    assert account.outcomes == {Outcome.LANDED: 3, Outcome.DEAD_LETTERED: 1}
    assert account.landed_in_on_failure_range == 1
    assert account.valid_dead_lettered == 1  # "given up" was valid: counted, not lost
    assert account.ok


def test_two_fates_poison_that_landed_and_strangers_spoil_the_account():
    both = ledger_of((Tracked("sqs", "p", ("a",)), "m-1", ""))
    account = both.account(landed("a"), DeadLetters(redriven=["p"]))
    assert account.outcomes == {Outcome.BOTH: 1}
    assert not account.ok

    poison = ledger_of((Tracked("sqs", "p", ("a",), poison=True), "m-1", ""))
    assert poison.account(landed("a"), DeadLetters()).poison_landed == 1
    assert not poison.account(landed("a"), DeadLetters()).ok

    stranger = ledger_of((Tracked("sqs", "p", ("a",)), "m-1", ""))
    account = stranger.account(landed("a", "never sent"), DeadLetters())
    assert account.unknown_events == 1
    assert not account.ok


def test_a_letter_of_an_aggregate_s_user_records_accounts_for_its_record():
    ledger = ledger_of(
        (Tracked("kinesis", b"\xf3\x89\x9a\xc2...", ("a", "b"), poison=True), "7", "shard-0"),
    )
    letter = {"recordId": "7", "reason": "user record 1 ...", "userRecords": [{"payload": "b"}]}

    account = ledger.account(landed("a"), DeadLetters(function=[json.dumps(letter)]))

    assert account.outcomes == {Outcome.BOTH: 1}  # user record 0 landed, 1 was dead-lettered
    assert account.dead_lettered_by == {"function's dead-letter queue": 1}
