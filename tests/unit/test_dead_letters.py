"""Dead letters are always deliverable: bodies SQS accepts, a client the time reserve bounds."""

from __future__ import annotations

import json
import re

import pytest

from forwarder.dead_letters import DeadLetter, dead_letter_body, make_sqs_client
from forwarder.model import SourceRecord
from forwarder.settings import Settings

#: The characters SQS accepts in a message body (SendMessage reference).
SQS_BODY = re.compile("[\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")


@pytest.mark.parametrize(
    "payload",
    [
        "noncharacters \ufffe and \uffff",
        "a lone surrogate \ud83d, half an emoji",
        "controls \x00\x01\x0b\x0c\x1f and \x7f",
        "plain text, an emoji \U0001f600 and é",
    ],
)
def test_a_dead_letter_body_holds_only_what_sqs_accepts_and_keeps_the_payload(payload):
    letter = DeadLetter(SourceRecord("id-1", payload, 1_700_000_000_000), "bad \uffff", "aws:sqs")

    body = dead_letter_body(letter)

    assert SQS_BODY.fullmatch(body)
    document = json.loads(body)
    assert document["payload"] == payload
    assert document["reason"] == "bad \uffff"


def test_the_dead_letter_client_cannot_outlast_the_time_reserve(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    config = make_sqs_client().meta.config

    attempts = config.retries["total_max_attempts"]
    reserve_s = Settings().time_reserve_ms / 1000
    assert (config.connect_timeout + config.read_timeout) * attempts <= reserve_s
