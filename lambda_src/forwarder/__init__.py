"""CloudWatch Logs forwarder: SQS and Kinesis records into minimal, compliant PutLogEvents."""
