"""The CDK app of the CloudWatch Logs forwarder.

- ``infra.config``: CDK context -> a typed, validated :class:`~infra.config.ForwarderConfig`.
- ``infra.bundling``: the function's asset, built with pip on the host (no Docker needed).
- ``infra.forwarder``: reusable constructs (the function, and one construct per event source).
- ``infra.stack``: the stack that ``app.py`` instantiates from the config.
"""
