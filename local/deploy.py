"""Create a blueprint's queues, streams, buckets and tables on the local endpoints, and resolve the
template's references (``Ref``, ``Fn::GetAtt``, ``Fn::Sub``, ``Fn::Join``) to the local values.

Each queue, stream, bucket and table is named ``<prefix>-<logical id without the CDK hash>``,
so several deployments (one per test) can share one moto server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from forwarder.checkpoints import PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE
from infra.blueprint import Blueprint, FunctionSpec
from infra.config import ON_FAILURE_PREFIX
from local.cloud import Endpoints
from local.template import short_name

_PSEUDO = {"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": ""}


class UnresolvableReference(ValueError):
    """A template value this emulation cannot turn into a local value."""


@dataclass(frozen=True, slots=True)
class LocalQueue:
    logical_id: str
    name: str
    url: str
    arn: str


@dataclass(frozen=True, slots=True)
class LocalStream:
    logical_id: str
    name: str
    arn: str


@dataclass(frozen=True, slots=True)
class LocalBucket:
    logical_id: str
    name: str

    @property
    def arn(self) -> str:
        return f"arn:aws:s3:::{self.name}"


@dataclass(frozen=True, slots=True)
class LocalTable:
    logical_id: str
    name: str
    arn: str


@dataclass(slots=True)
class Deployment:
    """The local counterpart of every queue, stream, bucket and table of a blueprint."""

    endpoints: Endpoints
    blueprint: Blueprint
    prefix: str
    queues: dict[str, LocalQueue] = field(default_factory=dict)
    streams: dict[str, LocalStream] = field(default_factory=dict)
    buckets: dict[str, LocalBucket] = field(default_factory=dict)
    tables: dict[str, LocalTable] = field(default_factory=dict)

    @classmethod
    def create(cls, endpoints: Endpoints, blueprint: Blueprint, prefix: str) -> Deployment:
        """Create the queues (dead-letter targets first, then the redrive policies) and the
        streams; moto's streams are ACTIVE at once."""
        deployment = cls(endpoints, blueprint, prefix)
        sqs = endpoints.client("sqs")
        for spec in blueprint.queues.values():
            name = _resource_name(prefix, spec.logical_id, 75) + (".fifo" if spec.fifo else "")
            attributes = {"VisibilityTimeout": str(spec.visibility_timeout_s)}
            if spec.fifo:
                attributes["FifoQueue"] = "true"
                if spec.content_based_deduplication:
                    attributes["ContentBasedDeduplication"] = "true"
            url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
            deployment.queues[spec.logical_id] = LocalQueue(
                spec.logical_id, name, url, arn["Attributes"]["QueueArn"]
            )
        for spec in blueprint.queues.values():
            if spec.redrive_target is None or spec.max_receive_count is None:
                continue
            policy = {
                "deadLetterTargetArn": deployment.queues[spec.redrive_target].arn,
                "maxReceiveCount": spec.max_receive_count,
            }
            sqs.set_queue_attributes(
                QueueUrl=deployment.queues[spec.logical_id].url,
                Attributes={"RedrivePolicy": json.dumps(policy)},
            )
        if blueprint.kinesis is not None:
            kinesis = endpoints.client("kinesis")
            stream = blueprint.kinesis.stream
            name = _resource_name(prefix, stream.logical_id, 128)
            kinesis.create_stream(StreamName=name, ShardCount=stream.shard_count)
            arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
            deployment.streams[stream.logical_id] = LocalStream(
                stream.logical_id, name, arn["StreamARN"]
            )
        if blueprint.buckets:
            s3 = endpoints.client("s3")
            for bucket in blueprint.buckets.values():
                # S3 names are lowercase, at most 63 characters, and unique on the server.
                name = re.sub(
                    r"[^a-z0-9-]", "-", _resource_name(prefix, bucket.logical_id, 63).lower()
                )
                s3.create_bucket(Bucket=name.strip("-"))
                deployment.buckets[bucket.logical_id] = LocalBucket(
                    bucket.logical_id, name.strip("-")
                )
        if blueprint.tables:
            dynamodb = endpoints.client("dynamodb")
            for table in blueprint.tables.values():
                name = _resource_name(prefix, table.logical_id, 255)
                arn = create_checkpoint_table(dynamodb, name)
                deployment.tables[table.logical_id] = LocalTable(table.logical_id, name, arn)
        return deployment

    def bucket(self, logical_id: str) -> LocalBucket:
        return self.buckets[logical_id]

    def destination(self, logical_id: str) -> LocalQueue | LocalBucket:
        """A queue or a bucket: what an on-failure destination may be."""
        return self.queues.get(logical_id) or self.buckets[logical_id]

    def on_failure_records(self) -> list[str]:
        """The Kinesis mapping's on-failure records (JSON text), each once: the queue's
        messages (hidden while read), or the bucket's objects under ``aws/lambda/``."""
        mapping = self.blueprint.kinesis and self.blueprint.kinesis.mapping
        if not mapping or not mapping.on_failure:
            return []
        destination = self.destination(mapping.on_failure)
        if isinstance(destination, LocalQueue):
            sqs = self.endpoints.client("sqs")
            bodies: dict[str, str] = {}
            while True:
                answer = sqs.receive_message(
                    QueueUrl=destination.url, MaxNumberOfMessages=10, VisibilityTimeout=900
                )
                messages = answer.get("Messages", [])
                if not messages:
                    return list(bodies.values())
                bodies |= {m["MessageId"]: m["Body"] for m in messages}
        s3 = self.endpoints.client("s3")
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=destination.name, Prefix=ON_FAILURE_PREFIX
        )
        keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
        return [
            s3.get_object(Bucket=destination.name, Key=key)["Body"].read().decode()
            for key in sorted(keys)
        ]

    def queue(self, logical_id: str) -> LocalQueue:
        return self.queues[logical_id]

    def stream(self, logical_id: str) -> LocalStream:
        return self.streams[logical_id]

    def function_name(self, spec: FunctionSpec) -> str:
        return _resource_name(self.prefix, spec.logical_id, 64)

    def function_arn(self, spec: FunctionSpec) -> str:
        return (
            f"arn:aws:lambda:{self.endpoints.region}:{self.endpoints.account}:function:"
            f"{self.function_name(spec)}"
        )

    def function_environment(
        self, spec: FunctionSpec, overrides: Mapping[str, str] | None = None
    ) -> tuple[dict[str, str], list[str]]:
        """The function's variables with references resolved, plus the endpoint variables and
        ``overrides``; and a warning for each variable left out because it cannot be resolved."""
        environment: dict[str, str] = {}
        warnings: list[str] = []
        for name, value in spec.environment.items():
            try:
                environment[name] = self.resolve(value)
            except UnresolvableReference as problem:
                warnings.append(f"{spec.logical_id}: {name} left unset ({problem})")
        return environment | self.endpoints.function_environment() | dict(overrides or {}), warnings

    def resolve(self, value: Any) -> str:
        """A template value as the local string CloudFormation would have produced."""
        if isinstance(value, str | int | float | bool):
            return str(value).lower() if isinstance(value, bool) else str(value)
        if isinstance(value, dict) and len(value) == 1:
            ((function, argument),) = value.items()
            if function == "Ref":
                return self._ref(argument)
            if function == "Fn::GetAtt":
                target, attribute = argument if isinstance(argument, list) else argument.split(".")
                return self._attribute(target, attribute)
            if function == "Fn::Join":
                separator, parts = argument
                return separator.join(self.resolve(part) for part in parts)
            if function == "Fn::Sub":
                text, variables = (argument, {}) if isinstance(argument, str) else argument
                return re.sub(
                    r"\$\{([^}]+)\}",
                    lambda m: self._substitute(m.group(1), variables),
                    text,
                )
        raise UnresolvableReference(f"cannot resolve {json.dumps(value)} locally")

    def _substitute(self, name: str, variables: Mapping[str, Any]) -> str:
        if name in variables:
            return self.resolve(variables[name])
        if "." in name:
            target, attribute = name.split(".", 1)
            return self._attribute(target, attribute)
        return self._ref(name)

    def _ref(self, name: str) -> str:
        if name == "AWS::Region":
            return self.endpoints.region
        if name == "AWS::AccountId":
            return self.endpoints.account
        if name == "AWS::StackName":
            return self.prefix
        if name in _PSEUDO:
            return _PSEUDO[name]
        if name in self.queues:
            return self.queues[name].url
        if name in self.streams:
            return self.streams[name].name
        if name in self.buckets:
            return self.buckets[name].name
        if name in self.tables:
            return self.tables[name].name
        raise UnresolvableReference(f"{name!r} has no local counterpart")

    def _attribute(self, target: str, attribute: str) -> str:
        if target in self.queues:
            queue = self.queues[target]
            values = {"Arn": queue.arn, "QueueUrl": queue.url, "QueueName": queue.name}
        elif target in self.streams:
            values = {"Arn": self.streams[target].arn}
        elif target in self.buckets:
            values = {"Arn": self.buckets[target].arn}
        elif target in self.tables:
            values = {"Arn": self.tables[target].arn}
        else:
            raise UnresolvableReference(f"{target!r} has no local counterpart")
        if attribute not in values:
            raise UnresolvableReference(f"{target}.{attribute} is not emulated")
        return values[attribute]


def create_checkpoint_table(dynamodb: Any, name: str) -> str:
    """A delivery-checkpoint table as ``infra.delivery_checkpoint`` makes it (string keys,
    on-demand, TTL on); its ARN. moto's tables are ACTIVE at once."""
    created = dynamodb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": SORT_KEY, "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )
    return str(created["TableDescription"]["TableArn"])


def _resource_name(prefix: str, logical_id: str, limit: int) -> str:
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+", short_name(logical_id))
    return f"{prefix}-{'-'.join(w.lower() for w in words) or logical_id}"[:limit]
